"""A git workspace whose state is a tree id.

`snapshot()` stages the working folder into a private index and writes a tree: identical files give
identical ids, so two branches that reach the same code are found to be one state for free.
`restore(state)` resets the private index to that tree and updates only the files that differ.

The host never trusts the workspace. The folder is the sandbox's (mounted writable at /workspace);
its git directory is the host's and lives beside it, as `<folder>.trellis-git`, where no sandbox
mount reaches. Host git is always pointed at that directory and at the folder explicitly, with no
system or user configuration and with hooks, fsmonitor, textconv, external diff and every
attribute that converts content switched off, so nothing written in the folder (a `.git`, a
`.gitattributes`, a link) is ever read as an instruction. The folder's own `.git` is only a relative
link to the host's directory, for people outside; in the sandbox it leads nowhere.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from trellis.errors import TrellisRunError, UserError
from trellis.tree import StateId

HOST_GIT_SUFFIX = ".trellis-git"
STATE_NAME = re.compile(r"[0-9a-f]{4,64}")
PRIVATE_INDEX = "trellis.index"

# Configuration given on the command line outranks every file git could read; the repository's own
# file is the host's (the sandbox cannot reach it), these make the rest of the rules hold anyway.
SAFE_CONFIG = {
    "core.fsmonitor": "false",
    "core.hooksPath": os.devnull,
    "core.attributesFile": os.devnull,
    "core.excludesFile": os.devnull,
    "core.autocrlf": "false",
    "core.safecrlf": "false",
    "core.symlinks": "true",
    "core.ignoreCase": "false",
    "core.protectNTFS": "true",
    "core.protectHFS": "true",
    "core.untrackedCache": "false",
    "core.splitIndex": "false",
    "core.sparseCheckout": "false",
    "core.quotePath": "false",
    "core.pager": "cat",
    "core.askPass": "",
    "credential.helper": "",
    "protocol.allow": "never",
    "submodule.recurse": "false",
    "diff.noprefix": "false",
    "diff.mnemonicPrefix": "false",
    "diff.relative": "false",
    "color.ui": "never",
    "gc.auto": "0",
    "maintenance.auto": "false",
    "commit.gpgSign": "false",
    "init.defaultBranch": "main",
    "advice.detachedHead": "false",
}
# $GIT_DIR/info/attributes outranks every .gitattributes in the work tree: content passes through
# unchanged (no filter drivers, no end-of-line or encoding conversion, no $Id$ expansion) and diffs
# use no driver, whatever the folder declares.
NEUTRAL_ATTRIBUTES = (
    "# written by trellis: files in the workspace are data, never instructions\n"
    "* !filter !text !eol !crlf !ident !working-tree-encoding !diff !merge !whitespace !export-ignore !export-subst\n"
)
_IDENTITY = {
    "GIT_AUTHOR_NAME": "trellis",
    "GIT_AUTHOR_EMAIL": "trellis@localhost",
    "GIT_COMMITTER_NAME": "trellis",
    "GIT_COMMITTER_EMAIL": "trellis@localhost",
}


class GitError(TrellisRunError):
    """A git command on a workspace failed."""


def host_git_dir(root: str | Path) -> Path:
    """Where the host keeps the git directory of workspace folder `root`: beside it, not inside."""
    folder = Path(root).resolve()
    return folder.parent / f"{folder.name}{HOST_GIT_SUFFIX}"


def git_environment(git_dir: str | None, work_tree: str | None, index: str | None, *, path: str) -> dict[str, str]:
    """The whole environment of a git command that trusts nothing: built from nothing (no GIT_*
    variable of the caller, no GIT_EXTERNAL_DIFF, no GIT_CONFIG_PARAMETERS reaches it), no system or
    user configuration, and `SAFE_CONFIG` on the command line, which outranks every file git reads."""
    env = {
        "PATH": path,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_SYSTEM": os.devnull,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        **_IDENTITY,
        "GIT_CONFIG_COUNT": str(len(SAFE_CONFIG)),
    }
    for number, (key, value) in enumerate(SAFE_CONFIG.items()):
        env[f"GIT_CONFIG_KEY_{number}"] = key
        env[f"GIT_CONFIG_VALUE_{number}"] = value
    if git_dir is not None:
        env["GIT_DIR"] = git_dir
    if work_tree is not None:
        env["GIT_WORK_TREE"] = work_tree
    if index is not None:
        env["GIT_INDEX_FILE"] = index
    return env


def _git_env(git_dir: Path | None, work_tree: Path | None, index: Path | None) -> dict[str, str]:
    path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    return git_environment(*(None if p is None else str(p) for p in (git_dir, work_tree, index)), path=path)


def run_git(
    git_dir: Path | None,
    work_tree: Path | None,
    *args: str,
    index: Path | None = None,
    stdin: bytes | None = None,
    cwd: Path | None = None,
) -> bytes:
    """Run host git on an explicit git directory and work tree, trusting nothing in either; returns
    stdout, raises `GitError` with git's message when it fails."""
    result = subprocess.run(
        ["git", "--no-pager", *args],
        input=stdin,
        capture_output=True,
        env=_git_env(git_dir, work_tree, index),
        cwd=cwd or work_tree or git_dir,
        check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"git {args[0]} failed: {message}")
    return result.stdout


