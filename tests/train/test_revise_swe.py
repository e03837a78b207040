"""Revision trajectories from a SWE-bench run: the world is a fresh worktree of the environment the run
worked in, every finished leaf is graded by the instance's hidden tests, and each splice is replayed
there (its revert really restores the shared ancestor's files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trellis.search.run import RunDir
from trellis.train.worlds import swe_environment

from trellis.tree import Tree

TESTS = Path(__file__).resolve().parents[1]
BWRAP = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")
INSTANCE = "example__tinycalc-1"


def trellis(cwd: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TRELLIS_CACHE_DIR": str(cache),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "COLUMNS": "160",
    }
    command = [sys.executable, "-m", "trellis.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@BWRAP
@pytest.mark.slow
def test_a_swe_run_gives_graded_leaves_and_replayed_revisions(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # the scripted model of test_solve_cli writes `a + b` (right) or `a * b` (wrong) on tinycalc's add
    solve = ["swe", "solve", INSTANCE, "--offline", "--no-live", "--model", "python:test_solve_cli:scripted"]
    # seed 2: both outcomes finish (the search goes on past its first checked answer)
    solve += ["--max-nodes", "14", "--samples", "2", "--seed", "2", "--no-grade"]
    solve += ["--set", "budget.enough_finished=6", "--set", "budget.stop_when_checked=false"]
    solved = trellis(tmp_path, cache, *solve, "--run", "runs/a")
    assert solved.returncode == 0, solved.stdout + solved.stderr
    tree = RunDir(tmp_path / "runs" / "a").load_tree()
    assert tree.meta["instance"]["instance_id"] == INSTANCE  # the run keeps what revise rebuilds from
    finished = [n for n in tree if n.terminal_reason == "finished"]

    revised = trellis(tmp_path, cache, "revise", "runs/a", "--out", "data", "--no-locate", "--max-pairs", "4")
    assert revised.returncode == 0, revised.stdout + revised.stderr
    summary = json.loads((tmp_path / "data" / "summary.json").read_text())
    (report,) = summary["per_run"]
    # every finished leaf was graded by the hidden tests, none labelled by its value alone
    assert report["labels"] == {"check": len(finished)} and len(finished) >= 2, report
    assert report["pairs"] >= 1 and report["verified"] == report["spliced"] == report["pairs"], report
    revisions = [json.loads(line) for line in (tmp_path / "data" / "revisions.jsonl").read_text().splitlines()]
    assert len(revisions) == report["verified"]
    for example in revisions:
        said = "\n".join(m["content"] for m in example["messages"] if m["role"] == "assistant")
        assert "revert" in said and "a * b" in said  # the wrong edit, taken back, then the right one
        assert "a + b" in said
        trained = "\n".join(m["content"] for m in example["messages"] if m.get("train"))
        assert "a * b" not in trained  # the bad step is masked
    # grading ran in the environment's own checkout, which is back at the base commit
    checkout = cache / "swe" / INSTANCE / "repo" / "tinycalc" / "__init__.py"
    assert "return a - b" in checkout.read_text()


def test_only_a_run_that_recorded_its_instance_and_a_ready_environment_gets_a_world(tmp_path: Path) -> None:
    assert swe_environment(Tree.new(task="t", instance_id=INSTANCE)) is None  # an older run: no instance kept
    instance = {"instance_id": INSTANCE, "repo": "example/tinycalc", "base_commit": "0" * 40}
    record = {"root": str(tmp_path / "env"), "sandbox": "bwrap", "ready": {"base_commit": "0" * 40}}
    tree = Tree.new(task="t", instance_id=INSTANCE, instance=instance, environment=record)
    assert swe_environment(tree) is None  # the environment is not there (removed since)
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "ready.json").write_text(json.dumps({"base_commit": "1" * 40}))
    assert swe_environment(tree) is None  # rebuilt since: its git objects may not hold the run's states
    (tmp_path / "env" / "ready.json").write_text(json.dumps(record["ready"]))
    env = swe_environment(tree)
    assert env is not None and env.instance.instance_id == INSTANCE and env.root == (tmp_path / "env").resolve()
    for sandbox in ("docker", "local"):  # no replay in a container, nor of commands outside bubblewrap
        assert (
            swe_environment(Tree.new(task="t", instance=instance, environment={**record, "sandbox": sandbox})) is None
        )
    other = Tree.new(task="t", instance_id="example__other-1", instance=instance, environment=record)
    assert swe_environment(other) is None
    (tmp_path / "env" / "ready.json").write_text("{ damaged")
    assert swe_environment(tree) is None
