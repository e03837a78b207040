"""Sandboxes whose workspace is a folder on this machine: `bwrap` (isolated) and `local` (not)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from trellis.envs.sandbox.base import (
    RunRequest,
    RunResult,
    SandboxLimits,
    communicate,
    disk_usage,
    finished,
    inside,
    list_tree,
)
from trellis.envs.sandbox.bubblewrap import NOBODY, check_bwrap, find_bwrap, is_bundled, missing_options, tool
from trellis.envs.sandbox.cgroups import CgroupSupport, SandboxCgroup, cgroup_support

from trellis.errors import UserError

SANDBOX_WORKSPACE = "/workspace"
MB = 2**20
SHM_MB = 64
ENTER_CGROUP = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
"""Host-side shell that writes its own pid into each cgroup.procs file given before `--`, then execs the rest."""


def sandbox_owner() -> tuple[int, int] | None:
    """(uid, gid) that host folders a bwrap sandbox writes to (a mounted cache, an environment) must belong to:
    nobody when trellis runs as root, None (leave them as they are) for any other user, whom the sandbox runs as."""
    return (NOBODY, NOBODY) if os.geteuid() == 0 else None


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
    """bubblewrap: no network, own pid namespace, read-only system, no privileges, limits over the whole sandbox.

    The workspace (mounted at /workspace), a fresh size-capped /tmp and /dev/shm are the only writable
    paths; the host's home, environment, keys and tokens never enter. Every command runs in a user
    namespace of its own that cannot make further user namespaces, so nothing inside gains privileges
    (`unshare -Ur` fails). As root, bwrap builds the sandbox with root's rights and commands run as
    `uid` (nobody); as any other user, everything runs as that user, with no chown and no root.

    Memory and processes are limited for the whole sandbox by a cgroup where the machine allows it
    (`self.cgroups` says whether and why not; a warning is logged once when not), else per process
    with rlimits. The workspace's disk use is watched while a command runs. A timeout kills bwrap,
    which takes every process of the pid namespace with it, and every process of the cgroup.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        limits: SandboxLimits | None = None,
        network: bool = False,
        mounts: list[Mount] | None = None,
        uid: int | None = None,
        bwrap: str | Path | None = None,
        use_cgroups: bool = True,
    ) -> None:
        super().__init__(root)
        self.privileged = os.geteuid() == 0
        """True when trellis runs as root: bwrap then builds the sandbox as root and commands run as `uid`."""
        if uid is not None and not self.privileged:
            raise UserError("BwrapSandbox(uid=...) needs root; as another user, commands run as that user")
        if bwrap is None:
            self.bwrap = find_bwrap()
        else:
            self.bwrap = str(bwrap)
            if missing := missing_options(self.bwrap):
                raise UserError(f"{self.bwrap} lacks {', '.join(missing)}; give a bubblewrap 0.8 or newer")
        self.prlimit = tool("prlimit")
        self.setpriv = tool("setpriv") if self.privileged else ""
        self.limits = limits or SandboxLimits()
        self.network = network
        self.mounts = list(mounts or [])
        self.uid = (NOBODY if uid is None else uid) if self.privileged else os.getuid()
        self.owner = (self.uid, self.uid) if self.privileged else None
        self.adopt_tree()
        self._cgroup: SandboxCgroup | None = None
        check_bwrap(self.command_line(RunRequest(command="true")), self.privileged)
        self.cgroups = cgroup_support() if use_cgroups else CgroupSupport(reason="turned off (use_cgroups=False)")
        """Whether each command's memory and processes count against one cgroup of this sandbox, and why not."""
        if self.cgroups.available:
            self._cgroup = SandboxCgroup(
                self.cgroups, memory_bytes=self.limits.memory_mb * MB, pids=self.limits.processes
            )

    def _visible(self, paths: list[str], bound: list[str]) -> list[str]:
        """Arguments that show each of `paths` read-only at its own path, unless a bound folder holds it."""
        args: list[str] = []
        for path in paths:
            if any(path == top or path.startswith(top + "/") for top in bound):
                continue
            for parent in list(Path(path).parents)[::-1][1:]:
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", path, path]
            bound.append(path)
        return args

    def _system_args(self) -> list[str]:
        args: list[str] = []
        bound = []
        for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
            bound.append(top)
        args += ["--perms", "1777", "--size", str(self.limits.tmp_mb * MB), "--tmpfs", "/tmp"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        # /dev itself is a tmpfs without a size: only the sized /dev/shm in it stays writable
        args += ["--perms", "1777", "--size", str(SHM_MB * MB), "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]
        # The Python running trellis (and its base installation) is visible read-only, at its own path.
        prefixes = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)})
        args += self._visible(prefixes, bound)
        if self.privileged:  # the bwrap that runs inside, to enter a user namespace
            bwrap = os.path.realpath(self.bwrap)
            inner = [bwrap]
            if is_bundled(bwrap):  # the bundled binary loads libcap from its package
                package = Path(bwrap).parents[1]
                inner = [str(package), str(package.parent / f"{package.name}.libs")]
            args += self._visible([path for path in inner if os.path.exists(path)], bound)
        return args

    def command_line(self, request: RunRequest) -> list[str]:
        """The full argv that runs `request` (shown by `--verbose` runs and tests)."""
        argv: list[str] = []
        if self._cgroup is not None:  # join the sandbox's cgroup, then become bwrap
            argv += ["/bin/sh", "-c", ENTER_CGROUP, "trellis-enter-cgroup", *self._cgroup.procs_files(), "--"]
        argv += [self.bwrap, *self._system_args()]
        argv += ["--bind", str(self.root), self.workspace]
        for mount in self.mounts:
            argv += ["--bind" if mount.writable else "--ro-bind", str(mount.source), mount.target]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not self.network:
            argv.append("--unshare-net")
        if not self.privileged:
            argv += ["--unshare-user", "--disable-userns"]
        argv += ["--die-with-parent", "--new-session", "--chdir", self._cwd(request), "--clearenv"]
        python_bin = [str(Path(sys.prefix) / "bin")]
        for key, value in _minimal_env(request.env, python_bin).items():
            argv += ["--setenv", key, value]
        argv.append("--")
        if self.privileged:
            # Drop root, then enter a user namespace of this command's own: it cannot make another one, and
            # RLIMIT_NPROC counts the processes of this namespace only, not every sandbox's nobody.
            argv += [self.setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--"]
            argv += [self.bwrap, "--dev-bind", "/", "/", "--unshare-user", "--disable-userns", "--die-with-parent"]
            argv.append("--")
        limits = self.limits
        argv += [self.prlimit, f"--cpu={limits.cpu_seconds}"]
        if self._cgroup is None:  # the cgroup bounds the sandbox's memory; else each process's address space
            argv.append(f"--as={limits.memory_mb * MB}")
        argv += [f"--nproc={limits.processes}", f"--fsize={limits.file_size_mb * MB}", f"--nofile={limits.open_files}"]
        argv += ["--", "/bin/sh", "-c", request.command]
        return argv

    async def run(self, request: RunRequest) -> RunResult:
        argv = self.command_line(request)
        cgroup = self._cgroup
        if cgroup is not None:
            if cgroup.users == 0:
                cgroup.create()
            cgroup.users += 1
        try:
            return await self._run_watched(argv, request, cgroup)
        finally:
            if cgroup is not None:
                cgroup.users -= 1
                await self._remove_cgroup(cgroup)

    @staticmethod
    async def _remove_cgroup(cgroup: SandboxCgroup, patience: float = 2.0) -> None:
        """Remove the sandbox's cgroup once no command of it runs. Processes of the pid namespace die a
        moment after bwrap, so this retries (killing stragglers) until a new command takes it over;
        one that still stays is reused by the next command and swept once this process has ended."""
        deadline = time.monotonic() + patience
        while cgroup.users == 0 and not cgroup.remove() and time.monotonic() < deadline:
            cgroup.kill_all()
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Remove the sandbox's cgroup if a command left it behind; the workspace stays."""
        if self._cgroup is not None and self._cgroup.users == 0:
            await self._remove_cgroup(self._cgroup)

    async def _run_watched(self, argv: list[str], request: RunRequest, cgroup: SandboxCgroup | None) -> RunResult:
        ooms, refused = (cgroup.oom_kills(), cgroup.forks_refused()) if cgroup else (0, 0)
        size_before = await asyncio.to_thread(disk_usage, self.root)
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={},
            start_new_session=True,
        )

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            if cgroup is not None:
                cgroup.kill_all()

        notes: list[str] = []
        watch = asyncio.create_task(self._watch_disk(size_before, kill, notes))
        try:
            out, err, timed_out = await communicate(process, request, kill)
        finally:
            watch.cancel()
            await asyncio.wait([watch])
        result = finished(request, process.returncode, out, err, timed_out, started)
        if cgroup is not None:
            if cgroup.oom_kills() > ooms:
                notes.append(f"[the sandbox used all its memory ({self.limits.memory_mb} MB): a process was killed]")
            if cgroup.forks_refused() > refused:
                notes.append(f"[a fork failed: the sandbox may run {self.limits.processes} processes]")
        if not notes and (size := await asyncio.to_thread(disk_usage, self.root)) > self._disk_cap(size_before):
            notes.append(f"[{self._disk_note(size)}]")
        if notes:
            result.stderr = "\n".join([result.stderr.rstrip("\n"), *notes]).lstrip("\n")
        return result

    def _disk_cap(self, size_before: int) -> int:
        """A command may grow the workspace up to the limit; one that starts above it may only shrink it."""
        return max(self.limits.disk_mb * MB, size_before)

    def _disk_note(self, size: int) -> str:
        return (
            f"the workspace takes {size / MB:.0f} MB, over its limit of {self.limits.disk_mb} MB: "
            "delete files it does not need"
        )

    async def _watch_disk(self, size_before: int, kill: Callable[[], None], notes: list[str]) -> None:
        """Kill the command when the workspace grows past its limit or the disk runs low, and say why.

        Checks every half second, or less often on a big workspace, so that walking it costs at most
        about 5% of one core."""
        interval = 0.5
        cap = self._disk_cap(size_before)
        reserve = self.limits.disk_reserve_mb * MB
        while True:
            try:
                free = await asyncio.to_thread(_free_bytes, self.root)
            except OSError:  # the workspace is gone: nothing left to watch
                return
            if free < reserve:
                kill()
                notes.append(
                    f"[killed: the disk holding the workspace has {free / MB:.0f} MB free, less than the "
                    f"{self.limits.disk_reserve_mb} MB the sandbox keeps free]"
                )
                return
            await asyncio.sleep(interval)
            walk_started = time.perf_counter()
            size = await asyncio.to_thread(disk_usage, self.root)
            interval = max(0.5, 20 * (time.perf_counter() - walk_started))
            if size > cap:
                kill()
                notes.append(f"[killed: {self._disk_note(size)}]")
                return


def _free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


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
