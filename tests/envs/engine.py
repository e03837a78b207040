"""A Docker-compatible engine for the docker sandbox's tests: the one DOCKER_HOST names, or Podman's
API service started here with a busybox image built from the local busybox-static binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

IMAGE = "localhost/trellis-busybox:latest"
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""


def _ping(host: str) -> bool:
    try:
        import docker

        return bool(docker.DockerClient(base_url=host).ping())
    except Exception:
        return False


def _busybox_image(env: dict[str, str], work: Path) -> None:
    if subprocess.run(["podman", "image", "exists", IMAGE], env=env).returncode == 0:
        return
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox-static is not installed (apt-get install busybox-static)")
    root = work / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "workspace").mkdir()
    shutil.copy(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    subprocess.run(["tar", "-C", str(root), "-cf", str(work / "rootfs.tar"), "."], check=True)
    subprocess.run(
        ["podman", "import", "-q", "--change", "ENV PATH=/bin", str(work / "rootfs.tar"), IMAGE],
        env=env,
        check=True,
        capture_output=True,
    )


@contextmanager
def docker_engine() -> Iterator[str | None]:
    """Yield a DOCKER_HOST that answers, or None (with the reason printed) when none can be had."""
    given = os.environ.get("DOCKER_HOST")
    if given and _ping(given):
        yield given
        return
    if shutil.which("podman") is None or shutil.which("runc") is None:
        yield None
        return
    work = Path(tempfile.mkdtemp(prefix="trellis-podman-"))
    (work / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(work / "containers.conf")}
    socket = work / "podman.sock"
    service = None
    try:
        _busybox_image(env, work)
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        host = f"unix://{socket}"
        for _ in range(100):
            if socket.exists() and _ping(host):
                break
            time.sleep(0.1)
        else:
            yield None
            return
        yield host
    except (RuntimeError, subprocess.CalledProcessError):
        yield None
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
