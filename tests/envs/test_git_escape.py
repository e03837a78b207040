"""Nothing written inside the sandbox runs on the host or redirects host-side git.

Each test plants one attack from inside the real bwrap sandbox, the way a command of an agent (or a
test of a patch being graded) could, then lets the host do its usual git work (snapshot, restore,
diff, apply, add_worktree, grading) and checks that the attack's marker on the host was not made
and that host files are untouched. The markers live in a host folder no sandbox sees, so only a
command the host ran could make them.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from swe_fixture import FILES, make_swe_task
from trellis.envs.code.workspace import GitWorkspace, add_worktree, host_git_dir, init_repository
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.sandbox.host import Mount
from trellis.envs.swebench.environment import SWEEnvironment
from trellis.envs.swebench.harness import evaluate

from trellis.errors import UserError
from trellis.tree import Action

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")

CODE = "tinycalc/__init__.py"
# What an attacker inside does first: make /workspace/.git a repository it controls (today the folder
# holds only a `.git` file pointing at the host's directory, which the sandbox cannot reach).
OWN_GIT = "{ [ -d .git ] || { rm -f .git && git init -q . ; } ; } && "
EDIT = f"sed -i 's/a - b/a + b/' {CODE}"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A folder of the host that no sandbox sees: markers appear here only if the host runs them."""
    folder = tmp_path / "host"
    folder.mkdir()
    return folder


def make_world(root: Path) -> CodeWorld:
    return CodeWorld(BwrapSandbox(root), task="Fix add().", hidden_paths=["tests/hidden_test.py"])


@pytest.fixture
def world(tmp_path: Path) -> CodeWorld:
    repo = tmp_path / "repo"
    init_repository(repo, FILES)
    return make_world(repo)


async def plant(world: CodeWorld, script: str) -> None:
    result = await world.run(script, timeout=60)
    assert result.ok, result.output  # the attack itself must have been planted


def touch(marker: Path) -> str:
    return f"touch {shlex.quote(str(marker))}"


async def host_work(world: CodeWorld) -> str:
    """Everything the host does with git on a workspace between commands, as a search does it."""
    state = await world.snapshot()
    patch = await world.patch()
    await world.restore(world.workspace.base_tree)
    await world.restore(state)
    await world.restore(world.workspace.base_tree)
    applied, message = await world.workspace.apply(patch)
    assert applied, message
    finished = await world.step(Action(tool="finish", args={}))
    assert not finished.is_error, finished.text
    return patch


async def test_the_git_directory_is_out_of_the_sandbox_reach(world: CodeWorld) -> None:
    git_dir = host_git_dir(world.root)
    assert world.workspace.git_dir == git_dir and git_dir.is_dir()
    # the folder's .git is only a relative link, for people outside; inside it leads nowhere, so git
    # there finds no repository (and still works as a patch tool)
    assert os.readlink(world.root / ".git") == f"../{git_dir.name}"
    seen = await world.run(f"test -e {shlex.quote(str(git_dir))} || test -e .git/HEAD || echo unseen; ls -a /")
    assert "unseen" in seen.stdout and git_dir.name not in seen.stdout
    status = await world.run("git status")
    assert not status.ok and "not a git repository (or any parent" in status.output
    patch = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-tinycalc: add and multiply.\n+patched\n"
    applied = await world.run(f"printf %s {shlex.quote(patch)} | git apply - && cat README.md")
    assert applied.ok and applied.stdout == "patched\n", applied.output
    written = await world.run(f"mkdir -p {shlex.quote(str(git_dir))} && echo x > {shlex.quote(str(git_dir / 'HEAD'))}")
    assert written.ok  # it writes only into its own /tmp-less root, never the host's folder
    assert (git_dir / "HEAD").read_text() != "x\n"


async def test_planted_fsmonitor_never_runs(world: CodeWorld, host: Path) -> None:
    marker = host / "fsmonitor-ran"
    await plant(world, OWN_GIT + f"git config core.fsmonitor {shlex.quote(touch(marker))} && {EDIT}")
    patch = await host_work(world)
    assert "+    return a + b" in patch
    assert not marker.exists()


async def test_clean_filter_declared_in_gitattributes_never_runs(world: CodeWorld, host: Path) -> None:
    clean, smudge = host / "clean-ran", host / "smudge-ran"
    await plant(
        world,
        OWN_GIT
        + f"git config filter.evil.clean {shlex.quote(touch(clean) + '; tr a-z A-Z')} && "
        + f"git config filter.evil.smudge {shlex.quote(touch(smudge) + '; cat')} && "
        + "git config filter.evil.required true && "
        + f"echo '* filter=evil' > .gitattributes && {EDIT}",
    )
    patch = await host_work(world)
    assert not clean.exists() and not smudge.exists()
    # the content went into the state unchanged: the filter (upper-casing) was not applied either
    assert "+    return a + b" in patch and "RETURN" not in patch


