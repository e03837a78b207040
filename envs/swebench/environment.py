"""SWE-bench without Docker: the repository at its base commit, a venv with pinned dependencies and
the repository installed, all built inside the sandbox.

Layout of an environment folder (default `~/.cache/trellis/swe/<instance_id>/`):

    repo/        the workspace (mounted at /workspace in the sandbox)
    repo.trellis-git/  its git directory, the host's: never mounted where a sandbox could write it
    env/venv/    the virtual environment (mounted read-only at /env when tests run)
    env/lock.txt the pinned requirements it was built from
    ready.json   written last; an environment without it is rebuilt
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from trellis.envs.code.workspace import GitError, GitWorkspace, checkout, host_git_dir, point_at
from trellis.envs.sandbox.base import RunRequest, RunResult
from trellis.envs.sandbox.host import BwrapSandbox, HostSandbox, LocalSandbox, Mount, sandbox_owner
from trellis.envs.swebench.instance import SWEInstance

from trellis.errors import UserError
from trellis.models.weights import cache_dir

Progress = Callable[[str], None]
ENV_MOUNT = "/env"
GIT_MOUNT = "/git"
LAYOUT = "host-git-1"
"""Stamped in ready.json: environments of an older layout (a .git the sandbox could write) are rebuilt."""

# Test commands of repositories whose tests do not run under plain pytest.
REPO_TEST_COMMANDS = {
    "django/django": "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1",
    "sympy/sympy": "PYTHONWARNINGS='ignore::UserWarning,ignore::SyntaxWarning' bin/test -C --verbose",
}
NON_TEST_SUFFIXES = (
    ".json",
    ".png",
    ".csv",
    ".txt",
    ".md",
    ".jpg",
    ".jpeg",
    ".pkl",
    ".yml",
    ".yaml",
    ".toml",
    ".cfg",
    ".ini",
    ".rst",
    ".html",
    ".dcm",
)


def test_directives(instance: SWEInstance) -> list[str]:
    """What the test command is pointed at: the test files the test patch touches."""
    files = [f for f in instance.test_files if not f.endswith(NON_TEST_SUFFIXES)]
    if instance.repo == "django/django":
        return [f.removeprefix("tests/").removesuffix(".py").replace("/", ".") for f in files]
    return files


def test_command(instance: SWEInstance) -> str:
    base = instance.test_cmd or REPO_TEST_COMMANDS.get(instance.repo, "pytest -rA")
    return " ".join([base, *test_directives(instance)])


def find_repository(repo: str, roots: list[Path]) -> str | None:
    """A local clone or bare mirror of `owner/name` under one of `roots`."""
    owner, _, name = repo.partition("/")
    for root in roots:
        for candidate in (f"{owner}+{name}", f"{owner}__{name}", name, f"{owner}/{name}"):
            for path in (root / candidate, root / f"{candidate}.git", root / candidate / "repo"):
                if (path / ".git").exists() or (path / "HEAD").is_file():
                    return str(path)
            if (root / f"{candidate}.bundle").is_file():
                return str(root / f"{candidate}.bundle")
    return None


# An offline venv inherits packages from this Python but not their commands (`pytest`); this writes
# launchers for them that run under the venv's interpreter, so the repository's install is visible.
_LAUNCHERS = """
import importlib.metadata as md, os, sys
bin_dir = os.path.dirname(sys.executable)
for dist in md.distributions():
    for ep in dist.entry_points:
        target = os.path.join(bin_dir, ep.name)
        if ep.group != "console_scripts" or os.path.exists(target):
            continue
        module, _, attr = ep.value.partition(":")
        call = attr.split("[")[0].strip() or "main"
        with open(target, "w") as out:
            out.write(f"#!{sys.executable}\\nimport sys\\nfrom {module.strip()} import {call.split('.')[0]}\\n"
                      f"sys.exit({call}())\\n")
        os.chmod(target, 0o755)
