"""The docker sandbox against a real Docker-compatible engine (Podman's API here)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine import IMAGE, docker_engine
from trellis.envs.sandbox import RunRequest
from trellis.envs.sandbox.docker import DockerSandbox, _lease_loop, swebench_image

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


def _loop_with_stat(tmp_path: Path, stat: str) -> subprocess.Popen[bytes]:
    """The container's lease loop on this machine, with `stat` (the lease file's age) replaced."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "stat").write_text(f"#!/bin/sh\n{stat}\n")
    (bin_dir / "stat").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.Popen(["/bin/sh", "-c", _lease_loop(5)], env=env)


def _alive_after(process: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    alive = process.poll() is None
    process.kill()
    process.wait()
    return alive


def test_the_lease_loop_lives_while_renewed_and_ends_when_the_lease_runs_out(tmp_path: Path) -> None:
    assert _alive_after(_loop_with_stat(tmp_path, "date +%s"), 2.5)
    assert not _alive_after(_loop_with_stat(tmp_path, "echo 1"), 2.5)


def test_a_lease_age_lost_to_a_sweep_is_skipped_not_read_as_expired(tmp_path: Path) -> None:
    # a root sweep (kill -9 -1) can kill the loop's `stat`: nothing comes back; the container must
    # not take that for an expired lease and remove itself under the run that uses it
    assert _alive_after(_loop_with_stat(tmp_path, "kill -9 $$"), 2.5)
    assert _alive_after(_loop_with_stat(tmp_path, "exit 1"), 2.5)


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


def test_grading_in_a_container(client: object) -> None:
    """The container grading path end to end: the repository in /testbed, patches applied with
    `patch`, a test script that reports in pytest's summary format."""
    from trellis.envs.swebench.harness import evaluate_in_container
    from trellis.envs.swebench.instance import SWEInstance

    def diff(path: str, old: str, new: str) -> str:
        return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n"

    instance = SWEInstance(
        instance_id="example__box-1",
        repo="example/box",
        base_commit="0" * 40,
        patch=diff("value.txt", "2", "3"),
        test_patch="diff --git a/check.sh b/check.sh\nnew file mode 100644\n--- /dev/null\n+++ b/check.sh\n"
        "@@ -0,0 +1,2 @@\n"
        "+grep -qx 3 value.txt && echo 'PASSED t.sh::value' || echo 'FAILED t.sh::value'\n"
        "+echo 'PASSED t.sh::always'\n",
        FAIL_TO_PASS=["t.sh::value"],
        PASS_TO_PASS=["t.sh::always"],
        test_cmd="sh check.sh #",
    )

    # an image whose /testbed holds the repository at its base state, as the official images do
    seed = client.containers.run(
        IMAGE,
        ["sh", "-c", "mkdir -p /testbed && echo 2 > /testbed/value.txt"],  # type: ignore[attr-defined]
        detach=True,
    )
    seed.wait()
    seed.commit(repository="localhost/trellis-testbed", tag="latest")
    seed.remove()

    async def grade(patch: str) -> object:
        return await evaluate_in_container(
            instance, patch, image="localhost/trellis-testbed:latest", setup="", timeout=30, client=client
        )

    gold = asyncio.run(grade(instance.patch))
    empty = asyncio.run(grade(""))
    bad = asyncio.run(grade(diff("missing.txt", "a", "b")))
    assert gold.resolved and gold.tests_status["FAIL_TO_PASS"].success == ["t.sh::value"]  # type: ignore[attr-defined]
    assert not empty.resolved and empty.tests_status["PASS_TO_PASS"].success == ["t.sh::always"]  # type: ignore[attr-defined]
    assert not bad.patch_successfully_applied and "does not apply" in bad.error  # type: ignore[attr-defined]
