"""The `Sandbox` seam: run a command with limits, read and write files, close.

Every call is one typed request and one typed result, so a remote sandbox only needs to ship these
models. Output is read as it comes and capped (head and tail kept, a marker says how much was cut),
so a chatty process never blocks on a full pipe and never fills memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from trellis.errors import UserError

DEFAULT_OUTPUT_CAP = 256 * 1024


class SandboxLimits(BaseModel):
    """Resource limits of every command a sandbox runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_seconds: int = Field(default=600, ge=1)
    """CPU time of each process (RLIMIT_CPU)."""
    memory_mb: int = Field(default=4096, ge=16)
    """Memory of the whole sandbox: its processes, /tmp and /dev/shm together (a cgroup). Where the
    machine gives trellis no cgroups (see `BwrapSandbox.cgroups`): the address space of each process (RLIMIT_AS)."""
    processes: int = Field(default=256, ge=4)
    """Processes and threads of the whole sandbox (a cgroup); without cgroups, of each command (RLIMIT_NPROC,
    counted in the command's own user namespace, so sandboxes never share it)."""
    file_size_mb: int = Field(default=1024, ge=1)
    """Largest file a command may write (RLIMIT_FSIZE)."""
    open_files: int = Field(default=1024, ge=16)
    """Open files of each process (RLIMIT_NOFILE)."""
    tmp_mb: int = Field(default=1024, ge=1)
    """Size of /tmp, a fresh in-memory file system for each command (/dev/shm holds at most 64 MB more)."""
    disk_mb: int = Field(default=8192, ge=1)
    """Size of the workspace on disk: a command that grows it past this is killed (checked while it runs)."""
    disk_reserve_mb: int = Field(default=512, ge=0)
    """Free space kept on the disk that holds the workspace: a command is killed when less is left."""


class RunRequest(BaseModel):
    """Run one shell command."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["run"] = "run"
    command: str
    """A shell command line, run by /bin/sh -c."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds of wall time before the whole process tree is killed."""
    env: dict[str, str] = Field(default_factory=dict)
    """Variables added to the sandbox's minimal environment."""
    cwd: str | None = None
    """Working directory, relative to the workspace (default: the workspace)."""
    stdin: str | None = None
    output_cap: int = Field(default=DEFAULT_OUTPUT_CAP, ge=1024)
    """Bytes kept of each of stdout and stderr."""


class RunResult(BaseModel):
    """What a command did."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["run_result"] = "run_result"
    exit_code: int | None
    """None when the command was killed for its timeout."""
    stdout: str
    stderr: str
    stdout_cut: int = 0
    """Bytes of stdout dropped from the middle (a marker in `stdout` says where)."""
    stderr_cut: int = 0
    duration: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def output(self) -> str:
        """stdout and stderr together, for showing to a model."""
        if self.stdout and self.stderr:
            return f"{self.stdout.rstrip()}\n{self.stderr}"
        return self.stdout or self.stderr


def finished(
    request: RunRequest, code: int | None, out: CappedBuffer, err: CappedBuffer, timed_out: bool, started: float
) -> RunResult:
    """The result of a command whose output was read into `out` and `err` since `started`."""
    return RunResult(
        exit_code=None if timed_out else code,
        stdout=out.text(),
        stderr=err.text() + (f"\n[killed after {request.timeout:g} s timeout]" if timed_out else ""),
        stdout_cut=out.cut,
        stderr_cut=err.cut,
        duration=time.perf_counter() - started,
        timed_out=timed_out,
    )


@runtime_checkable
class Sandbox(Protocol):
    """Where commands run. `workspace` is the sandbox-side path of the writable work folder."""

    workspace: str

    async def run(self, request: RunRequest) -> RunResult: ...

    async def read_file(self, path: str) -> str: ...

    async def write_file(self, path: str, content: str) -> None: ...

    async def list_files(self, path: str = ".") -> list[str]: ...

    async def close(self) -> None: ...


class CappedBuffer:
    """Keeps the first and last `cap // 2` bytes of a stream and counts what falls between."""

    def __init__(self, cap: int) -> None:
        self.half = cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if not self.cut:
            return head + tail
        return f"{head}\n[... {self.cut} bytes cut ...]\n{tail}"


async def drain(stream: asyncio.StreamReader | None, buffer: CappedBuffer) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        buffer.feed(chunk)


async def communicate(
    process: asyncio.subprocess.Process, request: RunRequest, kill: object
) -> tuple[CappedBuffer, CappedBuffer, bool]:
    """Feed stdin, drain both pipes into capped buffers, and enforce the timeout with `kill()`."""
    out, err = CappedBuffer(request.output_cap), CappedBuffer(request.output_cap)

    async def feed_stdin() -> None:
        if process.stdin is None:
            return
        try:
            if request.stdin:
                process.stdin.write(request.stdin.encode())
                await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            process.stdin.close()

    work = asyncio.gather(feed_stdin(), drain(process.stdout, out), drain(process.stderr, err), process.wait())
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(work), request.timeout)
    except TimeoutError:
        timed_out = True
        kill()  # type: ignore[operator]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(work, 10)
    return out, err, timed_out


def workspace_relative(pure: PurePosixPath, root: Path, alias: str = "/workspace") -> PurePosixPath | None:
    """An absolute `pure` made relative to the workspace it names (under `alias`, the workspace's path
    inside the sandbox, or under the host folder `root`); None when it names neither."""
    for base in (PurePosixPath(alias), PurePosixPath(root)):
        if pure == base or base in pure.parents:
            return pure.relative_to(base)
    return None


def inside(root: Path, path: str, alias: str = "/workspace") -> Path:
    """The host path of workspace file `path`, refusing anything outside the workspace.

    `path` is relative to the workspace, or absolute under `root` or under `alias` (the workspace's
    path inside the sandbox). Symlinks are resolved first, so a link planted in the workspace cannot
    point the host at a file outside it.
    """
    root = root.resolve()
    pure = PurePosixPath(path)
    if pure.is_absolute():
        relative = workspace_relative(pure, root, alias)
        if relative is None:
            raise UserError(f"path {path!r} is outside the workspace; use a path relative to it")
        pure = relative
    resolved = (root / pure).resolve()
    if resolved != root and root not in resolved.parents:
        raise UserError(f"path {path!r} is outside the workspace; use a path relative to it")
    return resolved


def disk_usage(root: Path) -> int:
    """Bytes that the files and folders under `root` take on its disk (allocated blocks; links are not
    followed, other file systems not entered, a file with several hard links is counted once)."""
    try:
        device = root.stat().st_dev
    except OSError:
        return 0
    seen: set[int] = set()
    total = 0
    folders = [str(root)]
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError:  # removed while we walk
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != device:
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif info.st_nlink > 1:
                if info.st_ino in seen:
                    continue
                seen.add(info.st_ino)
            total += info.st_blocks * 512
    return total


def list_tree(root: Path, start: Path) -> list[str]:
    """Files under `start`, relative to `root`, sorted; `.git` is skipped."""
    out = []
    for current, dirs, files in os.walk(start):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in files:
            out.append(str((Path(current) / name).relative_to(root)))
    return sorted(out)
