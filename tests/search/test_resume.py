"""Kill a running search with SIGKILL at a random moment, resume it, and check that no node is lost
or duplicated, every node is backed up once, and the search ends as an uninterrupted one does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from scripted_agents import code_task_model
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.world import CodeTaskWorld, get_task, make_task_repository
from trellis.search.config import BudgetConfig, SearchConfig
from trellis.search.engine import SearchContext
from trellis.search.run import RunDir, run_search

from trellis.models import ScriptedModel
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


def _nodes(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with TreeStore(path, readonly=True) as store:
            return store.count()
    except Exception:  # the writer may be creating the schema right now
        return 0


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
    # kill it at a random point of the search: once it has written a random share of its nodes
    target = rng.randint(2, len(expected) - 4)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _nodes(store_path) < target and process.poll() is None:
        time.sleep(0.01)
    assert process.poll() is None, "the search ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    with TreeStore(store_path, readonly=True) as store:
        before = {n.id: n for n in store.nodes()}
        records = store.get_meta("run") or {}
    assert before, "the search was killed before it wrote anything"
    assert not records.get("final") and not records.get("decision"), "the kill did not interrupt the search"
    assert not (interrupted / "run" / "final.patch").exists()
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
    assert all(n.backed_up for n in evaluated)
    # and the resumed search is the one an uninterrupted run makes
    assert set(after.nodes) == set(expected.nodes)
    for node_id, node in expected.nodes.items():
        other = after.nodes[node_id]
        assert (other.visits, other.reward, other.action) == (node.visits, node.reward, node.action), node_id
    assert after.final == expected.final


class Stalling:
    """A ChatModel that answers like `inner` for `calls` requests, then waits forever: the search is
    interrupted in the middle at a point that does not depend on timing."""

    def __init__(self, inner: ScriptedModel, calls: int) -> None:
        self.inner, self.left, self.name = inner, calls, inner.name
        self.stalled = asyncio.Event()

    async def complete(self, *args: Any, **kwargs: Any) -> Any:
        if self.left <= 0:
            self.stalled.set()
            await asyncio.Event().wait()
        self.left -= 1
        return await self.inner.complete(*args, **kwargs)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_the_time_budget_continues_after_a_resume(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    repo = make_task_repository(task, tmp_path / "repo")
    budget = {"max_seconds": 600, "max_nodes": 45, "enough_finished": 20, "reward_threshold": 0.99}
    budget |= {"max_iterations": 40, "max_expansions_per_node": 3, "widen_after": 1}
    config = SearchConfig(samples=3, budget=BudgetConfig(**budget))
    run_dir = tmp_path / "run"
    contexts: list[SearchContext] = []

    def search(model: Any, resume: bool) -> Any:
        world = CodeTaskWorld(task, BwrapSandbox(repo))
        return run_search(
            task=world.task,
            worlds=[world],
            model=model,
            config=config,
            run_dir=run_dir,
            resume=resume,
            on_context=contexts.append,
        )

    async def interrupted() -> None:
        model = Stalling(code_task_model(task), calls=3)
        running = asyncio.create_task(search(model, False))
        await model.stalled.wait()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    asyncio.run(interrupted())
    with TreeStore(run_dir / "tree.db") as store:
        assert store.count() > 1 and not (store.get_meta("run") or {}).get("final")
        spent = store.get_meta("elapsed_seconds")
        assert 0 < spent < 60  # the time spent so far is stored with the nodes
        store.set_meta("elapsed_seconds", 599.0)  # as if the run had used all but a second of its budget
    asyncio.run(search(code_task_model(task), True))
    # the resumed search counts its time from where the first one stopped
    assert time.monotonic() - contexts[-1].started >= 599.0
    with TreeStore(run_dir / "tree.db", readonly=True) as store:
        assert store.get_meta("elapsed_seconds") >= 599.0
        assert store.get_meta("run")["final"] is not None
