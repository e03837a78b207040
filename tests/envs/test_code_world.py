"""The code world: tools, git-tree states and patches, in the bwrap sandbox and in a container.

Every test that takes `world` runs in both: the tools, states and patches behave the same wherever
the workspace is. Tests of host folders (links to host files, the git directory beside the folder)
take `host_world`."""

from __future__ import annotations

import ast
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import repository_image
from swe_fixture import FILES
from trellis.envs.code.workspace import GitWorkspace, init_repository
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.sandbox.docker import AGENT_USER, DockerSandbox

from trellis.errors import UserError
from trellis.tree import Action
from trellis.world import World

needs_bwrap = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")

TEST_FILE = "tests/test_calc.py"
WORLD_ARGS: dict[str, object] = {
    "task": "Fix add().",
    "test_command": f"python -m pytest -rA {TEST_FILE}",
    "hidden_paths": ["tests/hidden_test.py"],
}


@pytest.fixture
def host_world(tmp_path: Path) -> CodeWorld:
    if not os.path.exists("/usr/bin/bwrap"):
        pytest.skip("bubblewrap is not installed")
    repo = tmp_path / "repo"
    init_repository(repo, FILES)
    return CodeWorld(BwrapSandbox(repo), **WORLD_ARGS)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tinycalc_image(docker_client: object) -> str:
    return repository_image(docker_client, "tinycalc", FILES)


@pytest.fixture(params=["bwrap", pytest.param("docker", marks=pytest.mark.docker)])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[CodeWorld]:
    if request.param == "bwrap":
        yield request.getfixturevalue("host_world")
        return
    image = request.getfixturevalue("tinycalc_image")
    client = request.getfixturevalue("docker_client")
    async with DockerSandbox(image, client=client, user=AGENT_USER) as box:
        world = CodeWorld(box, **WORLD_ARGS)  # type: ignore[arg-type]
        await world.workspace.opened()  # the repository set up, as the search's first reset() does
        yield world


async def read(world: CodeWorld, path: str) -> str:
    return await world.sandbox.read_file(path)


async def exists(world: CodeWorld, path: str) -> bool:
    return (await world.files.locate(path)).kind != "missing"


async def act(world: CodeWorld, tool: str, **args: object) -> tuple[str, bool, dict[str, object]]:
    obs = await world.step(Action(tool=tool, args=args))
    # the typed results with the tool's other data, as one mapping
    return (
        obs.text,
        obs.is_error,
        {**obs.model_dump(include={"terminal", "patch", "tests"}, exclude_none=True), **obs.data},
    )


async def test_is_a_world(world: CodeWorld) -> None:
    assert isinstance(world, World)
    obs = await world.reset()
    assert obs.text == "Fix add()." and obs.data["state"] == world.workspace.base_tree
    assert [t.name for t in world.tools][:3] == ["view_file", "search", "find_file"]


async def test_view_file(world: CodeWorld) -> None:
    text, error, data = await act(world, "view_file", path="tinycalc/__init__.py", start=4, end=6)
    assert not error
    assert text.splitlines()[0] == "tinycalc/__init__.py (lines 4-6 of 19)"
    assert text.splitlines()[1] == "    4 def add(a, b):"
    assert data["total_lines"] == 19
    text, error, _ = await act(world, "view_file", path="nope.py")
    assert error and "find_file" in text
    text, error, _ = await act(world, "view_file", path="/etc/passwd")
    assert error and "outside the workspace" in text


async def test_search_find_file_and_symbol(world: CodeWorld) -> None:
    text, _, _data = await act(world, "search", pattern=r"def \w+\(a, b\)")
    assert text.splitlines() == ["tinycalc/__init__.py:4: def add(a, b):", "tinycalc/__init__.py:9: def mul(a, b):"]
    text, error, _ = await act(world, "search", pattern="(")
    assert error and "invalid regular expression" in text
    text, _, _ = await act(world, "find_file", name="calc")
    assert text.splitlines() == ["tests/test_calc.py"]
    text, _, _ = await act(world, "find_symbol", name="bump")
    assert text == "tinycalc/__init__.py:17: def Counter.bump"
    text, _, _ = await act(world, "find_symbol", name="Counter")
    assert text == "tinycalc/__init__.py:13: class Counter"


