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
import re
import secrets
import shlex
import tarfile
import threading
import time
from pathlib import PurePosixPath
from typing import Any

from trellis.envs.sandbox.base import CappedBuffer, RunRequest, RunResult, finished

from trellis.errors import TrellisRunError, UserError

TRELLIS_DIR = "/var/lib/trellis"
"""Root's folder in the container: trellis's git directory and staged input; the user can pass through
it to a staged file it is told the name of, but can neither list nor change it."""
STAGE_DIR = f"{TRELLIS_DIR}/in"
LEASE_FILE = f"{TRELLIS_DIR}/alive"
LABEL = "trellis.sandbox"
"""Label on every container trellis starts (its value: the sandbox's id)."""
AGENT_USER = "1000:1000"
"""The user an agent's commands run as in a code world's container."""
_SWEEP = "kill -9 -1 2>/dev/null"
"""Run as the user after each command: kills every process of that user but the caller (kill(-1)
reaches them all at once, forking or not; `kill -9 -1` is what dash, bash and busybox all accept)."""
_ROOT_SWEEP = (
    "i=0; while :; do kill -9 -1 2>/dev/null; n=0; for d in /proc/[0-9]*; do "
    '[ "$(stat -c %u "$d" 2>/dev/null)" = "{uid}" ] || continue; s=$(cat "$d/stat" 2>/dev/null) || continue; '
    's=${{s##*) }}; [ "${{s%% *}}" = Z ] || n=$((n + 1)); done; [ $n = 0 ] && break; '
    "i=$((i + 1)); [ $i -lt 100 ] || {{ echo {failed} >&2; exit 97; }}; sleep 0.02; done"
)
"""Run as root at the top of an exec (it kills every process but the container's first and itself):
until no live process of the user is left (zombies are dead already); one kill(-1) reaches every
process at once, and a fork under way fails."""
ROOT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH of root's commands: the system's folders alone, none of them the user's to write."""
ARCHIVE_CAP = 512 * 2**20
"""Most bytes read from one archive of the container (a search over the workspace, say)."""


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


def _init_script(lease: int, user: str | None) -> str:
    # the container's first process: makes root's folder, names the user (tools that look a user up
    # find it), then lives while the lease is renewed
    named = ""
    if user is not None:
        uid, _, gid = user.partition(":")
        gid = gid or uid
        named = (
            f"grep -q '^[^:]*:[^:]*:{uid}:' /etc/passwd 2>/dev/null || "
            f"echo 'trellis:x:{uid}:{gid}::/tmp:/bin/sh' >> /etc/passwd; "
            f"grep -q '^[^:]*:[^:]*:{gid}:' /etc/group 2>/dev/null || echo 'trellis:x:{gid}:' >> /etc/group; "
        )
    return (
        f"{named}mkdir -p {PurePosixPath(TRELLIS_DIR).parent}; umask 077; mkdir -p {STAGE_DIR}; "
        f"chmod 711 {TRELLIS_DIR} {STAGE_DIR}; touch {LEASE_FILE}; {_lease_loop(lease)}"
    )


