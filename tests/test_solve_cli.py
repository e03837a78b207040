"""The main job end to end on the embedded model, recorded; then replayed to the same tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trellis.run import RunDir

pytestmark = [pytest.mark.model, pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")]

SMALL = ["--offline", "--no-live", "--max-nodes", "5", "--samples", "2"]


def solve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TRELLIS_CACHE_DIR": os.environ.get("TRELLIS_CACHE_DIR", str(Path.home() / ".cache/trellis")),
        "COLUMNS": "120",
    }
    return subprocess.run(
        [sys.executable, "-m", "trellis.cli", "swe", "solve", "example__tinycalc-1", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )


def test_solve_records_and_replay_reproduces(tmp_path: Path, qwen_path: str) -> None:
    cassette = tmp_path / "calls.jsonl"
    first = solve(tmp_path, *SMALL, "--run", "runs/a", "--record", str(cassette))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "run summary" in first.stdout and "graded:" in first.stdout
    run_a = tmp_path / "runs" / "a"
    for name in ("tree.db", "events.jsonl", "predictions.jsonl", "final.patch", "report.json", "run.json"):
        assert (run_a / name).exists(), name
    prediction = json.loads((run_a / "predictions.jsonl").read_text())
    assert prediction["instance_id"] == "example__tinycalc-1"
    assert prediction["model_name_or_path"].startswith("record:")

    second = solve(tmp_path, *SMALL, "--run", "runs/b", "--model", f"replay:{cassette}")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    a = RunDir(run_a).load_tree()
    b = RunDir(tmp_path / "runs" / "b").load_tree()

    def shape(tree: object) -> dict[str, object]:
        # test output carries wall-clock durations, so observations are compared without them
        return {k: v.model_dump(exclude={"step": {"observation"}}) for k, v in tree.nodes.items()}  # type: ignore[attr-defined]

    assert shape(a) == shape(b)
    assert (run_a / "final.patch").read_text() == (tmp_path / "runs" / "b" / "final.patch").read_text()
