"""Worlds as Ray actors: a search's expansions run in actors with repositories of their own, and the
tree is the one the same search builds on local worlds; states move between actors as git packs."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path

import pytest
from scripted_agents import code_task_model
from trellis.envs.code.workspace import add_worktree
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.world import REVISION_TOOLS, TASK_TOOLS, CodeTaskWorld, get_task, make_task_repository
from trellis.search.config import BudgetConfig, SearchConfig
from trellis.search.run import RunDir, run_search

from trellis.tree import Action, Tree

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray (pip install 'trellis[ray]')"),
    pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed"),
]
TASK = get_task("reverse_string")


class TaskWorldBuilder:
    """Makes the task's world in a repository of its own, on the machine the actor runs on."""

    def __init__(self, folder: Path, tools: list[str] = TASK_TOOLS) -> None:
        self.folder = folder
        self.tools = tools

    def __call__(self) -> CodeTaskWorld:
        return CodeTaskWorld(TASK, BwrapSandbox(make_task_repository(TASK, self.folder)), tools=self.tools)


@pytest.fixture(scope="module")
def ray_runtime():  # type: ignore[no-untyped-def]
    import ray

    # the workers import this module (the builder's class) as the driver does
    here = str(Path(__file__).parent)
    paths = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": paths}},
    )
    yield ray
    ray.shutdown()


def config() -> SearchConfig:
    return SearchConfig(
        samples=2,
        parallel=2,
        budget=BudgetConfig(max_nodes=14, enough_finished=2, reward_threshold=0.99, stop_when_checked=False),
        critic={"mode": "score"},
    )


def shape(tree: Tree) -> list[tuple[str, str, float | None, str]]:
    return sorted(
        (n.id, n.action.key() if n.action else "", n.reward, n.state_id or "") for n in tree if n.parent_id is not None
    )


def test_a_search_on_ray_worlds_builds_the_local_search_s_tree(tmp_path: Path, ray_runtime) -> None:  # type: ignore[no-untyped-def]
    from trellis.envs.remote import close_worlds, ray_worlds

    repo = make_task_repository(TASK, tmp_path / "local" / "repo")
    local = [CodeTaskWorld(TASK, BwrapSandbox(f)) for f in (repo, add_worktree(repo, tmp_path / "local" / "w1"))]
    asyncio.run(
        run_search(
            task=local[0].task, worlds=local, model=code_task_model(TASK), config=config(), run_dir=tmp_path / "a"
        )
    )
    # two actors, each with a repository of its own: no object store is shared
    remote = ray_worlds([TaskWorldBuilder(tmp_path / "ray" / f"repo{i}") for i in range(2)])
    assert remote[0].task == local[0].task and [t.name for t in remote[0].tools] == [t.name for t in local[0].tools]
    outcome = asyncio.run(
        run_search(
            task=remote[0].task, worlds=remote, model=code_task_model(TASK), config=config(), run_dir=tmp_path / "b"
        )
    )
    expected, got = RunDir(tmp_path / "a").load_tree(), RunDir(tmp_path / "b").load_tree()
    assert shape(got) == shape(expected) and len(got) >= 4
    # written answers that pass the examples finished in both: `checks_complete` reached the driver
    assert all(n.action and n.action.tool != "finish" for n in got if n.terminal_reason == "finished")
    assert got.final is not None and got.final == expected.final and "return s[::-1]" in outcome.patch
    # states made by one actor were restored by the other: their objects moved as packs
    assert remote[0].ledger.transfers > 0
    close_worlds(remote)


def test_a_state_moves_to_an_actor_that_never_saw_it(tmp_path: Path, ray_runtime) -> None:  # type: ignore[no-untyped-def]
    from trellis.envs.remote import close_worlds, ray_worlds

    first, second = ray_worlds([TaskWorldBuilder(tmp_path / f"repo{i}", REVISION_TOOLS) for i in range(2)])

    async def scenario() -> None:
        await first.reset()
        await second.reset()
        right = TASK.prompt + "    return s[::-1]\n"
        await first.step(Action(tool="write_file", args={"path": "solution.py", "content": right}))
        state = await first.snapshot()
        assert not (tmp_path / "repo1" / "solution.py").read_text().endswith("return s[::-1]\n")
        await second.restore(state)  # the objects come over from the first actor
        assert (tmp_path / "repo1" / "solution.py").read_text() == right
        assert "return s[::-1]" in await second.patch(state)
        assert first.ledger.transfers == 1
        await second.restore(state)  # held now: nothing moves again
        assert first.ledger.transfers == 1
        # a revert names a state by a prefix of its id: one the actor never saw comes over first
        wrong = TASK.prompt + "    return s\n"
        await first.step(Action(tool="write_file", args={"path": "solution.py", "content": wrong}))
        earlier = await first.snapshot()
        await first.step(Action(tool="write_file", args={"path": "solution.py", "content": right}))
        reverted = await second.step(Action(tool="revert", args={"state": earlier[:12]}))
        assert not reverted.is_error, reverted.text
        assert (tmp_path / "repo1" / "solution.py").read_text() == wrong and first.ledger.transfers == 2

    asyncio.run(scenario())
    close_worlds([first, second])


def test_states_are_kept_with_the_driver_and_outlive_the_actors(tmp_path: Path, ray_runtime) -> None:  # type: ignore[no-untyped-def]
    from trellis.envs.code.workspace import GitWorkspace
    from trellis.envs.remote import close_worlds, ray_worlds

    home = GitWorkspace(make_task_repository(TASK, tmp_path / "driver"))
    remote = ray_worlds([TaskWorldBuilder(tmp_path / "ray" / f"repo{i}") for i in range(2)], home=home)
    asyncio.run(
        run_search(
            task=remote[0].task, worlds=remote, model=code_task_model(TASK), config=config(), run_dir=tmp_path / "b"
        )
    )
    tree = RunDir(tmp_path / "b").load_tree()
    states = {n.state_id for n in tree if n.state_id}

    async def held() -> set[str]:
        return {state for state in states if await home.has_state(state)}

    assert len(states) >= 2 and asyncio.run(held()) == states  # the base and what the actors made
    close_worlds(remote)  # the run's actors are gone, as after a stop
    # new actors with fresh repositories (a resumed run) restore the run's deepest state from the driver's copy
    fresh = ray_worlds([TaskWorldBuilder(tmp_path / "again" / f"repo{i}") for i in range(1)], home=home)
    changed = [n for n in tree if n.state_id and n.state_id != tree.root.state_id]
    deepest = max(changed, key=lambda n: n.depth)

    async def restore() -> str:
        await fresh[0].restore(deepest.state_id or "")
        return await fresh[0].patch(deepest.state_id)

    assert asyncio.run(restore()) == asyncio.run(home.diff(deepest.state_id))
    assert fresh[0].ledger.transfers == 1
    close_worlds(fresh)
