"""Revision trajectories from a question-answering run: the wrong answer, a revert to the state
before it, the right answer; replayed in a fresh QA world built from the run's data spec."""

from __future__ import annotations

import asyncio
from pathlib import Path

from revision_trees import save_run
from trellis.envs.qa import generate_corpus
from trellis.envs.qa.sources import open_source
from trellis.envs.qa.world import QAWorld
from trellis.train.revise import ReviseConfig, revise_runs
from trellis.train.worlds import any_world, qa_world

from trellis.tree import Action, Step, Tree

DATA = "synthetic:0"


async def answered_twice() -> Tree:
    """root ─ 0.0 search ─┬ 0.0.0 answer "Favwick" (wrong)
    └ 0.0.1 answer the gold town (right)"""
    corpus = generate_corpus()
    question = corpus.questions[0]
    world = QAWorld(corpus, question.id, max_turns=3)
    await world.reset()
    tree = Tree.new(
        state_id=await world.snapshot(),
        task=world.task,
        tools=["search", "answer"],
        data=DATA,
        instance_id=question.id,
        config={"solver": {"action_format": "markdown"}},
    )
    actions = [
        ("0", Action(tool="search", args={"query": "founder of the Zaenstor Bank"}, thought="Who founded it?")),
        ("0.0", Action(tool="answer", args={"text": "Favwick"}, thought="A guess.")),
        ("0.0", Action(tool="answer", args={"text": question.answers[0]}, thought="The passage says so.")),
    ]
    for parent, action in actions:
        await world.restore(tree.get(parent).state_id or "")
        observation = await world.step(action)
        tree.add_child(
            parent,
            len(tree.children(parent)),
            Step(action=action, observation=observation),
            state_id=await world.snapshot(),
            reward=0.5,  # the values cannot tell them apart; exact match labels them
            terminal=bool(observation.terminal),
            terminal_reason=str(observation.terminal or ""),
        )
    return tree


def test_a_qa_run_gives_a_replayed_revision(tmp_path: Path) -> None:
    tree = asyncio.run(answered_twice())

    async def worlds() -> None:
        async with qa_world(tree) as world:
            assert isinstance(world, QAWorld) and world.max_turns == 3  # found from the task statement
            assert "revert" in [t.name for t in world.tools]
        async with any_world(tree) as world:
            assert isinstance(world, QAWorld)
        long = QAWorld(generate_corpus(), "q0000", top_k=2, max_turns=12)  # settings a run records
        recorded = Tree.new(task=long.task, data=DATA, instance_id="q0000", top_k=2, max_turns=12)
        async with qa_world(recorded) as world:
            assert isinstance(world, QAWorld) and (world.top_k, world.max_turns) == (2, 12)
        elsewhere = Tree.new(task=tree.meta["task"], data="corpus:/nowhere.json", instance_id="q0000")
        async with qa_world(elsewhere) as world:
            assert world is None  # the data is not here: no world, so no revision (counted as such)

    asyncio.run(worlds())
    result = asyncio.run(
        revise_runs([save_run(tree, tmp_path / "run").path], locator=None, config=ReviseConfig(locate=False))
    )
    report = result.reports[0]
    assert report.labels == {"check": 2} and report.pairs == 1 and report.verified == 1
    (revision,) = result.revisions
    contents = [m["content"] for m in revision["messages"]]
    assert any(c.endswith("revert 'after search 1'") or c.endswith("revert after search 1") for c in contents), contents
    replayed = next(c for c in contents if c.startswith("Observation:\nreverted to the state after search 1"))
    assert "0 searches and the answer undone" in replayed  # ... and the world really went back
    assert open_source(DATA).question("q0000").answers[0] in contents[-1]  # then the right answer
