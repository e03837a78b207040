"""Kill a running search with SIGKILL at a random moment, resume it, and check that no node is lost
or duplicated, every node is backed up once, and the search ends as an uninterrupted one does."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trellis.run import RunDir
from trellis.store import TreeStore

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")

RUNNER = Path(__file__).parent / "resume_runner.py"


def run(root: Path, mode: str, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(RUNNER), str(root), mode, str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _has_nodes(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with TreeStore(path, readonly=True) as store:
            return store.count() > 0
    except Exception:  # the writer may be creating the schema right now
        return False


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_then_resume(tmp_path: Path, attempt: int) -> None:
    reference = tmp_path / "reference"
    finish(run(reference, "new", 0.0))
    expected = RunDir(reference / "run").load_tree()

    interrupted = tmp_path / "interrupted"
    process = run(interrupted, "new", 0.03)
    rng = random.Random(attempt)
    store_path = interrupted / "run" / "tree.db"
    # wait until the search is under way, then kill it at a random moment
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _has_nodes(store_path):
        time.sleep(0.02)
    time.sleep(rng.uniform(0.1, 2.5))
    process.send_signal(signal.SIGKILL)
    process.wait()
    with TreeStore(store_path, readonly=True) as store:
        before = {n.id: n for n in store.nodes()}
    assert before, "the search was killed before it wrote anything"
    print(f"killed with {len(before)} of {len(expected)} nodes written")

    out = finish(run(interrupted, "resume", 0.0))
    assert out.startswith("DONE")
    after = RunDir(interrupted / "run").load_tree()
    after.check()
    # nothing committed before the kill is lost; ids are unique by construction (primary key)
    assert set(before) <= set(after.nodes)
    # every evaluated node was backed up exactly once
    evaluated = [n for n in after if n.parent_id is not None and n.reward is not None]
    assert after.root.visits == len(evaluated)
    assert all(n.meta.get("backed_up") for n in evaluated)
    # and the resumed search is the one an uninterrupted run makes
    assert set(after.nodes) == set(expected.nodes)
    for node_id, node in expected.nodes.items():
        other = after.nodes[node_id]
        assert (other.visits, other.reward, other.action) == (node.visits, node.reward, node.action), node_id
    assert after.meta["final"] == expected.meta["final"]
