"""The shipped code tasks are sound.

Every reference solution passes its docstring examples and its hidden tests, every stub fails a
hidden test, the examples are not copies of the hidden tests, and the catalog file loads (or says
clearly why not).
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import gzip
import io
import json
import os
import re
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
from trellis.envs.code.workspace import host_git_dir
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.sandbox.base import RunRequest, RunResult
from trellis.envs.tasks.catalog import TASKS, CodeTask, load_tasks
from trellis.envs.tasks.world import (
    HIDDEN_TEST,
    CodeTaskWorld,
    examples_doctest,
    fresh_task_repository,
    get_task,
    inline_examples,
    make_task_repository,
)
from trellis.envs.tasks.world import examples_of as doctest_examples

from trellis.errors import UserError
from trellis.tree import Action

needs_bwrap = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")
by_task = pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])


def test_catalog_shape() -> None:
    assert len(TASKS) >= 30
    assert len({t.id for t in TASKS}) == len(TASKS)
    levels = Counter(t.level for t in TASKS)
    assert set(levels) == {1, 2, 3, 4, 5}
    with pytest.raises(UserError, match="unknown code task"):
        get_task("nope")


def write_catalog(root: Path, tasks: list[CodeTask]) -> Path:
    for number, task in enumerate(tasks, 1):
        folder = root / f"{number:02d}-{task.id}"
        folder.mkdir(parents=True)
        (folder / "task.yaml").write_text(f"id: {task.id}\nlevel: {task.level}\nentry_point: {task.entry_point}\n")
        for name in ("prompt", "tests", "solution"):
            (folder / f"{name}.py").write_text(getattr(task, name))
    return root


def test_the_catalog_round_trips(tmp_path: Path) -> None:
    assert load_tasks() == TASKS
    assert load_tasks(write_catalog(tmp_path / "catalog", TASKS)) == TASKS


def test_the_shipped_catalog_is_a_folder_per_task_in_the_package() -> None:
    from importlib import resources

    shipped = resources.files("trellis.envs.tasks").joinpath("shipped")
    names = sorted(entry.name for entry in shipped.iterdir() if entry.is_dir())
    assert names == [f"{n:02d}-{task.id}" for n, task in enumerate(TASKS, 1)]
    first = shipped.joinpath(names[0])
    assert sorted(entry.name for entry in first.iterdir()) == ["prompt.py", "solution.py", "task.yaml", "tests.py"]


DAMAGE = [
    ({"task.yaml": "id: [unclosed\n"}, "cannot be read: task 01-reverse_string"),
    ({"task.yaml": "- a list\n"}, "task 01-reverse_string: task.yaml is not a mapping"),
    ({"task.yaml": "id: reverse_string\nlevel: 6\nentry_point: reverse_string\n"}, "level: Input should be less"),
    ({"task.yaml": "id: reverse_string\nlevel: 1\n"}, "entry_point: Field required"),
    ({"task.yaml": "id: reverse_string\nlevel: 1\nentry_point: r\nhint: h\n"}, "hint: Extra inputs"),
    ({"task.yaml": "id: other\nlevel: 1\nentry_point: other\n"}, "holds task 'other'; name its folder NN-other"),
    ({"tests.py": None}, "cannot be read: task 01-reverse_string"),
]


@pytest.mark.parametrize(("change", "message"), DAMAGE)
def test_a_damaged_catalog_says_what_is_wrong(tmp_path: Path, change: dict[str, str | None], message: str) -> None:
    root = write_catalog(tmp_path / "catalog", TASKS[:2])
    for name, content in change.items():
        target = root / f"01-{TASKS[0].id}" / name
        if content is None:
            target.unlink()
        else:
            target.write_text(content)
    with pytest.raises(UserError, match=re.escape(message) if "(" in message else message) as caught:
        load_tasks(root)
    assert str(root) in str(caught.value) and "fix the catalog" in str(caught.value)


def test_repeated_ids_and_empty_catalogs_are_refused(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "twice", [TASKS[0]])
    (root / f"01-{TASKS[0].id}").rename(root / f"02-{TASKS[0].id}")
    write_catalog(root, [TASKS[0]])
    with pytest.raises(UserError, match="repeated ids reverse_string"):
        load_tasks(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no task folders"):
        load_tasks(tmp_path / "empty")


def test_a_missing_catalog_says_so(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="missing cannot be read: it is not a folder of task folders"):
        load_tasks(tmp_path / "missing")


def _namespace(code: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "solution"}
    exec(compile(code, "solution.py", "exec"), namespace)
    return namespace


def _docstring_examples(code: str) -> list[doctest.Example]:
    """The examples as `doctest` finds them in the module's docstrings (what running solution.py's doctests sees)."""
    examples = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                examples += doctest.DocTestParser().get_examples(docstring)
    return examples


@by_task
def test_the_prompt_defines_the_entry_point_and_shows_examples(task: CodeTask) -> None:
    assert callable(_namespace(task.prompt)[task.entry_point])
    examples = doctest.DocTestParser().get_examples(task.prompt)
    assert sum(1 for e in examples if e.want) >= 2, "each prompt shows at least two examples with their results"
    # the raw prompt and its docstrings give the same examples, however a runner reads them
    assert [(e.source, e.want, e.options) for e in examples] == [
        (e.source, e.want, e.options) for e in _docstring_examples(task.prompt)
    ]


@by_task
def test_the_reference_passes_every_example(task: CodeTask) -> None:
    test = doctest.DocTest(
        doctest.DocTestParser().get_examples(task.prompt), _namespace(task.solution), task.id, "solution.py", 0, None
    )
    report = io.StringIO()
    result = doctest.DocTestRunner(verbose=False).run(test, out=report.write)
    assert result.failed == 0, report.getvalue()
    # and the examples show what they claim: the stub gets at least one of them wrong
    stub = doctest.DocTest(test.examples, _namespace(task.prompt), task.id, "solution.py", 0, None)
    assert doctest.DocTestRunner(verbose=False).run(stub, out=lambda _: None).failed > 0


@by_task
def test_the_examples_are_not_copies_of_the_hidden_tests(task: CodeTask) -> None:
    calls = [e.source.strip() for e in doctest.DocTestParser().get_examples(task.prompt) if "(" in e.source]
    assert [call for call in calls if call in task.tests] == []


def _hidden_test_failures(task: CodeTask, code: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the hidden tests in this process against `code` as the module `solution`; the names that fail."""
    solution = types.ModuleType("solution")
    exec(compile(code, "solution.py", "exec"), solution.__dict__)
    monkeypatch.setitem(sys.modules, "solution", solution)
    tests: dict[str, object] = {"__name__": "hidden_test"}
    exec(compile(task.tests, HIDDEN_TEST, "exec"), tests)
    names = [name for name, value in tests.items() if name.startswith("test_") and callable(value)]
    assert names, "the hidden tests define test functions"
    failed = []
    for name in names:
        try:
            tests[name]()  # type: ignore[operator]
        except (Exception, pytest.fail.Exception):  # a failed pytest.raises is not an Exception
            failed.append(name)
    return failed