def _text(output: bytes) -> str:
    return output.decode("utf-8", "replace").strip()


def _names(output: bytes) -> list[str]:
    return [os.fsdecode(name) for name in output.split(b"\0") if name]


def _common_dir(git_dir: Path) -> Path:
    pointer = git_dir / "commondir"
    if not pointer.is_file():
        return git_dir
    return (git_dir / pointer.read_text().strip()).resolve()


def _check_host_owned(git_dir: Path, root: Path) -> None:
    if git_dir.is_symlink() or git_dir.stat().st_uid != os.geteuid():
        raise UserError(
            f"{git_dir} (the git directory of {root}) is a link or belongs to another user, so trellis "
            "will not run git on it; remove it and make the workspace again"
        )


def _harden(git_dir: Path) -> None:
    """Write the attributes that neutralise the work tree's own (idempotent)."""
    info = _common_dir(git_dir) / "info"
    info.mkdir(parents=True, exist_ok=True)
    attributes = info / "attributes"
    if not attributes.is_file() or attributes.read_text() != NEUTRAL_ATTRIBUTES:
        partial = info / f"attributes.{os.getpid()}"
        partial.write_text(NEUTRAL_ATTRIBUTES)
        partial.replace(attributes)  # whole, for git commands of other worktrees running meanwhile


def _open_git_dir(root: Path) -> Path:
    git_dir = host_git_dir(root)
    if not git_dir.is_dir():
        if (root / ".git").is_dir():
            raise UserError(
                f"{root} is not a git repository trellis can use: its git directory is inside the folder, "
                f"where sandboxed commands can rewrite it. Make the workspace with init_repository() or "
                f"add_worktree() (for SWE-bench: `trellis swe prepare --force`), or move {root / '.git'} "
                f"to {git_dir}"
            )
        raise UserError(
            f"{root} is not a git repository trellis can use: there is no {git_dir}; make the workspace "
            "with init_repository(), make_task_repository() or add_worktree()"
        )
    for directory in (git_dir, _common_dir(git_dir)):
        _check_host_owned(directory, root)
        _check_outside_workspaces(directory, root)
    _harden(git_dir)
    return git_dir


def _check_outside_workspaces(git_dir: Path, root: Path) -> None:
    """Refuse a git directory inside another workspace folder, where that one's sandbox could write it."""
    for folder in git_dir.parents:
        if folder.parent != folder and host_git_dir(folder).is_dir():
            raise UserError(
                f"the git directory of {root} is inside {folder}, another workspace, whose sandbox could "
                f"rewrite it; put {root.name} outside {folder}"
            )


def point_at(root: Path, git_dir: Path) -> None:
    """The folder's `.git`: a relative link to the host's directory, for people and tools outside the
    sandbox (plain `git diff` works there). Inside the sandbox it leads nowhere, so git there sees no
    repository at all, and trellis itself never follows it."""
    pointer = root / ".git"
    if pointer.is_symlink() or pointer.is_file():
        pointer.unlink()
    elif pointer.is_dir():
        shutil.rmtree(pointer)
    pointer.symlink_to(os.path.relpath(git_dir, root))


