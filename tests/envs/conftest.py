"""A Docker-compatible engine for the tests that need one, started once per session, and images of
small repositories built on it (as the official SWE-bench images hold theirs in /testbed)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import pytest
from engine import PYTHON_IMAGE, docker_engine


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """The engine's address (DOCKER_HOST's form), for clients of its own."""
    pytest.importorskip("docker", reason="the docker SDK is not installed (docker extra)")
    with docker_engine() as host:
        if host is None:
            pytest.skip("no Docker engine and no podman/runc/busybox to start one")
        yield host


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> object:
    import docker

    return docker.DockerClient(base_url=docker_host)


def tar_of(files: dict[str, str], prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def repository_image(client: object, name: str, files: dict[str, str], *, git: bool = True) -> str:
    """An image of `PYTHON_IMAGE` with `files` in /testbed, committed there as a git repository
    (`git=True`, as the official images hold theirs) or as plain files; returns its name."""
    try:
        client.images.get(PYTHON_IMAGE)  # type: ignore[attr-defined]
    except Exception:
        pytest.skip(f"{PYTHON_IMAGE} could not be built here (it needs busybox, git and /usr/bin/python3.11)")
    script = "cd /testbed && git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm base"
    container = client.containers.create(PYTHON_IMAGE, ["sh", "-c", script if git else "true"])  # type: ignore[attr-defined]
    try:
        container.put_archive("/", tar_of(files, prefix="testbed/"))
        container.start()
        assert container.wait()["StatusCode"] == 0
        image = f"localhost/trellis-{name}:latest"
        container.commit(repository=f"localhost/trellis-{name}", tag="latest")
        return image
    finally:
        container.remove(force=True)
