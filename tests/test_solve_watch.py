"""`trellis swe solve` with its output in a log (no live frames) and with `--watch` (the tree browser
on the live run, the search in a process of its own), with the scripted model of test_solve_cli."""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from terminal import Terminal
from test_solve_cli import BWRAP, INSTANCE, cache, cli_env, trellis
from trellis.search.run import RunDir

__all__ = ["cache"]  # the module's prepared-environment fixture, shared with test_solve_cli
SMALL = ["--offline", "--no-grade", "--max-nodes", "5", "--samples", "2"]
FAILED = re.compile(r"search exited \((?!0\))")


def failed(screen: str) -> bool:
    return FAILED.search(screen) is not None


TMUX = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@BWRAP
def test_output_that_is_not_a_terminal_gets_the_tree_and_summary_once(tmp_path: Path, cache: Path) -> None:
    process = trellis(tmp_path, cache, "swe", "solve", INSTANCE, *SMALL, "--model", "python:test_solve_cli:scripted")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    assert out.count("run summary") == 1, out
    assert sum(line.startswith("0 root") for line in out.splitlines()) == 1, out
    assert "\x1b" not in out  # no cursor movements or colours in a log
    assert out.splitlines()[0].startswith("0 root")  # nothing before the final tree


def _solve_watch(tmp_path: Path, cache: Path, model: str) -> Terminal:
    args = " ".join(["swe", "solve", INSTANCE, *SMALL, "--model", model, "--run", "runs/w", "--watch"])
    command = f"sh -c '{sys.executable} -m trellis.cli {args}; echo EXIT=$?; sleep 60'"
    return Terminal(tmp_path, command, env=cli_env(cache))


@BWRAP
@TMUX
def test_watch_shows_the_live_run_and_prints_the_outcome_on_quit(tmp_path: Path, cache: Path) -> None:
    terminal = _solve_watch(tmp_path, cache, "python:test_solve_cli:scripted")
    try:
        terminal.wait_for(
            lambda s: "search exited (0)" in s and "done, chose" in s,
            "finished search",
            300,
            fail=failed,
        )
        terminal.keys("q")
        screen = terminal.wait_for(lambda s: "EXIT=" in s, "the command's end")
        assert "EXIT=0" in screen and screen.count("run summary") == 1, screen
    finally:
        terminal.close()
    log = (tmp_path / "runs" / "w" / "solve.log").read_text()
    assert log.count("run summary") == 1 and "\x1b" not in log


@BWRAP
@TMUX
def test_closing_the_browser_leaves_the_search_running(tmp_path: Path, cache: Path) -> None:
    terminal = _solve_watch(tmp_path, cache, "python:test_solve_cli:slow_scripted")
    try:
        terminal.wait_for(
            lambda s: "nodes, running" in s and "search pid" in s,
            "running search",
            300,
            fail=failed,
        )
    finally:
        terminal.close()  # the terminal goes away with the browser in it
    run = tmp_path / "runs" / "w"
    deadline = time.monotonic() + 300
    while not (run / "final.patch").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (run / "final.patch").exists(), (run / "solve.log").read_text()[-3000:]
    tree = RunDir(run).load_tree()
    tree.check()
    assert tree.final is not None
    # the search's own output went to its log, printed once
    deadline = time.monotonic() + 60
    while "run folder:" not in (run / "solve.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (run / "solve.log").read_text().count("run summary") == 1


def test_watch_passes_the_same_settings_to_the_search(tmp_path: Path) -> None:
    """The search's process gets this command's settings, no live view and no browser."""
    import typer
    from trellis.cli.swe import _solve_args
    from trellis.cli.swe import app as swe_app

    solve = typer.main.get_group(swe_app).commands["solve"]
    line = [INSTANCE, "--offline", "--no-grade", "--samples", "3", "--set", "a.b=1", "--set", "c=2", "--watch"]
    with solve.make_context("solve", list(line)) as ctx:
        args = _solve_args(ctx, tmp_path / "runs" / "x", fresh=True)  # type: ignore[arg-type]
    assert args[:3] == ["swe", "solve", INSTANCE] and args[-1] == "--no-live"
    assert "--watch" not in args and "--live" not in args
    for part in (["--samples", "3"], ["--set", "a.b=1", "--set", "c=2"], ["--run", str(tmp_path / "runs" / "x")]):
        assert any(args[i : i + len(part)] == part for i in range(len(args))), (part, args)
    assert "--offline" in args and "--no-grade" in args and "--grade" not in args