"""


_LINK = """
import site, pathlib
pathlib.Path(site.getsitepackages()[0], "_trellis_inherited.pth").write_text({path!r} + "\\n")
"""


class SWEEnvironment:
    """A prepared (or to-be-prepared) environment for one instance."""

    def __init__(self, instance: SWEInstance, root: Path | None = None, *, sandbox: str = "bwrap") -> None:
        if sandbox not in ("bwrap", "local"):
            raise UserError(f"SWE-bench without Docker runs in the bwrap or local sandbox, not {sandbox!r}")
        self.instance = instance
        self.root = (root or cache_dir() / "swe" / instance.instance_id).resolve()
        self.repo_dir = self.root / "repo"
        self.env_dir = self.root / "env"
        self.kind = sandbox
        self.env_path = ENV_MOUNT if sandbox == "bwrap" else str(self.env_dir)

    @property
    def ready(self) -> bool:
        return (self.root / "ready.json").exists()

    def checkout_held(self) -> AbstractAsyncContextManager[None]:
        """The environment's own checkout (`repo/`) for this holder alone, until the block ends: grading
        applies patches there and a solve reads the base's code from it, so processes (and coroutines)
        that share the environment take turns. Not reentrant."""
        return _held(self.root.parent / f".{self.root.name}.checkout.lock")

    def preparation_held(self) -> AbstractAsyncContextManager[None]:
        """Preparing this environment for this holder alone, until the block ends: the workers of one
        machine share its cache, so one prepares and the others find it prepared. Not reentrant."""
        return _held(self.root.parent / f".{self.root.name}.lock")

    @property
    def git_dir(self) -> Path:
        """The repository's git directory: the host's, beside the workspace, never writable inside."""
        return host_git_dir(self.repo_dir)

    def sandbox(self, *, network: bool = False, writable_env: bool = False, git: bool = False) -> HostSandbox:
        """`git`: the git directory is visible read-only at /git (for installs that read the version
        from git); never for commands of an agent, which would find later commits there."""
        if self.kind == "local":
            return LocalSandbox(self.repo_dir)
        mounts = [Mount(source=self.env_dir, target=ENV_MOUNT, writable=writable_env)]
        if git:
            mounts.append(Mount(source=self.git_dir, target=GIT_MOUNT, writable=False))
        pip_cache = cache_dir() / "pip-sandbox"
        pip_cache.mkdir(parents=True, exist_ok=True)
        if (owner := sandbox_owner()) is not None:
            shutil.chown(pip_cache, *owner)
        mounts.append(Mount(source=pip_cache, target="/cache/pip", writable=True))
        return BwrapSandbox(self.repo_dir, network=network, mounts=mounts)

    def run_env(self) -> dict[str, str]:
        venv = f"{self.env_path}/venv"
        return {
            "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
            "VIRTUAL_ENV": venv,
            "PIP_CACHE_DIR": "/cache/pip" if self.kind == "bwrap" else str(cache_dir() / "pip-sandbox"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def workspace(self, sandbox: HostSandbox) -> GitWorkspace:
        return GitWorkspace(self.repo_dir, self.instance.base_commit, on_change=lambda paths: sandbox.adopt(*paths))

    async def prepare(
        self,
        source: str,
        lock: Path | None = None,
        *,
        progress: Progress | None = None,
        force: bool = False,
        offline: bool = False,
    ) -> SWEEnvironment:
        """Clone `source` at the base commit, build the venv, install the pins and the repository.

        `offline` builds without any network: the venv sees this Python's site-packages, pins must
        already be satisfied there (pip runs with --no-index), and the repository installs without
        build isolation.
        """
        say = progress or (lambda _: None)
        lock_text = lock.read_text() if lock is not None else ""
        stamp = {
            "base_commit": self.instance.base_commit,
            "lock": hashlib.sha256(lock_text.encode()).hexdigest(),
            "sandbox": self.kind,
            "offline": offline,
            "layout": LAYOUT,
        }
        marker = self.root / "ready.json"
        if not force and marker.exists() and json.loads(marker.read_text()) == stamp:
            say("already prepared")
            return self
        if self.root.exists():
            shutil.rmtree(self.root)
        self.env_dir.mkdir(parents=True)
        say(f"cloning {self.instance.repo} at {self.instance.base_commit[:10]}")
        await asyncio.to_thread(self._clone, source)
        if self.kind == "bwrap" and (owner := sandbox_owner()) is not None:
            shutil.chown(self.env_dir, *owner)
        (self.env_dir / "lock.txt").write_text(lock_text)
        sandbox = self.sandbox(network=not offline, writable_env=True, git=True)
        env = self.run_env()
        python = Path(sys.base_prefix) / "bin" / "python3"
        venv_flags = " --system-site-packages" if offline else ""
        pip_flags = " --no-index" if offline else ""
        build_flags = " --no-build-isolation" if offline else ""
        steps = [("creating the venv", f"{python} -m venv{venv_flags} {self.env_path}/venv")]
        if offline and sys.prefix != sys.base_prefix:
            # trellis itself runs in a venv: expose that venv's packages too, not only the base's
            inherited = sysconfig.get_path("purelib")
            steps.append(("linking this Python's packages", f"python -c {shlex.quote(_LINK.format(path=inherited))}"))
        if lock_text.strip():
            steps.append(("installing pinned dependencies", f"pip install -q{pip_flags} -r {self.env_path}/lock.txt"))
        install = "installing the repository"
        steps.append((install, f"pip install -q{pip_flags}{build_flags} --no-deps -e ."))
        if offline:
            steps.append(("adding launchers for inherited commands", f"python -c {shlex.quote(_LAUNCHERS)}"))
        # the install may ask git for the version (setuptools-scm): it reads the host's git directory,
        # read-only, since the workspace holds none
        git_dir = GIT_MOUNT if self.kind == "bwrap" else str(self.git_dir)
        git_env = {"GIT_DIR": git_dir, "GIT_WORK_TREE": sandbox.workspace}
        for message, command in steps:
            say(message)
            step_env = {**env, **git_env} if message == install else env
            result = await sandbox.run(RunRequest(command=command, timeout=1800, env=step_env))
            self._check(result, message)
        marker.write_text(json.dumps(stamp))
        say("ready")
        return self

    def _clone(self, source: str) -> None:
        # The clone itself may use this user's git settings (a proxy, credentials); it runs no hook and
        # checks nothing out. The checkout runs through the host's safe git, like every later command.
        args = ["git", "-c", f"core.hooksPath={os.devnull}", "-c", "core.fsmonitor=false", "clone", "-q"]
        args += ["--no-checkout", "--template=", f"--separate-git-dir={self.git_dir}", source, str(self.repo_dir)]
        result = subprocess.run(args, capture_output=True, text=True)
        if result.returncode != 0:
            raise UserError(f"`{' '.join(args)}` failed: {result.stderr.strip()}; check the repository source")
        try:
            checkout(self.git_dir, self.repo_dir, self.instance.base_commit)
            point_at(self.repo_dir, self.git_dir)  # a link in place of the `.git` file clone wrote
        except GitError as exc:
            raise UserError(f"{exc}; check that {source} holds commit {self.instance.base_commit}") from exc

    @staticmethod
    def _check(result: RunResult, step: str) -> None:
        if not result.ok:
            raise UserError(f"{step} failed (exit {result.exit_code}):\n{result.output[-3000:]}")


@asynccontextmanager
async def _held(lock: Path) -> AsyncIterator[None]:
    """An exclusive flock on `lock` (created with its folder) until the block ends; waits in a thread."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as held:
        await asyncio.to_thread(fcntl.flock, held, fcntl.LOCK_EX)
        yield
