"""trellis's own image (docker/trellis.Dockerfile) builds with Podman and works as a Ray worker would
use it: as a non-root user, with bubblewrap sandboxing inside the container, running a code task
as a Ray task on a Ray runtime started in the container.

The base is a Debian bookworm made here with debootstrap (no registry to pull `debian:bookworm-slim`
from), so the test needs root, podman, runc, debootstrap and Debian's and PyPI's package mirrors;
it is skipped, with the reason, where one is missing. `TRELLIS_TEST_BASE_IMAGE` names a ready base.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/trellis-test-image:latest"
BASE = "localhost/trellis-bookworm:latest"
SOURCES = ("pyproject.toml", "README.md", "trellis", "agents", "search", "envs", "train", "cli")
UNCONFINED = ["--security-opt", "seccomp=unconfined", "--security-opt", "unmask=ALL"]
"""What bubblewrap needs in a Podman container: user namespaces (seccomp) and a /proc to mount."""
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""
"""runc with limits this machine lets a container set (as tests/envs/engine.py configures Podman)."""


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (podman's storage and debootstrap)"
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not os.environ.get("TRELLIS_TEST_BASE_IMAGE") and shutil.which("debootstrap") is None:
        return "debootstrap is not installed (apt-get install debootstrap)"
    return None


@pytest.fixture(scope="module")
def podman_env() -> Iterator[dict[str, str]]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    work = Path(tempfile.mkdtemp(prefix="trellis-image-"))
    (work / "containers.conf").write_text(CONTAINERS_CONF)
    yield {**os.environ, "CONTAINERS_CONF": str(work / "containers.conf")}
    shutil.rmtree(work, ignore_errors=True)


def _podman(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout)


def _base_image(env: dict[str, str], work: Path) -> str:
    given = os.environ.get("TRELLIS_TEST_BASE_IMAGE")
    if given:
        return given
    if _podman(env, "image", "exists", BASE).returncode == 0:
        return BASE
    rootfs = work / "rootfs"
    made = subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), "http://deb.debian.org/debian"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if made.returncode != 0:
        pytest.skip(f"debootstrap could not make a bookworm base (no Debian mirror?): {made.stderr[-500:]}")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(work / "rootfs.tar"), "."], check=True)
    imported = _podman(env, "import", "-q", str(work / "rootfs.tar"), BASE)
    assert imported.returncode == 0, imported.stderr
    return BASE


def _context(work: Path) -> Path:
    """The build context the repository's .dockerignore describes, plus this machine's
    llama-cpp-python wheel (pip's cache holds the one built when trellis was installed)."""
    context = work / "context"
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            context.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    (context / "docker").mkdir()
    shutil.copy2(ROOT / "docker" / "trellis.Dockerfile", context / "docker" / "trellis.Dockerfile")
    wheels = context / "docker" / "wheels"
    wheels.mkdir()
    version = metadata.version("llama-cpp-python")
    subprocess.run(
        ["pip", "wheel", "-q", "--no-deps", f"llama-cpp-python=={version}", "-w", str(wheels)],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    return context


@pytest.fixture(scope="module")
def image(podman_env: dict[str, str]) -> Iterator[str]:
    work = Path(tempfile.mkdtemp(prefix="trellis-image-build-"))
    try:
        base = _base_image(podman_env, work)
        context = _context(work)
        build = [
            "build",
            "-q",
            "-f",
            str(context / "docker" / "trellis.Dockerfile"),
            "--build-arg",
            f"BASE={base}",
            "-t",
            IMAGE,
        ]
        bundle = Path("/etc/ssl/certs/ca-certificates.crt")  # a proxy that re-signs TLS is trusted here
        if bundle.exists():
            build += ["--secret", f"id=pip-cert,src={bundle}"]
        built = _podman(podman_env, *build, str(context), timeout=1800)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        yield IMAGE
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _podman(podman_env, "rmi", "-f", IMAGE)


def test_the_image_runs_as_a_user_with_trellis_ray_and_bubblewrap(podman_env: dict[str, str], image: str) -> None:
    shown = _podman(
        podman_env,
        "run",
        "--rm",
        image,
        "sh",
        "-c",
        "id -u; id -un; trellis --help >/dev/null && echo cli-ok; "
        "python -c 'import ray, docker, trellis.cli; print(\"imports-ok\")'; bwrap --version",
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.split()
    assert lines[:2] == ["1000", "trellis"]
    assert "cli-ok" in lines and "imports-ok" in lines and "bubblewrap" in lines


def test_a_code_task_as_a_ray_task_in_the_container(podman_env: dict[str, str], image: str) -> None:
    """A Ray runtime in the container, `trellis tasks batch --executor ray --address auto` on it with
    the embedded model, bubblewrap sandboxing each command, the network off: solved and graded."""
    script = (
        "ray start --head --num-cpus 2 --disable-usage-stats >/dev/null 2>&1 && "
        "trellis tasks batch --tasks reverse_string --runs /home/trellis/runs --executor ray --address auto "
        "--max-nodes 4; status=$?; cat /home/trellis/runs/results.jsonl; ray stop >/dev/null 2>&1; exit $status"
    )
    ran = _podman(podman_env, "run", "--rm", "--network", "none", *UNCONFINED, image, "sh", "-c", script, timeout=900)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    rows = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{")]
    assert [row["id"] for row in rows] == ["reverse_string"]
    assert not rows[0]["error"] and rows[0]["nodes"] > 0
    assert rows[0]["solved"] and rows[0]["hidden"] == "3/3 hidden tests pass"


def test_without_the_options_bubblewrap_cannot_sandbox(podman_env: dict[str, str], image: str) -> None:
    """Why the compose file and the manifest unconfine the containers: a confined one refuses."""
    ran = _podman(
        podman_env, "run", "--rm", image, "bwrap", "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "true"
    )
    assert ran.returncode != 0 and "bwrap:" in ran.stderr


def test_the_build_context_and_the_cluster_files_agree_with_the_image() -> None:
    """No engine needed: .dockerignore lets in what the test's context holds, and compose and the
    KubeRay manifest run the image unconfined, as the user it makes, on shared volumes."""
    import yaml

    allowed = [line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    assert sorted(allowed) == sorted([*SOURCES, "docker/wheels"])
    dockerfile = (ROOT / "docker" / "trellis.Dockerfile").read_text()
    assert "USER trellis" in dockerfile and "chown trellis:trellis /runs /cache" in dockerfile
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
    for name in ("ray-head", "ray-worker"):
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "docker/trellis.Dockerfile"
        assert {"seccomp=unconfined", "systempaths=unconfined"} <= set(service["security_opt"])
        assert {"runs:/runs", "cache:/cache"} <= set(service["volumes"])
    assert "--address=ray-head:6379" in compose["services"]["ray-worker"]["command"]
    cluster = yaml.safe_load((ROOT / "docker" / "kuberay.yaml").read_text())
    pods = [cluster["spec"]["headGroupSpec"]["template"]["spec"]]
    pods += [group["template"]["spec"] for group in cluster["spec"]["workerGroupSpecs"]]
    for pod in pods:
        assert pod["hostUsers"] is False and pod["securityContext"]["fsGroup"] == 1000
        (container,) = pod["containers"]
        assert container["securityContext"]["procMount"] == "Unmasked"
        assert container["volumeMounts"] == [{"name": "shared", "mountPath": "/shared"}]