async def test_replace_errors_show_nearest_matches(world: CodeWorld) -> None:
    text, error, _ = await act(world, "replace", path="tinycalc/__init__.py", old="return a - c", new="x")
    assert error and "does not occur" in text and "return a - b" in text and "(line 6)" in text
    text, error, _ = await act(world, "replace", path="tinycalc/__init__.py", old="(a, b):", new="(x, y):")
    assert error and "occurs 2 times" in text and "[4, 9]" in text
    text, error, data = await act(world, "replace", path="tinycalc/__init__.py", old="return a - b", new="return a + b")
    assert not error and data["line"] == 6 and "    6     return a + b" in text


async def test_create_insert_shell_and_tests(world: CodeWorld) -> None:
    text, error, _ = await act(world, "create_file", path="README.md", content="x")
    assert error and "already exists" in text
    _, error, _ = await act(
        world, "create_file", path="tests/test_new.py", content="def test_new():\n    assert True\n"
    )
    assert not error
    _, error, _ = await act(world, "insert", path=TEST_FILE, line=0, text="import os")
    assert not error
    assert (await read(world, TEST_FILE)).startswith("import os\nfrom tinycalc")
    text, error, _ = await act(world, "insert", path=TEST_FILE, line=99, text="x")
    assert error and "between 0 and" in text
    text, error, data = await act(world, "shell", command="ls tests && id -u")
    assert not error and "test_new.py" in text and text.split()[-1] in ("65534", "1000")  # never root
    # files the host wrote belong to the sandbox user, so sandboxed commands can change them
    text, error, _ = await act(world, "shell", command=f"echo '# edited' >> {TEST_FILE} && tail -1 {TEST_FILE}")
    assert not error and "# edited" in text
    text, error, data = await act(world, "run_tests", command="python -m pytest -rA tests")
    assert not error and "2 passed, 0 failed" in text
    assert data["tests"] == {"tests/test_calc.py::test_mul": "PASSED", "tests/test_new.py::test_new": "PASSED"}