@by_task
def test_the_reference_passes_the_hidden_tests_and_the_stub_fails(
    task: CodeTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _hidden_test_failures(task, task.solution, monkeypatch) == []
    assert _hidden_test_failures(task, task.prompt, monkeypatch) != []


async def _check(task_id: str, root: Path) -> tuple[str, float, float]:
    task = get_task(task_id)
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, root / task_id)))
    stub = await world.reward()
    await world.sandbox.write_file("solution.py", task.solution)
    solved = await world.reward()
    assert not world.sandbox.host_path(HIDDEN_TEST).exists()
    return task_id, stub.value, solved.value


@needs_bwrap
def test_every_reference_passes_and_every_stub_fails_in_the_sandbox(tmp_path: Path) -> None:
    async def all_tasks() -> list[tuple[str, float, float]]:
        semaphore = asyncio.Semaphore(4)

        async def one(task_id: str) -> tuple[str, float, float]:
            async with semaphore:
                return await _check(task_id, tmp_path)

        return await asyncio.gather(*(one(t.id) for t in TASKS))

    results = asyncio.run(all_tasks())
    assert [r for r in results if (r[1], r[2]) != (0.0, 1.0)] == []


@needs_bwrap
async def test_world_flow_and_patch_excludes_hidden_tests(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    obs = await world.reset()
    assert "reverse_string" in obs.text and "solution.py" in obs.text
    obs = await world.step(
        Action(
            tool="replace",
            args={"path": "solution.py", "old": '    """\n', "new": '    """\n    return s[::-1]\n'},
        )
    )
    assert not obs.is_error, obs.text
    reward = await world.reward()
    assert reward.resolved and reward.summary == "3/3 hidden tests pass"
    patch = await world.patch()
    assert "return s[::-1]" in patch and HIDDEN_TEST not in patch
    assert [t.name for t in world.tools] == [
        "view_file",
        "write_file",
        "replace",
        "shell",
        "run_tests",
        "finish",
        "reject",
    ]


@needs_bwrap
async def test_grade_judges_a_stored_state_whatever_the_workspace_holds(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    stub = await world.snapshot()
    await world.step(Action(tool="write_file", args={"path": "solution.py", "content": task.solution}))
    right = await world.snapshot()
    assert (await world.grade(stub)).resolved is False  # back to the stub, whatever was written since
    assert (await world.grade(right)).resolved is True
    assert HIDDEN_TEST not in await world.patch()


def test_a_fresh_task_repository_replaces_what_an_attempt_left(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    repo = tmp_path / "job" / "repo"
    repo.mkdir(parents=True)
    (repo / "planted.py").write_text("print('left over')\n")
    host_git_dir(repo).mkdir()
    (host_git_dir(repo) / "config").write_text("[core]\n\tfsmonitor = touch /tmp/pwned\n")
    fresh_task_repository(task, repo)
    assert sorted(p.name for p in repo.iterdir() if p.name != ".git") == ["solution.py"]
    assert (repo / "solution.py").read_text() == task.prompt
    assert "fsmonitor" not in (host_git_dir(repo) / "config").read_text()  # the git folder is made anew


class _PythonWithoutPytest(BwrapSandbox):
    """The sandbox's Python without its site-packages, as in an environment where pytest is not installed."""

    async def run(self, request: RunRequest) -> RunResult:
        command = request.command.replace("python -m pytest", "python -S -m pytest")
        return await super().run(request.model_copy(update={"command": command}))


@needs_bwrap
async def test_grading_without_pytest_says_to_install_it(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, _PythonWithoutPytest(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    with pytest.raises(UserError, match="pip install pytest"):
        await world.reward()


@needs_bwrap
async def test_the_docstring_examples_are_the_visible_tests(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    assert "the examples in the docstring are run" in world.task
    wrong = task.prompt + "    return s\n"
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": wrong}))
    assert "Examples from the docstring: 0 of 2 pass." in obs.text
    assert "Expected:" in obs.text and "Got:" in obs.text and "Fix solution.py" in obs.text
    assert set((obs.tests or {}).values()) == {"FAILED"}
    # run_tests runs the same examples; finish reports them too
    tested = await world.step(Action(tool="run_tests", args={}))
    assert tested.is_error and tested.tests == obs.tests
    right = task.prompt + "    return s[::-1]\n"
    obs = await world.step(Action(tool="write_file", args={"path": "/workspace/solution.py", "content": right}))
    assert "2 of 2 pass" in obs.text and "reply with: finish" in obs.text
    done = await world.step(Action(tool="finish", args={}))
    assert done.terminal == "finished" and set((done.tests or {}).values()) == {"PASSED"}
    assert "_examples_check" not in (done.patch or "")
    assert not world.sandbox.host_path("_examples_check.py").exists()


@needs_bwrap
async def test_whitespace_in_an_example_s_output_counts(tmp_path: Path) -> None:
    # title_case must keep runs of spaces; an answer that collapses them is wrong, and the hidden tests say so
    task = get_task("title_case")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    collapsing = task.prompt + "    import re\n    return ' '.join(w.capitalize() for w in re.split(r' +', s))\n"
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": collapsing}))
    assert "Examples from the docstring: 2 of 3 pass." in obs.text
    assert "' Two Spaces '" in obs.text  # what it got, shown beside what was expected


@needs_bwrap
async def test_an_example_that_raises_shows_the_solution_s_frames_only(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    raising = task.prompt + "    return helper(s)\n\n\ndef helper(s):\n    return s[0] + None\n"
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": raising}))
    assert "Exception raised:" in obs.text and "TypeError" in obs.text
    assert "in reverse_string" in obs.text and "in helper" in obs.text and "return s[0] + None" in obs.text
    assert "doctest.py" not in obs.text and "<doctest" not in obs.text  # the runner's own frames


@needs_bwrap
async def test_examples_that_never_end_or_do_not_import(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    loops = task.prompt + "    while True:\n        pass\n"
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": loops}))
    assert "did not finish within" in obs.text
    broken = "def reverse_string(s):\n    return (\n"
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": broken}))
    assert "cannot be imported: SyntaxError" in obs.text


@needs_bwrap
async def test_top_level_test_code_is_left_out_of_a_whole_file_write(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    content = (
        "from solution import reverse_string\n\n"
        + task.prompt
        + "    return s[::-1]\n\nassert reverse_string('ab') == 'ab'\nprint(reverse_string('x'))\nfinish()\n"
    )
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": content}))
    assert "left out 4 lines" in obs.text and "2 of 2 pass" in obs.text
    written = world.sandbox.host_path("solution.py").read_text()
    assert "assert" not in written and "finish()" not in written and "from solution" not in written


@needs_bwrap
async def test_a_world_without_visible_examples(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")), visible_examples=False)
    await world.reset()
    assert "examples in the docstring are run" not in world.task
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": task.solution}))
    assert "Examples" not in obs.text and "tests" not in obs.data


def test_definitions_only_keeps_set_up_and_drops_example_runs() -> None:
    from trellis.envs.tasks.world import definitions_only

    source = (
        "import sys\n"
        "try:\n    import numpy as np\nexcept ImportError:\n    np = None\n"
        "sys.setrecursionlimit(10000)\n"
        "def helper(i):\n    return i * i\n"
        "SQUARES = [helper(i) for i in range(5)]\n"
        "TABLE = {}\nfor i in range(3):\n    TABLE[i] = i\n"
        "def f(x):\n    return SQUARES[x]\n"
        "print(f(2))\nr = f(3)\nassert f(1) == 1\nfinish()\n"
    )
    kept, dropped = definitions_only(source, entry_point="f")
    assert dropped == 4
    for line in ("np = None", "sys.setrecursionlimit", "SQUARES = [helper", "TABLE[i] = i", "return SQUARES[x]"):
        assert line in kept
    for line in ("print(f(2))", "r = f(3)", "assert", "finish()"):
        assert line not in kept


@needs_bwrap
async def test_a_write_that_loses_the_entry_point_is_refused(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": "finish()\n"}))
    assert obs.is_error and "does not define `reverse_string`" in obs.text
    assert world.sandbox.host_path("solution.py").read_text() == task.prompt
    tested = await world.step(Action(tool="run_tests", args={"command": "python -m pytest"}))
    assert "Examples from the docstring" in tested.text  # a task's tests are its examples


INLINE = '''def scale(values: list[int], factor: float = 2.0) -> dict:
    """Each value times `factor`, keyed by the value; the keys' order is the values'.

    For example:
        scale([1, 2]) == {1: 2.0, 2: 4.0}
        scale([]) ➞ {}
        scale([3], factor=0.5) -> {3: 1.5}   (halved)
        scale([0]) should return {0: 0.0}.
        len(scale([1, 1])) => 1
        scale(compute()) = 19 - 5
    """
'''


def test_inline_examples_become_doctest_examples() -> None:
    found = inline_examples(INLINE, "scale")
    assert found == [
        ("scale([1, 2]) == {1: 2.0, 2: 4.0}", "True"),
        ("scale([]) == {}", "True"),
        ("scale([3], factor=0.5) == {3: 1.5}", "True"),  # the prose after the value is not part of it
        ("scale([0]) == {0: 0.0}", "True"),
    ]  # `len(scale(...))` is not a call of scale joined to a value; `19 - 5` is not a literal
    words = 'def title(s):\n    """title("ab cd") returns "Ab Cd"; title(\'x\') ➞ \'X\'. title(")") -> \')\'\n    """\n'
    assert inline_examples(words, "title") == [
        ('title("ab cd")', "'Ab Cd'"),
        ("title('x')", "'X'"),
        ('title(")")', "')'"),
    ]
    assert inline_examples("def title(s) -> str:\n    pass\n", "title") == []  # a signature is no example
    odd = 'def f(x):\n    """f([]) == None, f([1]) ==> 1, f(a) => False, f(2) # => 2.0, f("...") -> "..."."""\n'
    assert inline_examples(odd, "f") == [
        ("f([]) is None", "True"),  # a doctest of None expects no output at all
        ("f([1])", "1"),
        ("f(2) == 2.0", "True"),  # a float by ==; `f(a)` names a variable: no example
        ('f("...") == "..."', "True"),  # `...` in an expected output would match anything
    ]
    # only the entry point's own docstring: other functions' examples, and code, are not its examples
    two = 'def g(x):\n    """g(1) ➞ 5"""\n    return f(1) == 9\n\n\ndef f(x):\n    """f(1) ➞ 2"""\n'
    assert inline_examples(two, "f") == [("f(1)", "2")]
    task = CodeTask(id="scale", level=1, entry_point="scale", prompt=INLINE, tests="", solution="")
    text = examples_doctest(task)
    assert text.startswith(">>> scale([1, 2]) == {1: 2.0, 2: 4.0}\nTrue\n")
    assert [source.strip() for source, _ in doctest_examples(text)] == [
        source for source, _ in inline_examples(INLINE, "scale")
    ]
    # a prompt with doctest examples keeps them, whatever else it says
    shipped = get_task("reverse_string")
    assert doctest_examples(examples_doctest(shipped)) == doctest_examples(shipped.prompt)


@needs_bwrap
async def test_inline_examples_are_the_visible_tests_of_a_docstring_without_doctests(tmp_path: Path) -> None:
    prompt = (
        'def double(n: int) -> int:\n    """Twice n. Examples: double(2) ➞ 4, double(-3) == -6, double(0) -> 0."""\n'
    )
    task = CodeTask(id="double", level=1, entry_point="double", prompt=prompt, tests="", solution="")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    await world.reset()
    assert "the examples in the docstring are run" in world.task and len(world.examples) == 3
    assert world.probes  # probe calls come from the inline examples' arguments
    wrong = prompt + "    return n + 2\n"
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": wrong}))
    assert "Examples from the docstring: 1 of 3 pass." in obs.text
    assert "double(-3)" in obs.text and "Expected:\n    -6\nGot:\n    -1" in obs.text
    right = prompt + "    return 2 * n\n"
    obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": right}))
    assert "3 of 3 pass" in obs.text and set((obs.tests or {}).values()) == {"PASSED"}


HUMANEVAL = [
    {
        "task_id": "HumanEval/0",
        "prompt": 'def add(a: int, b: int) -> int:\n    """The sum.\n\n    >>> add(2, 3)\n    5\n    """\n',
        "canonical_solution": "    return a + b\n",
        "test": "METADATA = {}\n\n\ndef check(candidate):\n"
        "    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
        "entry_point": "add",
    },
    {
        "task_id": "HumanEval/1",
        "prompt": "def helper(x):\n    return x * 2\n\n\n"
        'def twice_plus(x):\n    """helper(x) + 1: twice_plus(3) ➞ 7"""\n',
        "canonical_solution": "    return helper(x) + 1\n",
        "test": "def check(candidate):\n    assert candidate(3) == helper(3) + 1\n",  # a helper of the prompt's
        "entry_point": "twice_plus",
        "level": 2,
    },
]


def _jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_a_humaneval_jsonl_file_is_a_catalog(tmp_path: Path) -> None:
    add, twice = load_tasks(_jsonl(tmp_path / "he.jsonl", HUMANEVAL))
    assert (add.id, add.level, add.entry_point, twice.id, twice.level) == ("HumanEval_0", 3, "add", "HumanEval_1", 2)
    assert add.solution == add.prompt + "    return a + b\n"
    assert "def test_check():\n    check(add)" in add.tests and "from solution import *" in add.tests
    assert examples_doctest(twice) == ">>> twice_plus(3)\n7\n"  # inline examples where there are no doctests
    # the docstring closes right after an example's output: the quotes are not part of it
    assert doctest_examples(examples_doctest(add)) == [("add(2, 3)\n", "5\n")]
    # the hidden test holds the prompt's code too: its helpers are there whatever the answer keeps
    assert twice.tests.startswith(twice.prompt.strip()) and "check(twice_plus)" in twice.tests
    nulls = {**HUMANEVAL[0], "canonical_solution": None}
    gz = tmp_path / "he.jsonl.gz"
    gz.write_bytes(gzip.compress((json.dumps(nulls) + "\n").encode()))
    (loaded,) = load_tasks(gz)
    assert loaded.solution == loaded.prompt and "None" not in loaded.solution


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (["{not json"], "line 1 is not JSON"),
        ([[1, 2]], "line 1 is not a JSON object"),
        ([{"task_id": "x", "prompt": "def f(): pass"}], "line 1 lacks entry_point, test (or tests)"),
        ([{**HUMANEVAL[0], "test": "assert add(1, 1) == 2"}], "defines no check(candidate) function"),
        ([{**HUMANEVAL[0], "level": 9}], "line 1: level: Input should be less"),
        ([{**HUMANEVAL[0], "test": None, "tests": ["x"]}], "line 1 lacks test (or tests) (each a string)"),
        ([{**HUMANEVAL[0], "entry_point": "add\nimport os"}], "entry_point 'add\\nimport os' is not a Python name"),
        ([HUMANEVAL[0], HUMANEVAL[0]], "repeated ids HumanEval_0"),
        ([], "holds no task records"),
    ],
)
def test_a_damaged_jsonl_catalog_says_what_is_wrong(tmp_path: Path, records: list[object], message: str) -> None:
    path = tmp_path / "he.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    with pytest.raises(UserError, match=re.escape(message)) as caught:
        load_tasks(path)
    assert str(path) in str(caught.value) and "fix the catalog" in str(caught.value)


@needs_bwrap
async def test_a_humaneval_task_is_graded_by_its_check_function(tmp_path: Path) -> None:
    for task in load_tasks(_jsonl(tmp_path / "he.jsonl", HUMANEVAL)):
        world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / task.id)))
        await world.reset()
        assert (await world.reward()).value == 0.0  # the stub returns None
        obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": task.solution}))
        assert set((obs.tests or {}).values()) == {"PASSED"}, obs.text
        graded = await world.reward()
        assert graded.resolved and graded.details["total"] == 1, graded.summary


@needs_bwrap
async def test_the_example_records_are_sound(tmp_path: Path) -> None:
    """examples/tasks/records.jsonl (the README's HumanEval-format catalog): every reference passes
    its examples and hidden tests, every stub fails the hidden tests."""
    records = load_tasks(Path(__file__).resolve().parents[2] / "examples" / "tasks" / "records.jsonl")
    assert [task.id for task in records] == ["Records_0", "Records_1", "Records_2"]
    for task in records:
        world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / task.id)))
        await world.reset()
        assert world.examples and not (await world.reward()).resolved
        obs = await world.step(Action(tool="write_file", args={"path": "solution.py", "content": task.solution}))
        assert set((obs.tests or {}).values()) == {"PASSED"}, obs.text
        assert (await world.reward()).resolved, task.id