class GitWorkspace:
    """A repository folder on this machine, addressed by tree ids."""

    def __init__(self, root: str | Path, base: str = "HEAD", *, on_change: Callable[[list[Path]], None] | None = None):
        self.root = Path(root).resolve()
        self.git_dir = _open_git_dir(self.root)
        """The host's git directory of this folder (outside the sandbox)."""
        self._index = self.git_dir / PRIVATE_INDEX
        if not self._index.exists() and (self.git_dir / "index").is_file():
            # start from the checkout's index: its file stats spare hashing every file again
            shutil.copyfile(self.git_dir / "index", self._index)
        try:
            self.base_commit = self._git("rev-parse", "--verify", "--end-of-options", f"{base}^{{commit}}")
        except GitError as exc:
            raise UserError(f"{base!r} is not a commit of {self.root}: {exc}") from exc
        self.base_tree = self._git("rev-parse", f"{self.base_commit}^{{tree}}")
        self.on_change = on_change
        """Called with the host paths that `restore` wrote (the sandbox takes ownership of them)."""

    async def opened(self) -> GitWorkspace:
        """Ready from the start (the same call as a container's workspace, which sets itself up)."""
        return self

    def _run(self, *args: str, stdin: bytes | None = None) -> bytes:
        return run_git(self.git_dir, self.root, *args, index=self._index, stdin=stdin)

    def _git(self, *args: str) -> str:
        return _text(self._run(*args))

    # The work itself, blocking; the async methods below, the workspace's one API, run it off the loop.

    def _snapshot_now(self) -> StateId:
        self._run("add", "--all")
        return self._git("write-tree")

    def _restore_now(self, state: StateId) -> list[str]:
        # Stage the folder as it is, so the reset below also removes files the target lacks.
        self._run("add", "--all")
        changed = _names(self._run("diff-index", "--cached", "-z", "--name-only", "--no-renames", state))
        if not changed:
            return []
        self._run("read-tree", "--reset", "-u", state)
        if self.on_change is not None:
            self.on_change([self.root / name for name in changed if (self.root / name).exists()])
        return changed

    def _diff_now(self, state: StateId | None = None, exclude: Sequence[str] = ()) -> str:
        tree = state or self._snapshot_now()
        pathspec = ["--", ".", *(f":(exclude,literal){path}" for path in exclude)]
        output = self._run(
            "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--binary", self.base_commit, tree, *pathspec
        )
        text = output.decode("utf-8", "replace")
        return text if not text or text.endswith("\n") else text + "\n"

    def _files_now(self, state: StateId | None = None) -> list[str]:
        return _names(self._run("ls-tree", "-r", "-z", "--name-only", state or self.base_commit))

    def _resolve_now(self, name: str) -> StateId:
        """The full id of the state `name` names: a tree id (or a unique prefix of at least 4 digits)
        this workspace has stored; UserError for anything else."""
        text = name.strip().lower()
        if not STATE_NAME.fullmatch(text):
            raise UserError(f"{name!r} is not a state id (4 to 64 hexadecimal digits)")
        try:
            return self._git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{text}^{{tree}}")
        except GitError:
            raise UserError(f"no stored state {text!r} in this workspace; give an id a snapshot returned") from None

    async def snapshot(self) -> StateId:
        return await asyncio.to_thread(self._snapshot_now)

    async def resolve(self, name: str) -> StateId:
        return await asyncio.to_thread(self._resolve_now, name)

    async def restore(self, state: StateId) -> list[str]:
        """Make the folder hold exactly `state`; returns the paths that changed."""
        return await asyncio.to_thread(self._restore_now, state)

    async def diff(self, state: StateId | None = None, exclude: Sequence[str] = ()) -> str:
        """The patch from the base commit to `state` (default: the folder as it is now)."""
        return await asyncio.to_thread(self._diff_now, state, exclude)

    async def files(self, state: StateId | None = None) -> list[str]:
        """The file paths of `state` (default: the base commit), sorted as git sorts them."""
        return await asyncio.to_thread(self._files_now, state)

    def _apply_now(self, patch: str) -> tuple[bool, str]:
        if not patch.strip():
            return True, "empty patch"
        text = patch if patch.endswith("\n") else patch + "\n"
        # the patch goes in on stdin: no file the host writes, so no path the sandbox could redirect
        try:
            self._run("apply", "--whitespace=nowarn", "-", stdin=text.encode("utf-8", "replace"))
        except GitError as exc:
            return False, str(exc)
        if self.on_change is not None:
            touched = [self.root / name for name in _patch_paths(patch)]
            self.on_change([path for path in touched if path.exists()])
        return True, "applied"

    def _export_now(self, state: StateId) -> bytes:
        listed = self._run("rev-list", "--objects", "--end-of-options", state, f"^{self.base_tree}")
        ids = b"".join(line.split(b" ", 1)[0] + b"\n" for line in listed.splitlines() if line.strip())
        return self._run("pack-objects", "--stdout", "-q", stdin=ids)

    def _import_now(self, pack: bytes) -> None:
        # index-pack makes the pack visible only once it is whole: a state is never half there
        self._run("index-pack", "--stdin", "--strict", stdin=pack)

    def _has_now(self, state: StateId) -> bool:
        try:
            self._run("cat-file", "-e", f"{state}^{{tree}}")
        except GitError:
            return False
        return True

    async def export_state(self, state: StateId) -> bytes:
        """`state`'s objects that the base commit lacks, as a git pack: what another clone of the
        same base needs to restore it (`import_state`). Data only: nothing in it runs."""
        return await asyncio.to_thread(self._export_now, state)

    async def import_state(self, pack: bytes) -> None:
        """Store the objects of a pack from `export_state`; the states they make can then be restored."""
        await asyncio.to_thread(self._import_now, pack)

    async def has_state(self, state: StateId) -> bool:
        """Whether this workspace holds every object of `state` at its top (it can restore it)."""
        return await asyncio.to_thread(self._has_now, state)

    async def apply(self, patch: str) -> tuple[bool, str]:
        """Apply a patch to the folder: (applied, git's message)."""
        return await asyncio.to_thread(self._apply_now, patch)


