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
PYTHON_IMAGE = "localhost/trellis-python:latest"
"""dash as /bin/sh, busybox, git and this machine's Debian Python 3.11 with pytest: enough for a code
world's container."""
SYSTEM_PYTHON = Path("/usr/bin/python3.11")
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


def _libraries(*binaries: Path) -> set[Path]:
    """The shared libraries `binaries` load (their ld.so included), as ldd names them."""
    found: set[Path] = set()
    for binary in binaries:
        result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
        for line in result.stdout.splitlines():
            parts = line.split()
            for part in parts:
                if part.startswith("/") and Path(part).exists():
                    found.add(Path(part))
    return found


def _copy(source: Path, root: Path) -> None:
    target = root / source.relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(
            source,
            target,
            symlinks=True,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(
                "test", "tests", "__pycache__", "idlelib", "tkinter", "turtledemo", "ensurepip"
            ),
        )
    else:
        shutil.copy2(source, target)


def python_image(env: dict[str, str], work: Path) -> str | None:
    """Build `PYTHON_IMAGE` from this machine's own files (no registry needed): busybox for the shell
    and core tools, git, Debian's Python 3.11 and its standard library, and pytest from this Python.
    None when the machine lacks one of them."""
    if subprocess.run(["podman", "image", "exists", PYTHON_IMAGE], env=env).returncode == 0:
        return PYTHON_IMAGE
    busybox, git = shutil.which("busybox"), Path("/usr/bin/git")
    if busybox is None or not git.exists() or not SYSTEM_PYTHON.exists():
        return None
    import pytest as _pytest_module  # noqa: F401 (its files go into the image)

    root = work / "python-rootfs"
    for folder in ("bin", "tmp", "testbed", "usr/bin", "etc"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    # /bin/sh is dash, as in the Debian and Ubuntu images SWE-bench's are built on (busybox for the rest)
    dash = Path("/usr/bin/dash")
    if dash.exists():
        (root / "bin" / "sh").unlink()
        shutil.copy(dash, root / "bin" / "dash")
        (root / "bin" / "sh").symlink_to("dash")
    stdlib = SYSTEM_PYTHON.parent.parent / "lib" / "python3.11"
    dynload = sorted((stdlib / "lib-dynload").glob("*.so"))
    for library in _libraries(git, SYSTEM_PYTHON, dash, *dynload):
        _copy(library.resolve(), root)
        if library.resolve() != library:  # keep the name the binaries ask for
            (root / library.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
            link = root / library.relative_to("/")
            if not link.exists():
                link.symlink_to(library.resolve())
    _copy(git, root)
    _copy(SYSTEM_PYTHON, root)
    _copy(stdlib, root)
    (root / "usr/bin/python3").symlink_to("python3.11")
    (root / "usr/bin/python").symlink_to("python3.11")
    packages = root / "usr/local/lib/python3.11/dist-packages"
    packages.mkdir(parents=True)
    from importlib import metadata

    for name in ("pytest", "pluggy", "iniconfig", "packaging", "pygments"):
        dist = metadata.distribution(name)
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if source.is_file() and "__pycache__" not in file.parts and not str(file).startswith(".."):
                (packages / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, packages / file)
    launcher = root / "usr/bin/pytest"
    launcher.write_text("#!/usr/bin/python3.11\nimport sys\nimport pytest\n\nsys.exit(pytest.console_main())\n")
    launcher.chmod(0o755)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    subprocess.run(["tar", "-C", str(root), "-cf", str(work / "python-rootfs.tar"), "."], check=True)
    subprocess.run(
        ["podman", "import", "-q", "--change", "ENV PATH=/usr/bin:/bin", str(work / "python-rootfs.tar"), PYTHON_IMAGE],
        env=env,
        check=True,
        capture_output=True,
    )
    return PYTHON_IMAGE


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
        try:
            python_image(env, work)
        except (OSError, subprocess.CalledProcessError) as exc:  # its tests skip; the busybox ones still run
            print(f"cannot build {PYTHON_IMAGE}: {exc}")
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