def _lease_loop(lease: int) -> str:
    """Exit once the lease file is `lease` seconds old. A root sweep kills this loop's children too
    (date, stat, sleep): a value that did not come, either of the two, is skipped, never read as 0
    (an empty `then` would make every lease look expired and remove the container under its run)."""
    return (
        f"while :; do now=$(date +%s 2>/dev/null); then=$(stat -c %Y {LEASE_FILE} 2>/dev/null); "
        f'case "$now" in ""|*[!0-9]*) sleep 1; continue;; esac; '
        f'case "$then" in ""|*[!0-9]*) sleep 1; continue;; esac; '
        f"[ $((now - then)) -lt {lease} ] || exit 0; sleep 1; done"
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
        if user is not None and (not re.fullmatch(r"[0-9]+(:[0-9]+)?", user) or user.split(":")[0] == "0"):
            raise UserError(f"user {user!r} is not an unprivileged uid:gid; give one such as {AGENT_USER}, or None")
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
        self._renewal: threading.Event | None = None
        self._dirty = False
        """Whether a command ran as the user since the last verified sweep."""
        self._sweep_token = ""

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
                command=["/bin/sh", "-c", _init_script(self.lease, self.user)],
                user="0",
                detach=True,
                working_dir=self.workspace,
                mem_limit=f"{self.memory_mb}m",
                pids_limit=self.processes,
                network_mode="bridge" if self.network else "none",
                security_opt=["no-new-privileges"],
                # with an agent's user, root keeps only what trellis's own commands need (ownership,
                # reading the agent's files, stopping its processes, switching to it)
                cap_drop=["ALL"] if self.user is not None else None,
                cap_add=list(ROOT_CAPABILITIES) if self.user is not None else None,
                labels=self.labels,
                auto_remove=True,
            )

        self._container = await asyncio.to_thread(start)
        # the first process makes root's folder; commands wait for it
        for _ in range(100):
            if (await self.admin(RunRequest(command=f"test -d {STAGE_DIR}", timeout=10))).ok:
                break
            await asyncio.sleep(0.05)
        # renewed from a thread of its own (never queued behind long commands), as root, touching nothing else
        self._renewal = stop = threading.Event()
        threading.Thread(target=self._renew, args=(stop,), name=f"lease-{self.id}", daemon=True).start()
        return self

    def _renew(self, stop: threading.Event) -> None:
        touch = RunRequest(command=f"touch {LEASE_FILE}", timeout=10)
        while not stop.wait(self.lease / 4):
            with contextlib.suppress(Exception):
                self._exec(touch, touch.command, "0")

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
        if user == "0":  # root's commands never look in a folder of the image's PATH the user could write
            env["PATH"] = SYSTEM_PATH
        started = time.perf_counter()
        exec_id = api.exec_create(
            container.id, ["/bin/sh", "-c", command], environment=env, workdir=workdir, user=user or ""
        )["Id"]
        out, err = CappedBuffer(request.output_cap), CappedBuffer(request.output_cap)
        # a process the command left holding its output would keep the stream open past the timeout:
        # a watchdog kills the user's processes then
        watchdog = None
        if user is not None and user == self.user:
            watchdog = threading.Timer(request.timeout + 10, self._kill_user_processes)
            watchdog.daemon = True
            watchdog.start()
        try:
            for stdout, stderr in api.exec_start(exec_id, stream=True, demux=True):
                if stdout:
                    out.feed(stdout)
                if stderr:
                    err.feed(stderr)
        finally:
            if watchdog is not None:
                watchdog.cancel()
        code = api.exec_inspect(exec_id)["ExitCode"]
        seconds = max(int(request.timeout + 0.999), 1)
        timed_out = code in (124, 137) and time.perf_counter() - started >= seconds
        return finished(request, code, out, err, timed_out, started)

    def _stage(self, data: bytes) -> str:
        """Put `data` in root's folder under a fresh name the user may read; returns its path."""
        name = f"{secrets.token_hex(8)}"
        self._require().put_archive(STAGE_DIR, _tar_of(name, data))
        return f"{STAGE_DIR}/{name}"

    def _run_sync(self, request: RunRequest, user: str | None, sweep: bool, prefix: str = "") -> RunResult:
        seconds = max(int(request.timeout + 0.999), 1)
        command = f"{prefix}timeout -s KILL {seconds} /bin/sh -c {shlex.quote(request.command)}"
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
        if self.user is not None:
            self._dirty = True
        return await asyncio.to_thread(self._run_sync, request, self.user, self.user is not None)

    def _kill_user_processes(self) -> None:
        sweep = RunRequest(command=f"{_SWEEP}; echo swept", timeout=30)
        with contextlib.suppress(Exception):
            self._exec(sweep, sweep.command, self.user)

    def _sweep_prefix(self) -> str:
        """What an exec of root's runs first while the user may have processes alive (none otherwise)."""
        if self.user is None or not self._dirty:
            return ""
        self._sweep_token = f"trellis-sweep-failed-{secrets.token_hex(8)}"  # a fresh one: nothing can plant it
        return _ROOT_SWEEP.format(uid=self.user.split(":")[0], failed=self._sweep_token) + "; "

    def _checked_sweep(self, result: RunResult, prefix: str) -> RunResult:
        if prefix and result.exit_code == 97 and self._sweep_token in result.stderr:
            raise TrellisRunError(
                f"processes of user {self.user} in container {self.id} could not be stopped; trellis runs "
                "nothing as root there until they are (the container is removed when the sandbox closes)"
            )
        if prefix:
            self._dirty = False
        return result

    def _swept(self) -> None:
        """Make sure no process of the user is alive before root reads the container's files."""
        prefix = self._sweep_prefix()
        if prefix:
            self._checked_sweep(self._exec(RunRequest(command="true", timeout=60), prefix + "true", "0"), prefix)

    async def settle(self) -> None:
        """Kill every process of the user now (before a look at the workspace that root's reads rely on)."""
        await asyncio.to_thread(self._swept)

    async def admin(self, request: RunRequest) -> RunResult:
        """Run one of trellis's own commands as root (git on its own directory, ownership fixes), once no
        process of the user is alive (killed in the same exec, first), so that none races it."""

        def run() -> RunResult:
            prefix = self._sweep_prefix()
            return self._checked_sweep(self._run_sync(request, "0", False, prefix), prefix)

        return await asyncio.to_thread(run)

    def _path(self, path: str) -> str:
        pure = PurePosixPath(path)
        return str(pure if pure.is_absolute() else PurePosixPath(self.workspace) / pure)

    def _archive(self, path: str, limit: int | None = None) -> bytes | None:
        """The archive of `path`, read as root once no process of the user is alive; None when `path`
        is larger than `limit` (a file's size, told before any byte is read)."""
        self._swept()
        try:
            stream, stat = self._require().get_archive(self._path(path))
        except Exception as exc:
            if type(exc).__name__ == "NotFound":
                raise UserError(f"{path} is not a file in the container") from None
            raise
        if limit is not None and int(stat.get("size", 0)) > limit:
            stream.close()
            return None
        chunks, total = [], 0
        for chunk in stream:
            total += len(chunk)
            if total > ARCHIVE_CAP:
                stream.close()
                raise UserError(
                    f"{path} holds more than {ARCHIVE_CAP // 2**20} MiB; give a smaller folder or a single file"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def archive(self, path: str = ".") -> bytes:
        """A tar of `path` as the container holds it (links are stored as links, never followed)."""
        data = await asyncio.to_thread(self._archive, path)
        if data is None:  # only with a limit
            raise UserError(f"{path} could not be read")
        return data

    async def read_bytes(self, path: str, limit: int | None = None) -> bytes | None:
        """The bytes of regular file `path`; None when it is not one, or is larger than `limit`."""
        data = await asyncio.to_thread(self._archive, path, limit)
        if data is None:
            return None
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
            self._renewal.set()
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