def _patch_paths(patch: str) -> list[str]:
    paths = []
    for line in patch.splitlines():
        if line.startswith("+++ b/"):
            paths.append(line[6:].strip())
    return paths


def checkout(git_dir: Path, root: Path, commit: str) -> None:
    """Fill `root` with `commit` (files only, through the safe git) and detach HEAD there."""
    _harden(git_dir)
    run_git(git_dir, root, "read-tree", "--reset", "-u", commit)
    run_git(git_dir, root, "update-ref", "--no-deref", "HEAD", commit)


def init_repository(root: str | Path, files: dict[str, str], message: str = "base") -> str:
    """Create a git repository with `files` committed; returns the commit id (for tests and examples).

    The git directory is the host's, beside the folder (see `host_git_dir`).
    """
    folder = Path(root).resolve()
    git_dir = host_git_dir(folder)
    _check_outside_workspaces(git_dir, folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not git_dir.exists():
        if (folder / ".git").exists():
            raise UserError(f"{folder} already holds a .git; init_repository makes new repositories in new folders")
        run_git(git_dir, None, "init", "-q", "--template=", cwd=folder)
        run_git(git_dir, None, "config", "core.bare", "false")
    else:
        _check_host_owned(git_dir, folder)
    _harden(git_dir)
    point_at(folder, git_dir)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    run_git(git_dir, folder, "add", "--all")
    run_git(git_dir, folder, "commit", "-q", "--no-verify", "-m", message)
    return _text(run_git(git_dir, folder, "rev-parse", "HEAD"))


def add_worktree(repo: str | Path, path: str | Path, commit: str = "HEAD") -> Path:
    """A worktree of workspace `repo` at `commit`: its own folder, index and HEAD, the same object
    store, so states written in one worktree can be restored in the other (for parallel expansion).

    Its git directory is the host's too (`<path>.trellis-git`, pointing at `repo`'s), and nothing in
    either folder is read: no hook runs, no `.git` file is followed.
    """
    source = Path(repo).resolve()
    target = Path(path).resolve()
    common = _common_dir(_open_git_dir(source))
    git_dir = host_git_dir(target)
    if git_dir.is_dir():
        _check_host_owned(git_dir, target)
        if _common_dir(git_dir) != common:
            raise UserError(f"{target} is a worktree of another repository than {source}; choose another folder")
        if not target.is_dir():  # the folder was removed, its git directory kept: fill it again
            target.mkdir(parents=True)
            run_git(git_dir, target, "read-tree", "--reset", "-u", "HEAD")
            point_at(target, git_dir)
        return target
    if target == source or source in target.parents or target in source.parents:
        raise UserError(f"a worktree cannot be inside its repository or hold it: {target} and {source}")
    _check_outside_workspaces(git_dir, target)
    partial = git_dir.with_name(git_dir.name + ".partial")
    if partial.exists():  # an earlier call was interrupted: both folders are ours to remove
        shutil.rmtree(partial)
        if target.exists():
            shutil.rmtree(target)
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} already exists and is not a worktree; choose a new or empty folder")
    sha = _text(run_git(common, None, "rev-parse", "--verify", "--end-of-options", f"{commit}^{{commit}}"))
    partial.mkdir(parents=True)
    (partial / "commondir").write_text(f"{common}\n")
    (partial / "HEAD").write_text(f"{sha}\n")
    target.mkdir(parents=True, exist_ok=True)
    run_git(partial, target, "read-tree", "--reset", "-u", sha)
    partial.rename(git_dir)
    point_at(target, git_dir)
    return target