async def test_textconv_never_runs_at_diff_or_finish(world: CodeWorld, host: Path) -> None:
    marker = host / "textconv-ran"
    await plant(
        world,
        OWN_GIT
        + f"git config diff.evil.textconv {shlex.quote(touch(marker) + '; cat')} && "
        + f"git config diff.external {shlex.quote(touch(marker))} && "
        + f"echo '*.py diff=evil' > .gitattributes && {EDIT}",
    )
    patch = await world.patch()
    finished = await world.step(Action(tool="finish", args={}))
    shown = await world.step(Action(tool="diff", args={}))
    assert "+    return a + b" in patch and "return a + b" in str(finished.patch) and "a + b" in shown.text
    assert not marker.exists()


async def test_post_checkout_hook_never_runs_at_add_worktree(world: CodeWorld, host: Path, tmp_path: Path) -> None:
    marker = host / "hook-ran"
    hook = f"#!/bin/sh\n{touch(marker)}\n"
    await plant(
        world,
        OWN_GIT
        + "mkdir -p .git/hooks && "
        + f"printf %s {shlex.quote(hook)} > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout",
    )
    worktree = add_worktree(world.root, tmp_path / "worktree")
    assert (worktree / CODE).read_text() == FILES[CODE]
    other = make_world(worktree)
    assert other.workspace.base_commit == world.workspace.base_commit
    assert not marker.exists()


async def test_core_worktree_cannot_point_host_git_at_a_host_folder(world: CodeWorld, host: Path) -> None:
    victim = host / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine\n")
    await plant(world, OWN_GIT + f"git config core.worktree {shlex.quote(str(victim))} && {EDIT} && touch new.txt")
    state = await world.snapshot()
    await world.restore(world.workspace.base_tree)
    # the workspace, not the host folder, went back to the base
    assert (world.root / CODE).read_text() == FILES[CODE] and not (world.root / "new.txt").exists()
    await world.restore(state)
    assert (world.root / "new.txt").exists()
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
    assert (victim / "keep.txt").read_text() == "mine\n"
    assert "keep.txt" not in await world.patch()


async def test_a_linked_patch_file_is_not_written_through(world: CodeWorld, host: Path) -> None:
    victim = host / "victim.txt"
    victim.write_text("mine\n")
    await plant(
        world,
        OWN_GIT + f"ln -sf {shlex.quote(str(victim))} .git/trellis.patch && {EDIT}",
    )
    patch = await world.patch()
    await world.restore(world.workspace.base_tree)
    applied, message = await world.workspace.apply(patch)
    assert victim.read_text() == "mine\n"
    assert applied, message
    assert "return a + b" in (world.root / CODE).read_text()


async def test_a_rewritten_worktree_git_file_is_not_followed(world: CodeWorld, host: Path, tmp_path: Path) -> None:
    marker = host / "worktree-git-followed"
    victim = host / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine\n")
    worktree = make_world(add_worktree(world.root, tmp_path / "worktree"))
    evil = "git config --file /workspace/evil.git/config"
    await plant(
        worktree,
        "rm -f .git && git init -q --bare /workspace/evil.git && "
        + f"{evil} core.bare false && "
        + f"{evil} core.fsmonitor {shlex.quote(touch(marker))} && "
        + f"{evil} core.worktree {shlex.quote(str(victim))} && "
        + f"{evil} filter.evil.clean {shlex.quote(touch(marker) + '; cat')} && "
        + "echo '* filter=evil' > .gitattributes && "
        + f"echo 'gitdir: evil.git' > .git && {EDIT}",
    )
    await worktree.snapshot()
    assert not marker.exists()
    await host_work(worktree)
    assert not marker.exists()
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
    # the worktree still shares states with its repository
    state = await worktree.snapshot()
    await world.restore(state)
    assert "return a + b" in (world.root / CODE).read_text()


