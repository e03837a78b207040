"""The docker sandbox against a real Docker-compatible engine (Podman's API here)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from engine import IMAGE, docker_engine
from trellis.envs.sandbox import RunRequest
from trellis.envs.sandbox.docker import DockerSandbox, swebench_image

from trellis.errors import UserError

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    docker = pytest.importorskip("docker", reason="the docker SDK is not installed (docker extra)")
    with docker_engine() as host:
        if host is None:
            pytest.skip("no Docker engine and no podman/runc/busybox to start one")
        yield docker.DockerClient(base_url=host)


def test_image_names() -> None:
    assert swebench_image("django__django-11099") == "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"


def test_not_started_is_a_user_error() -> None:
    with pytest.raises(UserError, match="not started"):
        asyncio.run(DockerSandbox(IMAGE).run(RunRequest(command="true")))


def test_run_files_limits_and_timeout(client: object) -> None:
    async def scenario() -> None:
        async with DockerSandbox(IMAGE, workdir="/workspace", memory_mb=64, processes=64, client=client) as box:
            result = await box.run(RunRequest(command="echo out; echo err >&2; pwd; exit 3"))
            assert (result.exit_code, result.stdout, result.stderr.strip()) == (3, "out\n/workspace\n", "err")
            result = await box.run(RunRequest(command="echo $GREETING", env={"GREETING": "hi"}))
            assert result.stdout == "hi\n"
            # network is off: only the loopback interface exists
            result = await box.run(RunRequest(command="tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"))
            assert result.stdout.split() == ["lo"]
            # a timeout kills the command and says so
            result = await box.run(RunRequest(command="sleep 30", timeout=1))
            assert result.timed_out and result.exit_code is None and "timeout" in result.stderr
            # output is capped while it streams
            result = await box.run(RunRequest(command="head -c 3000000 /dev/zero | tr '\\0' a", output_cap=4096))
            assert result.stdout_cut > 2_990_000 and len(result.stdout) < 5000
            # files go in and out through archives
            await box.write_file("pkg/data.txt", "hello\nworld\n")
            assert await box.read_file("pkg/data.txt") == "hello\nworld\n"
            assert await box.list_files() == ["pkg/data.txt"]
            result = await box.run(RunRequest(command="cat data.txt", cwd="pkg"))
            assert result.stdout == "hello\nworld\n"
            with pytest.raises(UserError, match="not a file"):
                await box.read_file("missing.txt")
            # the process limit holds
            result = await box.run(RunRequest(command="for i in $(seq 200); do sleep 5 & done; wait", timeout=8))
            assert "can't fork" in result.stderr or "Resource temporarily unavailable" in result.stderr
        with pytest.raises(UserError):
            await box.run(RunRequest(command="true"))

    asyncio.run(scenario())
