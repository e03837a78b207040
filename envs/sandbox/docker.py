"""The `docker` sandbox: a container per sandbox, driven through the docker SDK.

Works with Docker and with Podman's Docker-compatible API (`DOCKER_HOST=unix:///path/podman.sock`).
Network is off by default; memory and process counts are capped; each command runs under
`timeout -s KILL`, and output streams into capped buffers.

With `user` set (an agent's sandbox), commands run as that unprivileged user, every process a
command leaves behind is killed when it ends (as the bubblewrap sandbox's process namespace does),
and files are written as that user; trellis's own commands (`admin`) run as root, in a folder the
user cannot write. A container removes itself when its sandbox stops renewing its lease, so one left
by a killed process is gone within `lease` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import shlex
import tarfile
import time
from pathlib import PurePosixPath
from typing import Any

from trellis.envs.sandbox.base import CappedBuffer, RunRequest, RunResult, finished

from trellis.errors import UserError

TRELLIS_DIR = "/var/lib/trellis"
"""Root's folder in the container: trellis's git directory and staged input; the user can pass through
it to a staged file it is told the name of, but can neither list nor change it."""
STAGE_DIR = f"{TRELLIS_DIR}/in"
LEASE_FILE = f"{TRELLIS_DIR}/alive"
LABEL = "trellis.sandbox"
"""Label on every container trellis starts (its value: the sandbox's id)."""
AGENT_USER = "1000:1000"
"""The user an agent's commands run as in a code world's container."""
_SWEEP = "kill -KILL -- -1 2>/dev/null"
"""Run as the user after each command: kills every process of that user but the caller."""
_ROOT_SWEEP = (
    'u={uid}; n=0; while [ $n -lt 50 ]; do n=$((n + 1)); found=""; for d in /proc/[0-9]*; do '
    '[ "$(stat -c %u "$d" 2>/dev/null)" = "$u" ] && kill -KILL "${{d#/proc/}}" 2>/dev/null && found=1; done; '
    '[ -n "$found" ] || break; done'
)
"""Run as root before each of trellis's own commands: no process of the user is left (not even one
that killed the user's own sweep), so none can change the workspace while root works on it."""


def swebench_image(instance_id: str, arch: str = "x86_64") -> str:
    """The official SWE-bench evaluation image of an instance."""
    return f"swebench/sweb.eval.{arch}.{instance_id.replace('__', '_1776_')}:latest".lower()


def docker_client() -> Any:
    """A docker SDK client from the environment (DOCKER_HOST), or a UserError saying what is missing."""
    try:
        import docker
    except ImportError as exc:
        raise UserError("the docker sandbox needs the docker SDK: pip install 'trellis[docker]'") from exc
    try:
        client = docker.from_env()  # type: ignore[attr-defined]
        client.ping()
    except Exception as exc:
        raise UserError(
            f"no Docker engine answers ({exc}); start Docker, or Podman's API with "
            "`podman system service --time=0 unix:///tmp/podman.sock` and set DOCKER_HOST=unix:///tmp/podman.sock"
        ) from exc
    return client


def _init_script(lease: int) -> str:
    # the container's first process: makes root's folder, then lives while the lease is renewed
    return (
        f"mkdir -p {PurePosixPath(TRELLIS_DIR).parent}; umask 077; mkdir -p {STAGE_DIR}; "
        f"chmod 711 {TRELLIS_DIR} {STAGE_DIR}; touch {LEASE_FILE}; "
        f"while [ $(( $(date +%s) - $(stat -c %Y {LEASE_FILE}) )) -lt {lease} ]; do sleep 1; done"
    )


def _tar_of(name: str, data: bytes, mode: int = 0o644) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class DockerSandbox:
    """One long-lived container; commands run in it with `exec`."""

    def __init__(
        self,
        image: str,
        *,
        workdir: str = "/testbed",
        memory_mb: int = 4096,
        processes: int = 1024,
        network: bool = False,
        client: Any = None,
        user: str | None = None,
        lease: int = 60,
        labels: dict[str, str] | None = None,
    ) -> None:
        """`user`: who an agent's commands run as (`uid:gid`; None: the image's user); `lease`: seconds
        the container outlives its last renewal (renewed every `lease / 4` s while the sandbox is open);
        `labels`: added to the container's, beside `trellis.sandbox=<id>`."""
        if user is not None and user.split(":")[0] in ("0", "root"):
            raise UserError(f"user {user!r} is root; give an unprivileged uid:gid such as {AGENT_USER}, or None")
        self.image = image
        self.workspace = workdir
        self.memory_mb = memory_mb
        self.processes = processes
        self.network = network
        self.user = user
        self.lease = max(int(lease), 5)
        self.id = secrets.token_hex(6)
        self.labels = {**(labels or {}), LABEL: self.id}
        self._client = client
        self._container: Any = None
        self._renewal: asyncio.Task[None] | None = None

    async def start(self) -> DockerSandbox:
        def start() -> Any:
            client = self._client or docker_client()
            self._client = client
            try:
                client.images.get(self.image)
            except Exception as exc:
                if type(exc).__name__ != "ImageNotFound":
                    raise
                raise UserError(
                    f"the image {self.image} is not on this machine; pull or build it first (e.g. `docker pull "
                    f"{self.image}`)"
                ) from None
            return client.containers.run(
                self.image,
                command=["/bin/sh", "-c", _init_script(self.lease)],
                user="0",
                detach=True,
                working_dir=self.workspace,
                mem_limit=f"{self.memory_mb}m",
                pids_limit=self.processes,
                network_mode="bridge" if self.network else "none",
                security_opt=["no-new-privileges"],
                labels=self.labels,
                auto_remove=True,
            )

        self._container = await asyncio.to_thread(start)
        # the first process makes root's folder; commands wait for it
        for _ in range(100):
            if (await self.admin(RunRequest(command=f"test -d {STAGE_DIR}", timeout=10))).ok:
                break
            await asyncio.sleep(0.05)
        self._renewal = asyncio.create_task(self._renew())
        return self

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 4)
            with contextlib.suppress(Exception):
                await self.admin(RunRequest(command=f"touch {LEASE_FILE}", timeout=10))

    async def __aenter__(self) -> DockerSandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _require(self) -> Any:
        if self._container is None:
            raise UserError("the docker sandbox is not started; use `async with DockerSandbox(...)` or await start()")
        return self._container

    def _exec(self, request: RunRequest, command: str, user: str | None) -> RunResult:
        container = self._require()
        api = self._client.api
        workdir = self.workspace if request.cwd is None else str(PurePosixPath(self.workspace) / request.cwd)
        env = dict(request.env)
        if user is not None and user == self.user:
            env.setdefault("HOME", "/tmp")
        started = time.perf_counter()
        exec_id = api.exec_create(
            container.id, ["/bin/sh", "-c", command], environment=env, workdir=workdir, user=user or ""
        )["Id"]
        out, err = CappedBuffer(request.output_cap), CappedBuffer(request.output_cap)
        for stdout, stderr in api.exec_start(exec_id, stream=True, demux=True):
            if stdout:
                out.feed(stdout)
            if stderr:
                err.feed(stderr)
        code = api.exec_inspect(exec_id)["ExitCode"]
        seconds = max(int(request.timeout + 0.999), 1)
        timed_out = code in (124, 137) and time.perf_counter() - started >= seconds
        return finished(request, code, out, err, timed_out, started)

    def _stage(self, data: bytes) -> str:
        """Put `data` in root's folder under a fresh name the user may read; returns its path."""
        name = f"{secrets.token_hex(8)}"
        self._require().put_archive(STAGE_DIR, _tar_of(name, data))
        return f"{STAGE_DIR}/{name}"

    def _run_sync(self, request: RunRequest, user: str | None, sweep: bool) -> RunResult:
        seconds = max(int(request.timeout + 0.999), 1)
        command = f"timeout -s KILL {seconds} /bin/sh -c {shlex.quote(request.command)}"
        staged = self._stage(request.stdin.encode()) if request.stdin else None
        if staged:
            command += f" < {staged}"
        else:
            command += " < /dev/null"
        if sweep:
            command = f"{command}; status=$?; {_SWEEP}; exit $status"
        try:
            return self._exec(request, command, user)
        finally:
            if staged:
                self._exec(RunRequest(command=f"rm -f {staged}", timeout=10), f"rm -f {staged}", "0")

    async def run(self, request: RunRequest) -> RunResult:
        """Run a command as the sandbox's user (the agent's commands, tests)."""
        return await asyncio.to_thread(self._run_sync, request, self.user, self.user is not None)

    async def admin(self, request: RunRequest) -> RunResult:
        """Run one of trellis's own commands as root (git on its own directory, ownership fixes), after
        killing every process of the user, so that none races it."""
        if self.user is not None:
            sweep = _ROOT_SWEEP.format(uid=shlex.quote(self.user.split(":")[0]))
            request = request.model_copy(update={"command": f"{sweep}; {request.command}"})
        return await asyncio.to_thread(self._run_sync, request, "0", False)

    def _path(self, path: str) -> str:
        pure = PurePosixPath(path)
        return str(pure if pure.is_absolute() else PurePosixPath(self.workspace) / pure)

    def _archive(self, path: str) -> bytes:
        try:
            stream, _ = self._require().get_archive(self._path(path))
        except Exception as exc:
            if type(exc).__name__ == "NotFound":
                raise UserError(f"{path} is not a file in the container") from None
            raise
        return b"".join(stream)

    async def archive(self, path: str = ".") -> bytes:
        """A tar of `path` as the container holds it (links are stored as links, never followed)."""
        return await asyncio.to_thread(self._archive, path)

    async def read_bytes(self, path: str, limit: int | None = None) -> bytes | None:
        """The bytes of regular file `path`; None when it is not one, or is larger than `limit`."""
        data = await self.archive(path)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None or not member.isfile() or (limit is not None and member.size > limit):
                return None
            handle = tar.extractfile(member)
            return handle.read() if handle else None

    async def read_file(self, path: str) -> str:
        data = await self.read_bytes(path)
        if data is None:
            raise UserError(f"{path} is not a regular file")
        return data.decode("utf-8", errors="replace")

    async def upload(self, folder: str, tar: bytes) -> None:
        """Unpack `tar` into `folder` as root: for setting a container up (a repository in its workdir)
        before a world opens it, never for what an agent writes."""
        await asyncio.to_thread(self._require().put_archive, folder, tar)

    async def put_bytes(self, data: bytes) -> str:
        """Stage `data` in root's folder (for trellis's own commands); returns its path. Remove it after."""
        return await asyncio.to_thread(self._stage, data)

    async def write_file(self, path: str, content: str) -> None:
        target = shlex.quote(self._path(path))
        folder = shlex.quote(str(PurePosixPath(self._path(path)).parent))
        if self.user is None:
            await self.run(RunRequest(command=f"mkdir -p {folder}"))
            name = PurePosixPath(self._path(path)).name
            data = _tar_of(name, content.encode("utf-8"))
            await asyncio.to_thread(self._require().put_archive, str(PurePosixPath(self._path(path)).parent), data)
            return
        # as the user, with the user's rights: a link planted on the way cannot lead anywhere it could not
        result = await self.run(RunRequest(command=f"mkdir -p {folder} && cat > {target}", stdin=content or None))
        if not result.ok:
            raise UserError(f"cannot write {path}: {result.output.strip()[-300:]}")

    async def list_files(self, path: str = ".") -> list[str]:
        base = self._path(path)
        result = await self.run(
            RunRequest(
                command=f"cd {shlex.quote(self.workspace)} && find {shlex.quote(base)} -path '*/.git' -prune "
                "-o -type f -print"
            )
        )
        root = PurePosixPath(self.workspace)
        return sorted(str(PurePosixPath(line).relative_to(root)) for line in result.stdout.splitlines() if line)

    async def close(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        if self._container is not None:
            container, self._container = self._container, None
            with contextlib.suppress(Exception):  # removed already (it exits, and removes itself, on its own)
                await asyncio.to_thread(container.remove, force=True)


def remove_containers(client: Any, labels: dict[str, str]) -> int:
    """Remove every container trellis started that carries all of `labels`; returns how many."""
    selector = [f"{key}={value}" for key, value in labels.items()] or [LABEL]
    removed = 0
    for container in client.containers.list(all=True, filters={"label": selector}):
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed += 1
    return removed
