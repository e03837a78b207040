"""A git workspace whose state is a tree id.

`snapshot()` stages the working folder into a private index and writes a tree: identical files give
identical ids, so two branches that reach the same code are found to be one state for free.
`restore(state)` resets the private index to that tree and updates only the files that differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import git

from trellis.errors import UserError
from trellis.tree import StateId

_GIT_ENV = {
    # The workspace may be owned by the sandbox user; the host still has to read it.
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "safe.directory",
    "GIT_CONFIG_VALUE_0": "*",
    "GIT_AUTHOR_NAME": "trellis",
    "GIT_AUTHOR_EMAIL": "trellis@localhost",
    "GIT_COMMITTER_NAME": "trellis",
    "GIT_COMMITTER_EMAIL": "trellis@localhost",
}


class GitWorkspace:
    """A repository folder on this machine, addressed by tree ids."""

    def __init__(self, root: str | Path, base: str = "HEAD", *, on_change: Callable[[list[Path]], None] | None = None):
        self.root = Path(root).resolve()
        try:
            self.repo = git.Repo(self.root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise UserError(f"{self.root} is not a git repository") from exc
        self._env = {**_GIT_ENV, "GIT_INDEX_FILE": str(Path(self.repo.git_dir) / "trellis.index")}
        self.base_commit = self._git("rev-parse", f"{base}^{{commit}}")
        self.base_tree = self._git("rev-parse", f"{self.base_commit}^{{tree}}")
        self.on_change = on_change
        """Called with the host paths that `restore` wrote (the sandbox takes ownership of them)."""

    def _git(self, *args: str) -> str:
        return str(self.repo.git.execute(["git", *args], env=self._env, strip_newline_in_stdout=True))

    # Synchronous forms (used by benchmarks and threads); the async ones below run them off the loop.

    def snapshot_sync(self) -> StateId:
        self._git("add", "--all")
        return self._git("write-tree")

    def restore_sync(self, state: StateId) -> list[str]:
        # Stage the folder as it is, so the reset below also removes files the target lacks.
        self._git("add", "--all")
        changed = self._git("diff-index", "--cached", "--name-only", "--no-renames", state).splitlines()
        if not changed:
            return []
        self._git("read-tree", "--reset", "-u", state)
        if self.on_change is not None:
            self.on_change([self.root / name for name in changed if (self.root / name).exists()])
        return changed

    def diff_sync(self, state: StateId | None = None, exclude: Sequence[str] = ()) -> str:
        tree = state or self.snapshot_sync()
        pathspec = ["--", ".", *(f":(exclude){path}" for path in exclude)]
        text = self._git("diff", "--no-color", "--no-ext-diff", "--binary", self.base_commit, tree, *pathspec)
        return text + "\n" if text else ""

    async def snapshot(self) -> StateId:
        return await asyncio.to_thread(self.snapshot_sync)

    async def restore(self, state: StateId) -> list[str]:
        """Make the folder hold exactly `state`; returns the paths that changed."""
        return await asyncio.to_thread(self.restore_sync, state)

    async def diff(self, state: StateId | None = None, exclude: Sequence[str] = ()) -> str:
        """The patch from the base commit to `state` (default: the folder as it is now)."""
        return await asyncio.to_thread(self.diff_sync, state, exclude)

    def apply_sync(self, patch: str) -> tuple[bool, str]:
        if not patch.strip():
            return True, "empty patch"
        patch_file = Path(self.repo.git_dir) / "trellis.patch"
        patch_file.write_text(patch if patch.endswith("\n") else patch + "\n")
        try:
            self._git("apply", "--whitespace=nowarn", str(patch_file))
        except git.GitCommandError as exc:
            return False, str(exc.stderr).strip()
        finally:
            patch_file.unlink(missing_ok=True)
        if self.on_change is not None:
            touched = [self.root / name for name in _patch_paths(patch)]
            self.on_change([path for path in touched if path.exists()])
        return True, "applied"

    async def apply(self, patch: str) -> tuple[bool, str]:
        """Apply a patch to the folder: (applied, git's message)."""
        return await asyncio.to_thread(self.apply_sync, patch)


def _patch_paths(patch: str) -> list[str]:
    paths = []
    for line in patch.splitlines():
        if line.startswith("+++ b/"):
            paths.append(line[6:].strip())
    return paths


def init_repository(root: str | Path, files: dict[str, str], message: str = "base") -> str:
    """Create a git repository with `files` committed; returns the commit id (for tests and examples)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(root)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    repo.git.execute(["git", "add", "--all"], env=_GIT_ENV)
    repo.git.execute(["git", "commit", "-q", "-m", message], env=_GIT_ENV)
    return repo.head.commit.hexsha


def add_worktree(repo: str | Path, path: str | Path, commit: str = "HEAD") -> Path:
    """A git worktree of `repo` at `commit`: its own folder and index, the same object store, so
    states written in one worktree can be restored in the other (for parallel expansion)."""
    target = Path(path).resolve()
    if (target / ".git").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    repository = git.Repo(repo)
    repository.git.execute(["git", "worktree", "prune"], env=_GIT_ENV)
    repository.git.execute(["git", "worktree", "add", "-q", "--detach", str(target), commit], env=_GIT_ENV)
    return target
