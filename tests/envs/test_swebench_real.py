"""Real SWE-bench instances (marked `swebench_real`): gold resolves, empty does not.

Needs TRELLIS_SWEBENCH_INSTANCES (an instances file next to a `locks/` folder of pins) and
TRELLIS_SWEBENCH_REPOS (a folder of clones or mirrors); skipped when they are not set. Building the
venvs installs the pins from the package index.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from trellis.envs.swebench.environment import SWEEnvironment, find_repository
from trellis.envs.swebench.harness import evaluate
from trellis.envs.swebench.instance import load_instances

pytestmark = [pytest.mark.swebench_real, pytest.mark.slow]

INSTANCES = os.environ.get("TRELLIS_SWEBENCH_INSTANCES")
REPOS = os.environ.get("TRELLIS_SWEBENCH_REPOS")


def cases() -> list[object]:
    if not INSTANCES or not REPOS or not Path(INSTANCES).exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason="TRELLIS_SWEBENCH_INSTANCES/REPOS not set"))]
    return [pytest.param(i, id=i.instance_id) for i in load_instances(INSTANCES)]


@pytest.mark.parametrize("instance", cases())
def test_gold_resolves_and_empty_does_not(instance: object, tmp_path: Path) -> None:
    source = find_repository(instance.repo, [Path(REPOS or "")])  # type: ignore[attr-defined]
    if source is None:
        pytest.skip(f"no clone of {instance.repo} under {REPOS}")  # type: ignore[attr-defined]
    lock = Path(INSTANCES or "").parent / "locks" / f"{instance.instance_id}.txt"  # type: ignore[attr-defined]
    env = SWEEnvironment(instance, tmp_path / "env")  # type: ignore[arg-type]
    asyncio.run(env.prepare(source, lock if lock.exists() else None))
    gold = asyncio.run(evaluate(env, instance.patch))  # type: ignore[attr-defined]
    empty = asyncio.run(evaluate(env, ""))
    assert gold.resolved, gold.tests_status
    assert not empty.resolved
