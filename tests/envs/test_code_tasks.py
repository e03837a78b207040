"""The shipped code tasks are sound: every reference solution passes its hidden tests, every stub fails."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path

import pytest
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.catalog import TASKS
from trellis.envs.tasks.world import HIDDEN_TEST, CodeTaskWorld, get_task, make_task_repository

from trellis.errors import UserError
from trellis.tree import Action

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")


def test_catalog_shape() -> None:
    assert len(TASKS) >= 30
    assert len({t.id for t in TASKS}) == len(TASKS)
    levels = Counter(t.level for t in TASKS)
    assert set(levels) == {1, 2, 3, 4, 5}
    with pytest.raises(UserError, match="unknown code task"):
        get_task("nope")


async def _check(task_id: str, root: Path) -> tuple[str, float, float]:
    task = get_task(task_id)
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, root / task_id)))
    stub = await world.reward()
    await world.sandbox.write_file("solution.py", task.solution)
    solved = await world.reward()
    assert not world.sandbox.host_path(HIDDEN_TEST).exists()
    return task_id, stub.value, solved.value


def test_every_reference_passes_and_every_stub_fails(tmp_path: Path) -> None:
    async def all_tasks() -> list[tuple[str, float, float]]:
        semaphore = asyncio.Semaphore(4)

        async def one(task_id: str) -> tuple[str, float, float]:
            async with semaphore:
                return await _check(task_id, tmp_path)

        return await asyncio.gather(*(one(t.id) for t in TASKS))

    results = asyncio.run(all_tasks())
    assert [r for r in results if (r[1], r[2]) != (0.0, 1.0)] == []


async def test_world_flow_and_patch_excludes_hidden_tests(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "t")))
    obs = await world.reset()
    assert "reverse_string" in obs.text and "solution.py" in obs.text
    obs = await world.step(
        Action(
            tool="replace",
            args={
                "path": "solution.py",
                "old": '    """Return s reversed."""\n',
                "new": '    """Return s reversed."""\n    return s[::-1]\n',
            },
        )
    )
    assert not obs.is_error, obs.text
    reward = await world.reward()
    assert reward.resolved and reward.summary == "3/3 hidden tests pass"
    patch = await world.patch()
    assert "return s[::-1]" in patch and HIDDEN_TEST not in patch
    assert [t.name for t in world.tools] == [
        "view_file",
        "write_file",
        "replace",
        "shell",
        "run_tests",
        "finish",
        "reject",
    ]
