"""The bwrap sandbox holds: no network, no host files, no host secrets, bounded resources."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from trellis.envs.sandbox import BwrapSandbox, RunRequest, SandboxLimits

from trellis.errors import UserError

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")


@pytest.fixture
def sandbox(tmp_path: Path) -> BwrapSandbox:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return BwrapSandbox(workspace, limits=SandboxLimits(memory_mb=512, processes=64, cpu_seconds=20, file_size_mb=50))


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's loopback, to prove the sandbox cannot reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[object] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


def run(sandbox: BwrapSandbox, command: str, timeout: float = 20, **kwargs: object) -> object:
    return asyncio.run(sandbox.run(RunRequest(command=command, timeout=timeout, **kwargs)))  # type: ignore[arg-type]


PY_CONNECT = "python -c \"import socket; socket.create_connection(('{host}', {port}), timeout=3); print('CONNECTED')\""


def test_loopback_of_the_host_is_unreachable(sandbox: BwrapSandbox, listener: int) -> None:
    # the listener is reachable from the host itself...
    socket.create_connection(("127.0.0.1", listener), timeout=3).close()
    result = run(sandbox, PY_CONNECT.format(host="127.0.0.1", port=listener))
    assert result.exit_code != 0 and "CONNECTED" not in result.stdout  # type: ignore[attr-defined]


def test_public_addresses_are_unreachable(sandbox: BwrapSandbox) -> None:
    result = run(sandbox, PY_CONNECT.format(host="1.1.1.1", port=443) + "; tail -n +3 /proc/net/dev")
    assert "CONNECTED" not in result.stdout  # type: ignore[attr-defined]
    assert "Network is unreachable" in result.stderr  # type: ignore[attr-defined]
    interfaces = [line.split(":")[0].strip() for line in result.stdout.splitlines()]  # type: ignore[attr-defined]
    assert interfaces == ["lo"]  # the network namespace holds nothing but its own loopback


def test_writes_outside_the_workspace_fail(sandbox: BwrapSandbox, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    result = run(sandbox, f"echo pwned > {outside}; echo x > /usr/pwned; echo x > /etc/pwned; echo ok > inside.txt")
    assert not outside.exists()
    assert not Path("/usr/pwned").exists() and not Path("/etc/pwned").exists()
    assert (sandbox.root / "inside.txt").read_text() == "ok\n"
    assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr  # type: ignore[attr-defined]


def test_secret_files_outside_the_workspace_are_unreadable(sandbox: BwrapSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    home_secret = Path.home() / ".trellis-test-secret"
    home_secret.write_text("HOME-SECRET")
    try:
        result = run(sandbox, f"cat {secret}; cat {home_secret}; cat /etc/shadow; ls {Path.home()}")
    finally:
        home_secret.unlink()
    assert "SECRET" not in result.stdout  # type: ignore[attr-defined]
    assert "root:" not in result.stdout  # type: ignore[attr-defined]


def test_host_environment_secrets_are_absent(sandbox: BwrapSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-should-not-leak")
    result = run(sandbox, "env; cat /proc/1/environ | tr '\\0' '\\n'", env={"GIVEN": "yes"})
    assert "should-not-leak" not in result.stdout  # type: ignore[attr-defined]
    assert "GIVEN=yes" in result.stdout and "HOME=/tmp" in result.stdout  # type: ignore[attr-defined]


def test_runs_as_an_unprivileged_user_in_its_own_pid_namespace(sandbox: BwrapSandbox) -> None:
    result = run(sandbox, "id -u; ps -e -o pid= | wc -l")
    uid, processes = result.stdout.split()  # type: ignore[attr-defined]
    assert uid == "65534"
    assert int(processes) < 10  # the host's processes are not visible


def test_fork_bomb_is_contained(sandbox: BwrapSandbox) -> None:
    started = time.monotonic()
    result = run(sandbox, "bomb() { bomb | bomb & }; bomb; sleep 2", timeout=8)
    assert time.monotonic() - started < 30
    # the host is still responsive and can start processes
    probe = run(sandbox, "echo alive")
    assert probe.stdout.strip() == "alive"  # type: ignore[attr-defined]
    del result


def test_memory_hog_is_contained(sandbox: BwrapSandbox) -> None:
    result = run(sandbox, "python -c \"x = bytearray(2 * 1024**3); print('ALLOCATED')\"")
    assert "ALLOCATED" not in result.stdout and "MemoryError" in result.stderr  # type: ignore[attr-defined]


def test_timeout_kills_the_whole_process_tree(sandbox: BwrapSandbox) -> None:
    marker = "trellis-sleeper-7781"
    result = run(sandbox, f"(setsid sh -c 'exec -a {marker} sleep 300' &) ; (sleep 301 &) ; sleep 300", timeout=1)
    assert result.timed_out and result.exit_code is None  # type: ignore[attr-defined]
    assert "killed after 1 s timeout" in result.stderr  # type: ignore[attr-defined]
    time.sleep(0.5)
    survivors = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith((marker, "sleep 30"))]
    assert survivors == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_huge_output_is_capped_without_exhausting_memory(sandbox: BwrapSandbox) -> None:
    result = run(
        sandbox, "head -c 100000000 /dev/zero | tr '\\0' 'a'; echo; echo THE-END", timeout=60, output_cap=64 * 1024
    )
    assert result.ok  # type: ignore[attr-defined]
    assert result.stdout_cut > 99_000_000  # type: ignore[attr-defined]
    assert "bytes cut" in result.stdout and result.stdout.rstrip().endswith("THE-END")  # type: ignore[attr-defined]
    assert len(result.stdout) < 70 * 1024  # type: ignore[attr-defined]


def test_file_size_limit_holds(sandbox: BwrapSandbox) -> None:
    result = run(sandbox, "head -c 80000000 /dev/zero > big.bin; echo $?")
    assert (sandbox.root / "big.bin").stat().st_size <= 50 * 2**20
    assert result.stdout.strip() != "0"  # type: ignore[attr-defined]


def test_host_side_file_access_cannot_follow_planted_symlinks(sandbox: BwrapSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOST")
    run(sandbox, f"ln -s {secret} link.txt; ln -s / root-link")
    with pytest.raises(UserError, match="outside the workspace"):
        asyncio.run(sandbox.read_file("link.txt"))
    with pytest.raises(UserError, match="outside the workspace"):
        asyncio.run(sandbox.write_file("root-link/tmp/x", "y"))
    with pytest.raises(UserError, match="outside the workspace"):
        asyncio.run(sandbox.read_file("../outside"))
    with pytest.raises(UserError, match="outside the workspace"):
        asyncio.run(sandbox.read_file("/etc/passwd"))