async def test_run_tests_reports_failures(world: CodeWorld) -> None:
    await world.sandbox.write_file(
        TEST_FILE, "from tinycalc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    text, error, data = await act(world, "run_tests")
    assert error and "0 passed, 1 failed" in text and "failing: tests/test_calc.py::test_add" in text
    assert data["tests"] == {"tests/test_calc.py::test_add": "FAILED"}


async def test_snapshot_restore_and_duplicate_states(world: CodeWorld) -> None:
    base = await world.snapshot()
    assert base == world.workspace.base_tree
    await act(world, "replace", path="tinycalc/__init__.py", old="return a - b", new="return a + b")
    await act(world, "create_file", path="notes.txt", content="n")
    fixed = await world.snapshot()
    assert fixed != base
    await world.restore(base)
    assert not await exists(world, "notes.txt")
    assert "return a - b" in await read(world, "tinycalc/__init__.py")
    # reaching the same files by another path gives the same state id
    await act(world, "create_file", path="notes.txt", content="n")
    await act(world, "replace", path="tinycalc/__init__.py", old="a - b", new="a + b")
    assert await world.snapshot() == fixed
    await world.restore(base)
    await world.restore(fixed)
    assert await read(world, "notes.txt") == "n"
    # restored files are the sandbox user's too
    text, error, _ = await act(world, "shell", command="echo more >> notes.txt && cat notes.txt")
    assert not error and "more" in text


async def test_patch_leaves_out_hidden_tests_and_finish(world: CodeWorld) -> None:
    text, error, data = await act(world, "finish")
    assert error and "no changes" in text
    await act(world, "replace", path="tinycalc/__init__.py", old="return a - b", new="return a + b")
    await act(world, "create_file", path="tests/hidden_test.py", content="def test_x(): pass\n")
    text, _, data = await act(world, "diff")
    assert "+    return a + b" in text and "hidden_test" not in text
    _, error, data = await act(world, "finish")
    assert not error and data["terminal"] == "finished" and "return a + b" in str(data["patch"])
    _, _, data = await act(world, "reject", reason="wrong file")
    assert data == {"terminal": "rejected", "reason": "wrong file"}


async def test_unknown_tools_and_bad_args_are_observations(world: CodeWorld) -> None:
    text, error, _ = await act(world, "rm_rf", path="/")
    assert error and "unknown tool 'rm_rf'" in text
    text, error, _ = await act(world, "view_file", start=3)
    assert error and "invalid arguments for view_file" in text
    with pytest.raises(UserError, match="unknown tools"):
        CodeWorld(world.sandbox, task="x", tools=["view_file", "teleport"])


@needs_bwrap
def test_workspace_needs_a_repository(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a git repository"):
        GitWorkspace(tmp_path)


@pytest.fixture
def host_secrets(tmp_path: Path) -> Path:
    """Host files outside the workspace that a planted link points at."""
    folder = tmp_path / "host"
    folder.mkdir()
    (folder / "secret.txt").write_text("TOKEN=hunter2\n")
    (folder / "secret.py").write_text("def leaked_function():\n    return 'hunter2'\n")
    return folder


async def plant_links(world: CodeWorld, secrets: Path) -> None:
    """From inside the sandbox: links out of the workspace, and one that stays inside."""
    result = await world.run(
        f"ln -s {secrets}/secret.txt notes.txt && ln -s {secrets}/secret.py tinycalc/leak.py && "
        f"ln -s {secrets} hostdir && ln -s {secrets}/missing.txt dangling.txt && ln -s tinycalc/__init__.py alias.py"
    )
    assert result.ok, result.output


async def test_search_never_reads_through_a_link_out_of_the_workspace(
    host_world: CodeWorld, host_secrets: Path
) -> None:
    await plant_links(host_world, host_secrets)
    text, error, data = await act(host_world, "search", pattern="TOKEN=|def leaked")
    assert not error and text.startswith("no match") and data["matches"] == []
    for path in ("notes.txt", "hostdir", "tinycalc/leak.py", "hostdir/secret.txt"):
        text, error, _ = await act(host_world, "search", pattern="hunter2", path=path)
        assert error and "outside the workspace" in text and "hunter2" not in text
    # a link that stays inside the workspace is read like any file
    text, _, _ = await act(host_world, "search", pattern=r"def mul")
    assert text.splitlines() == ["alias.py:9: def mul(a, b):", "tinycalc/__init__.py:9: def mul(a, b):"]


async def test_find_symbol_never_reads_through_a_link_out_of_the_workspace(
    host_world: CodeWorld, host_secrets: Path
) -> None:
    await plant_links(host_world, host_secrets)
    text, error, data = await act(host_world, "find_symbol", name="leaked_function")
    assert not error and data["definitions"] == [] and "no class or function" in text
    text, _, _ = await act(host_world, "find_symbol", name="mul")
    assert text.splitlines() == ["alias.py:9: def mul", "tinycalc/__init__.py:9: def mul"]


async def test_find_file_never_lists_a_link_out_of_the_workspace(host_world: CodeWorld, host_secrets: Path) -> None:
    await plant_links(host_world, host_secrets)
    for name in ("leak", "notes", "secret", "dangling"):
        _, _, data = await act(host_world, "find_file", name=name)
        assert data["files"] == [], name
    _, _, data = await act(host_world, "find_file", name="alias")
    assert data["files"] == ["alias.py"]


async def test_edits_never_go_through_a_link_out_of_the_workspace(host_world: CodeWorld, host_secrets: Path) -> None:
    await plant_links(host_world, host_secrets)
    for tool, args in (
        ("view_file", {"path": "notes.txt"}),
        ("replace", {"path": "notes.txt", "old": "hunter2", "new": "x"}),
        ("write_file", {"path": "notes.txt", "content": "x"}),
        ("write_file", {"path": "dangling.txt", "content": "x"}),
        ("write_file", {"path": "hostdir/new.txt", "content": "x"}),
        ("insert", {"path": "tinycalc/leak.py", "line": 0, "text": "x"}),
    ):
        text, error, _ = await act(host_world, tool, **args)
        assert error and "outside the workspace" in text, (tool, args, text)
    assert sorted(p.name for p in host_secrets.iterdir()) == ["secret.py", "secret.txt"]
    assert (host_secrets / "secret.txt").read_text() == "TOKEN=hunter2\n"


@pytest.fixture
def named(tmp_path: Path) -> CodeWorld:
    """A workspace whose folder is named like the repository (as a model pictures it)."""
    if not os.path.exists("/usr/bin/bwrap"):
        pytest.skip("bubblewrap is not installed")
    repo = tmp_path / "tinycalc"
    init_repository(repo, FILES)
    return CodeWorld(BwrapSandbox(repo), task="Fix add().")


async def test_paths_forgive_the_usual_slips(named: CodeWorld) -> None:
    code = "tinycalc/__init__.py"
    for path in (
        "/workspace/tinycalc/tinycalc/__init__.py",
        "tinycalc/tinycalc/__init__.py",
        "/workspace/tinycalc/__init__.py",
        f"{named.root}/tinycalc/__init__.py",
        "`tinycalc/__init__.py`",
        " 'tinycalc/__init__.py' ",
        "/tinycalc/__init__.py",
        "./tinycalc/__init__.py",
        "workspace/tinycalc/__init__.py",
    ):
        text, error, data = await act(named, "view_file", path=path, start=6, end=6)
        assert not error and data["path"] == code and text.splitlines()[1] == "    6     return a - b", (path, text)
    text, error, data = await act(
        named, "replace", path="/workspace/tinycalc/tinycalc/__init__.py", old="return a - b", new="return a + b"
    )
    assert not error and data["path"] == code and "return a + b" in (named.root / code).read_text()
    # a new file goes where its folder exists
    _, error, data = await act(named, "write_file", path="tinycalc/tinycalc/extra.py", content="X = 1\n")
    assert not error and data["path"] == "tinycalc/extra.py" and (named.root / "tinycalc/extra.py").is_file()
    _, error, data = await act(named, "write_file", path="/workspace/docs/guide.md", content="# guide\n")
    assert not error and data["path"] == "docs/guide.md"
    # the repository's name counts too when the folder has another name (SWE-bench worktrees)
    other = CodeWorld(named.sandbox, task="x", repo_name="calc")
    _, error, data = await act(other, "view_file", path="calc/tinycalc/__init__.py")
    assert not error and data["path"] == code
    # and nothing outside the workspace is reachable
    for path in ("/etc/passwd", "../outside.txt", "/workspace/../etc/passwd", "tinycalc/../../x"):
        text, error, _ = await act(named, "view_file", path=path)
        assert error and "outside the workspace" in text, path


async def test_replace_forgives_whitespace_and_indentation(world: CodeWorld) -> None:
    path = "tinycalc/__init__.py"
    # a method given without its class's indentation, re-indented to fit
    old = "def bump(self):\n    self.n = add(self.n, 1)\n    return self.n\n"
    new = "def bump(self):\n    self.n = add(self.n, 2)\n    return self.n\n"
    text, error, data = await act(world, "replace", path="tinycalc/__init__.py", old=old, new=new)
    assert not error and "ignoring differences in whitespace" in text and data["line"] == 17, text
    assert "\n    def bump(self):\n        self.n = add(self.n, 2)\n        return self.n\n" in await read(world, path)
    # spacing inside a line
    _, error, _ = await act(world, "replace", path="tinycalc/__init__.py", old="return a-b", new="return a + b")
    assert not error and "\n    return a + b\n" in await read(world, path)
    # deleting whole lines takes the lines with them
    docstring = '"""Return the sum of  a and b."""'
    _, error, _ = await act(world, "replace", path="tinycalc/__init__.py", old=docstring, new="")
    assert not error and "def add(a, b):\n    return a + b\n" in await read(world, path)
    ast.parse(await read(world, path))
    # a loose match must be unique too, and the error says how to make it so
    text, error, _ = await act(world, "replace", path="tinycalc/__init__.py", old="(a,b):", new="(x, y):")
    assert error and "2 times" in text and "whitespace is ignored" in text and "[4, 8]" in text
    assert "include more context" in text
    text, error, _ = await act(world, "replace", path="tinycalc/__init__.py", old="  \n", new="x")
    assert error and "empty" in text and "insert" in text
    text, error, _ = await act(world, "replace", path="tinycalc/__init__.py", old="return a ** b", new="x")
    assert error and "does not occur" in text and "view_file tinycalc/__init__.py" in text


async def test_errors_name_the_next_step(world: CodeWorld) -> None:
    text, error, _ = await act(world, "view_file", path="tinycalc")
    assert error and "is a folder" in text and "find_file" in text
    text, error, _ = await act(world, "replace", path="nope.py", old="a", new="b")
    assert error and "find_file" in text
    text, error, _ = await act(world, "search", pattern="x", path="nowhere")
    assert error and "path '.'" in text
    text, _, _ = await act(world, "search", pattern="zzz_nothing")
    assert "try a shorter" in text
    text, _, _ = await act(world, "find_symbol", name="def nothing_here()")
    assert "'nothing_here'" in text and "search" in text
    text, _, data = await act(world, "find_symbol", name="def add()")
    assert data["definitions"] == [{"path": "tinycalc/__init__.py", "line": 4, "name": "add"}]
    text, _, data = await act(world, "find_file", name="tinycalc/__init")
    assert data["files"] == ["tinycalc/__init__.py"]
    # a world without find_file points at the tools it has
    task_like = CodeWorld(world.sandbox, task="x", tools=["view_file", "write_file", "replace", "shell"])
    text, error, _ = await act(task_like, "view_file", path="nope.py")
    assert error and "shell" in text and "find_file" not in text
    text, error, _ = await act(task_like, "replace", path="tinycalc/__init__.py", old="", new="x")
    assert error and "write_file" in text and "insert" not in text


def test_workspace_git_directory_lives_beside_the_folder(host_world: CodeWorld) -> None:
    git_dir = host_world.workspace.git_dir
    assert git_dir == host_world.root.parent / f"{host_world.root.name}.trellis-git" and git_dir.is_dir()
    assert (host_world.root / ".git").is_symlink()  # a pointer for people outside the sandbox, nothing more
    assert (host_world.root / ".git").resolve() == git_dir
    assert (git_dir / "info" / "attributes").read_text().splitlines()[-1].startswith("* !filter")


async def test_write_file_merges_a_fragment_of_a_python_file(world: CodeWorld) -> None:
    code = "tinycalc/__init__.py"
    fragment = (
        "def add(a, b):\n    return a + b\n\n\ndef bump(self):\n    self.n = add(self.n, 2)\n    return self.n\n\n\n"
        "print(add(2, 3))\n"
    )
    text, error, data = await act(world, "write_file", path="tinycalc/__init__.py", content=fragment)
    assert not error and text == (
        "merged into tinycalc/__init__.py: replaced add, Counter.bump; left out 1 other top-level statement "
        "(example code); the rest of the file is unchanged (write the whole file, every definition, to replace it "
        "entirely)"
    )
    assert data["merged"] == ["replaced add, Counter.bump", "left out 1 other top-level statement (example code)"]
    written = await read(world, code)
    assert "def mul(a, b):" in written and "    def __init__(self):" in written and "print(" not in written
    assert "    def bump(self):\n        self.n = add(self.n, 2)\n" in written
    text, error, _ = await act(world, "run_tests", command="python -c 'import tinycalc as t; print(t.add(2, 3))'")
    assert not error and "5" in text
    # writing it again changes nothing, and says so
    text, error, _ = await act(world, "write_file", path="tinycalc/__init__.py", content=fragment)
    assert error and "is unchanged" in text and "write the whole file" in text
    assert await read(world, code) == written


async def test_write_file_writes_a_whole_file_or_one_it_cannot_merge_as_given(world: CodeWorld) -> None:
    code = "tinycalc/__init__.py"
    rewrite = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return 0\n\n\nclass Counter:\n    pass\n"
    text, error, _ = await act(world, "write_file", path="tinycalc/__init__.py", content=rewrite)
    assert not error and text == "rewrote tinycalc/__init__.py (10 lines)" and await read(world, code) == rewrite
    # ...while a fragment of it merges
    text, error, _ = await act(
        world, "write_file", path="tinycalc/__init__.py", content="def mul(a, b):\n    return a * b\n"
    )
    assert not error and text.startswith("merged into tinycalc/__init__.py: replaced mul;")
    assert await read(world, code) == rewrite.replace("return 0", "return a * b")
    broken = "def add(a, b):\n    return (\n"
    text, error, _ = await act(world, "write_file", path="tinycalc/__init__.py", content=broken)
    assert not error and text.startswith("rewrote") and await read(world, code) == broken
    # only Python files merge
    text, error, _ = await act(world, "write_file", path="README.md", content="def add(a, b):\n    pass\n")
    assert not error and await read(world, "README.md") == "def add(a, b):\n    pass\n"


async def test_a_fragment_that_does_not_merge_never_wipes_a_long_file(world: CodeWorld) -> None:
    long = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(30))  # 120 lines
    await world.sandbox.write_file("pkg/long.py", long)
    broken = "from pkg import (\n    f1,\ndef f2(x):\n    return x\n"  # does not parse: no definitions to merge
    text, error, _ = await act(world, "write_file", path="pkg/long.py", content=broken)
    assert error and "has 120 lines" in text and "would leave 4" in text and "SEARCH/REPLACE" in text
    assert await read(world, "pkg/long.py") == long
    # a whole new file of a length like the old one is still written as given
    rewrite = long.replace("x + ", "x - ")
    text, error, _ = await act(world, "write_file", path="pkg/long.py", content=rewrite)
    assert not error and await read(world, "pkg/long.py") == rewrite
