"""The `docker` sandbox: a container per sandbox, driven through the docker SDK.

Works with Docker and with Podman's Docker-compatible API (`DOCKER_HOST=unix:///path/podman.sock`).
Network is off by default; memory and process counts are capped; each command runs under
`timeout -s KILL`, and output streams into capped buffers.
"""

from __future__ import annotations

import asyncio
import io
import shlex
import tarfile
import time
from pathlib import PurePosixPath
from typing import Any

from trellis.envs.sandbox.base import CappedBuffer, RunRequest, RunResult, finished

from trellis.errors import UserError


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
    ) -> None:
        self.image = image
        self.workspace = workdir
        self.memory_mb = memory_mb
        self.processes = processes
        self.network = network
        self._client = client
        self._container: Any = None

    async def start(self) -> DockerSandbox:
        def start() -> Any:
            client = self._client or docker_client()
            self._client = client
            return client.containers.run(
                self.image,
                command=["sleep", "infinity"],
                detach=True,
                working_dir=self.workspace,
                mem_limit=f"{self.memory_mb}m",
                pids_limit=self.processes,
                network_mode="bridge" if self.network else "none",
                auto_remove=False,
            )

        self._container = await asyncio.to_thread(start)
        return self

    async def __aenter__(self) -> DockerSandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _require(self) -> Any:
        if self._container is None:
            raise UserError("the docker sandbox is not started; use `async with DockerSandbox(...)` or await start()")
        return self._container

    def _run_sync(self, request: RunRequest) -> RunResult:
        container = self._require()
        api = self._client.api
        seconds = max(int(request.timeout + 0.999), 1)
        command = ["timeout", "-s", "KILL", str(seconds), "/bin/sh", "-c", request.command]
        workdir = self.workspace if request.cwd is None else str(PurePosixPath(self.workspace) / request.cwd)
        started = time.perf_counter()
        exec_id = api.exec_create(container.id, command, environment=request.env, workdir=workdir)["Id"]
        out, err = CappedBuffer(request.output_cap), CappedBuffer(request.output_cap)
        for stdout, stderr in api.exec_start(exec_id, stream=True, demux=True):
            if stdout:
                out.feed(stdout)
            if stderr:
                err.feed(stderr)
        code = api.exec_inspect(exec_id)["ExitCode"]
        timed_out = code in (124, 137) and time.perf_counter() - started >= seconds
        return finished(request, code, out, err, timed_out, started)

    async def run(self, request: RunRequest) -> RunResult:
        return await asyncio.to_thread(self._run_sync, request)

    def _path(self, path: str) -> str:
        pure = PurePosixPath(path)
        return str(pure if pure.is_absolute() else PurePosixPath(self.workspace) / pure)

    async def read_file(self, path: str) -> str:
        def read() -> str:
            try:
                stream, _ = self._require().get_archive(self._path(path))
            except Exception as exc:
                raise UserError(f"{path} is not a file in the container: {exc}") from exc
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.next()
                handle = tar.extractfile(member) if member else None
                if handle is None:
                    raise UserError(f"{path} is not a regular file")
                return handle.read().decode("utf-8", errors="replace")

        return await asyncio.to_thread(read)

    async def write_file(self, path: str, content: str) -> None:
        target = PurePosixPath(self._path(path))
        data = content.encode("utf-8")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(target.name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        await self.run(RunRequest(command=f"mkdir -p {shlex.quote(str(target.parent))}"))
        await asyncio.to_thread(self._require().put_archive, str(target.parent), buffer.getvalue())

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
        if self._container is not None:
            container, self._container = self._container, None
            await asyncio.to_thread(container.remove, force=True)