async def test_user_and_system_git_configuration_is_not_read(
    world: CodeWorld, host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host's own git settings (a global filter, a GIT_* variable) do not reach workspace git."""
    marker = host / "user-config-ran"
    config = host / "gitconfig"
    config.write_text(
        f'[core]\n\tfsmonitor = {touch(marker)}\n[filter "lfs"]\n\tclean = {touch(marker)}; cat\n'
        f'[diff "lfs"]\n\ttextconv = {touch(marker)}; cat\n'
    )
    monkeypatch.setenv("HOME", str(host))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", touch(marker))
    await plant(world, f"echo '* filter=lfs diff=lfs' > .gitattributes && {EDIT}")
    state = await world.snapshot()
    patch = await world.patch(state)
    await world.restore(world.workspace.base_tree)
    assert not marker.exists()
    assert "+    return a + b" in patch


def test_a_folder_with_its_own_git_directory_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "legacy"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    with pytest.raises(UserError, match="inside the folder"):
        GitWorkspace(repo)


async def test_a_workspace_inside_another_is_refused(world: CodeWorld, host: Path, tmp_path: Path) -> None:
    """A folder inside a workspace has its git directory inside it too, where that sandbox writes."""
    marker = host / "nested-ran"
    inner = world.root / "vendor" / "inner"
    with pytest.raises(UserError, match="another workspace"):
        init_repository(inner, FILES)
    other = tmp_path / "other"
    init_repository(other, FILES)
    with pytest.raises(UserError, match="another workspace"):
        add_worktree(other, world.root / "vendor" / "worktree")
    # made from inside the outer sandbox, with a planted setting: refused all the same
    await plant(
        world,
        "mkdir -p vendor/inner && git init -q --separate-git-dir vendor/inner.trellis-git vendor/inner && "
        + f"git config --file vendor/inner.trellis-git/config core.fsmonitor {shlex.quote(touch(marker))}",
    )
    with pytest.raises(UserError, match=r"another user|another workspace"):
        GitWorkspace(inner)
    assert not marker.exists()


def test_a_sandbox_that_mounts_the_git_directory_writable_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init_repository(repo, FILES)
    sandbox = BwrapSandbox(repo, mounts=[Mount(source=tmp_path, target="/data", writable=True)])
    with pytest.raises(UserError, match="host's git directory"):
        CodeWorld(sandbox, task="t")


# A model patch whose conftest, run by the grading tests inside the sandbox, plants git settings in
# the workspace and leaves a change behind for the host's restore to undo.
CONFTEST = """\
import os
import subprocess

os.chdir("/workspace")
if not os.path.isdir(".git"):
    if os.path.lexists(".git"):
        os.remove(".git")
    subprocess.run(["git", "init", "-q", "."], check=True)
for key, value in {settings!r}:
    subprocess.run(["git", "config", key, value], check=True)
with open(".gitattributes", "w") as out:
    out.write("* filter=evil diff=evil\\n")
with open("tinycalc/__init__.py", "a") as out:
    out.write("# planted\\n")
"""


@pytest.mark.slow
def test_grading_restores_the_repository_without_running_planted_git(tmp_path: Path, host: Path) -> None:
    instance, source, lock = make_swe_task(tmp_path)
    env = SWEEnvironment(instance, tmp_path / "env")
    asyncio.run(env.prepare(str(source), lock, offline=True))
    marker = host / "grading-ran"
    victim = host / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine\n")
    settings = [
        ("core.fsmonitor", touch(marker)),
        ("filter.evil.clean", touch(marker) + "; cat"),
        ("filter.evil.smudge", touch(marker) + "; cat"),
        ("diff.evil.textconv", touch(marker) + "; cat"),
        ("core.worktree", str(victim)),
    ]
    conftest = CONFTEST.format(settings=settings)
    lines = "".join(f"+{line}\n" for line in conftest.splitlines())
    patch = instance.patch + (
        f"diff --git a/tests/conftest.py b/tests/conftest.py\nnew file mode 100644\n--- /dev/null\n"
        f"+++ b/tests/conftest.py\n@@ -0,0 +1,{len(conftest.splitlines())} @@\n{lines}"
    )
    report = asyncio.run(evaluate(env, patch, name="planted"))
    assert report.patch_successfully_applied and report.resolved, report
    log = Path(report.log_path or "").read_text()
    assert "PASSED tests/test_calc.py::test_add" in log
    assert not marker.exists()
    assert sorted(p.name for p in host.iterdir()) == ["victim"]
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
    # the repository is back at its base commit: the planted change and files are gone
    workspace = GitWorkspace(env.repo_dir, instance.base_commit)
    assert asyncio.run(workspace.snapshot()) == workspace.base_tree
    assert (env.repo_dir / CODE).read_text() == FILES[CODE]
    assert not (env.repo_dir / "tests" / "conftest.py").exists()
