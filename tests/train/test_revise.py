"""Revision trajectories from a tree grown in a real code-task world: labels, pairs, first error,
splices replayed in a fresh world, the masks of the exported chat, and the dataset on disk."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from pathlib import Path

import pytest
from revision_trees import TASK, WRONG, reverse_string_tree, save_run, stub_locator_model
from trellis.agents.first_error import FirstErrorLocator
from trellis.train.export import load_conversations, write_dataset
from trellis.train.pairs import PairConfig, find_pairs, label_leaves
from trellis.train.revise import NO_STATE, NO_WORLD, ReviseConfig, revise_runs, revise_tree
from trellis.train.splice import REVISION_THOUGHTS, ReplayError, make_splice, replay
from trellis.train.worlds import code_task_world, find_code_task

from trellis.tree import Tree

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return asyncio.run(reverse_string_tree(tmp_path_factory.mktemp("grown") / "repo"))


def test_a_tree_is_matched_to_its_code_task(tree: Tree) -> None:
    assert find_code_task(tree) == (TASK, True)
    assert find_code_task(Tree.new(task="something else")) is None


def test_hidden_tests_label_the_leaves_instead_of_the_values(tree: Tree) -> None:
    by_value = label_leaves(tree)
    assert {k: (v.value, v.source) for k, v in by_value.items()} == {
        "0.0.0.0": (0.7, "value"),
        "0.0.1.0": (0.6, "value"),
        "0.1.0": (0.0, "value"),
    }
    # on values alone the stub (valued 0.7) would be the good side
    assert [(p.good, p.bad) for p in find_pairs(tree, by_value)] == [("0.0.0.0", "0.1.0")]

    async def run() -> list[tuple[str, str, str]]:
        async with code_task_world(tree) as world:
            revisions, _, report, _ = await revise_tree(
                tree, "t", world=world, locator=None, config=ReviseConfig(locate=False)
            )
        assert report.labels == {"check": 2, "value": 1}
        return [(r["good"], r["bad"], r["ancestor"]) for r in revisions]

    # checked: the stub fails the hidden tests; the deeper shared prefix comes first
    assert asyncio.run(run()) == [("0.0.1.0", "0.0.0.0", "0.0"), ("0.0.1.0", "0.1.0", "0")]


def test_alpha_beta_and_the_pair_limit(tree: Tree) -> None:
    labels = label_leaves(tree, {"0.0.1.0": 1.0, "0.0.0.0": 0.0})
    assert len(find_pairs(tree, labels, PairConfig(alpha=0.5, beta=0.2))) == 2
    assert len(find_pairs(tree, labels, PairConfig(max_pairs=1))) == 1
    assert find_pairs(tree, labels, PairConfig(alpha=1.0)) == []  # the value must exceed alpha
    assert find_pairs(tree, label_leaves(tree, {"0.0.1.0": 0.6, "0.0.0.0": 0.5}), PairConfig(beta=0.6)) == []


def test_first_error_cuts_the_bad_segment_and_the_splice_replays(tree: Tree) -> None:
    labels = label_leaves(tree, {"0.0.1.0": 1.0, "0.0.0.0": 0.0})
    pair = find_pairs(tree, labels)[0]
    assert (pair.good, pair.bad, pair.ancestor) == ("0.0.1.0", "0.0.0.0", "0.0")
    locator = FirstErrorLocator(stub_locator_model())

    async def run() -> object:
        found = await locator(TASK.prompt, [tree.get("0.0").step], [tree.get("0.0.0").step, tree.get("0.0.0.0").step])
        assert found.first_bad == 0 and [v.verdict for v in found.verdicts] == ["bad"]  # stops at the first bad
        splice = make_splice(tree, pair, found, seed=3)
        assert [s.action.tool for s in splice.bad] == ["write_file"] and splice.bad_total == 2
        assert splice.revision.action.args == {"state": "start"}  # viewing changed nothing: back to the start
        assert splice.revision.action.thought in {
            t.format(mistake=splice.bad[0].action.describe(80)) for t in REVISION_THOUGHTS
        }
        async with code_task_world(tree) as world:
            replayed = await replay(world, splice)
            assert replayed.verified and replayed.revision.observation is not None
            assert replayed.revision.observation.text.startswith("reverted to the starting files: 1 changed file")
            broken = splice.model_copy(update={"good_state": tree.get("0.0.0.0").state_id})
            with pytest.raises(ReplayError, match="good suffix does not reach the good leaf"):
                await replay(world, broken)
        return replayed

    asyncio.run(run())


def test_the_phrasing_is_chosen_by_seed(tree: Tree) -> None:
    pair = find_pairs(tree, label_leaves(tree, {"0.0.1.0": 1.0, "0.0.0.0": 0.0}))[0]
    chosen = {make_splice(tree, pair, seed=seed).phrasing for seed in range(20)}
    assert make_splice(tree, pair, seed=5).phrasing == make_splice(tree, pair, seed=5).phrasing
    assert len(chosen) > 1


def test_masks_train_only_the_revision_and_the_good_suffix(tree: Tree, tmp_path: Path) -> None:
    tree = tree.model_copy(deep=True)
    # the verdicts on the good path were scored (ReSeek's instructive reward); the bad path had none
    tree.get("0.0.1.0").meta["judge_reward"] = {"per_step": {"1": 0.4}, "total": 0.4, "count": 1}
    run = save_run(tree, tmp_path / "run")
    result = asyncio.run(revise_runs([run.path], locator=FirstErrorLocator(stub_locator_model())))
    assert result.summary(ReviseConfig())["verified"] == 2
    example = result.revisions[0]
    assert (example["good"], example["bad"], example["verified"]) == ("0.0.1.0", "0.0.0.0", True)
    roles = [(m["role"], m["train"]) for m in example["messages"]]
    # system, task, view (shared), its result, the stub (bad), its result, revert + thought, its result,
    # the fix, its result, finish; the last observation is left out
    assert roles == [
        ("system", False),
        ("user", False),
        ("assistant", False),
        ("user", False),
        ("assistant", False),
        ("user", False),
        ("assistant", True),
        ("user", False),
        ("assistant", True),
        ("user", False),
        ("assistant", True),
    ]
    messages = example["messages"]
    assert "return None" in messages[4]["content"]
    assert messages[6]["content"].endswith("revert start") and "revert" in messages[0]["content"]
    assert "return s[::-1]" in messages[8]["content"] and messages[10]["content"].endswith("finish")
    assert all(m["weight"] == int(m["train"]) for m in messages)
    # the preference pair: the chat up to the common ancestor, then the two continuations to their leaves
    assert example["judge_reward"] == 0.4
    preference = result.preferences[0]
    assert (preference["good_judge_reward"], preference["bad_judge_reward"]) == (0.4, None)
    assert len(preference["prompt"]) == 4
    assert [m["role"] for m in preference["chosen"]] == ["assistant", "user", "assistant"]
    assert (
        "return s[::-1]" in preference["chosen"][0]["content"] and WRONG.strip() in preference["rejected"][0]["content"]
    )

    out = tmp_path / "data"
    written = write_dataset(out, result.revisions, result.preferences, result.summary(ReviseConfig()))
    assert load_conversations(out) == [r["messages"] for r in result.revisions]
    if importlib.util.find_spec("datasets") is not None:  # the Hugging Face copy needs the train extra
        assert (out / "hf" / "sft") in written
        assert load_conversations(out / "hf" / "sft") == [r["messages"] for r in result.revisions]
    assert json.loads((out / "summary.json").read_text())["dropped"] == {}


def test_a_splice_that_does_not_replay_is_dropped_and_counted(tree: Tree) -> None:
    broken = tree.model_copy(deep=True)
    # on values alone the pair is (the stub's finish, the rejection); the stub's finish now claims a
    # state its steps do not reach
    broken.get("0.0.0.0").state_id = "0" * 40
    config = ReviseConfig(locate=False, ground_truth=False)

    async def run() -> tuple[object, object]:
        async with code_task_world(broken) as world:
            _, _, report, _ = await revise_tree(broken, "t", world=world, locator=None, config=config)
        _, preferences, no_world, _ = await revise_tree(broken, "t", world=None, locator=None, config=config)
        assert len(preferences) == no_world.pairs  # preference pairs need no replay
        return report, no_world

    report, no_world = asyncio.run(run())
    assert report.pairs == report.spliced == 1 and report.verified == 0  # type: ignore[attr-defined]
    assert report.dropped == {"good suffix does not reach the good leaf": 1}  # type: ignore[attr-defined]
    assert no_world.dropped == {NO_WORLD: 1}  # type: ignore[attr-defined]


def test_a_pair_without_a_world_state_is_counted_not_spliced(tree: Tree) -> None:
    stateless = tree.model_copy(deep=True)
    stateless.get("0.0.0.0").state_id = None  # the good leaf of the only pair (on values alone)
    config = ReviseConfig(locate=False, ground_truth=False)
    revisions, preferences, report, _ = asyncio.run(
        revise_tree(stateless, "t", world=None, locator=None, config=config)
    )
    assert (report.pairs, report.spliced, report.verified) == (1, 0, 0)
    assert report.dropped == {NO_STATE: 1} and revisions == [] and len(preferences) == 1


def test_exported_chats_carry_the_judge_turns() -> None:
    from trellis.agents.prompts import DROPPED
    from trellis.envs.code.tools import CODE_TOOLS
    from trellis.train.export import ChatFormat

    from trellis.tree import Action, JudgeVerdict, Observation, Step

    tools = [CODE_TOOLS[name][0] for name in ("view_file", "shell", "finish")]
    steps = [
        Step(action=Action(tool="view_file", args={"path": "a.py"}), observation=Observation(text="NOISE")),
        Step(action=Action(tool="finish"), observation=Observation(text="done"), judge=JudgeVerdict(keep=False)),
    ]
    messages = ChatFormat(task="t", tools=tools, judge=True).messages(steps)
    assert "<judge>Yes</judge>" in messages[5].content  # asked after an observation, as the run's solver was
    assert messages[4].role == "assistant" and messages[4].content.startswith("<judge>No</judge>")
    assert messages[3].content == f"Observation:\n{DROPPED}" and "NOISE" not in "".join(m.content for m in messages)


def test_an_answer_and_its_repair_are_both_labelled_but_never_paired() -> None:
    """A finished answer that crashed on probe inputs has a repair below it: both have an outcome,
    and a pair needs a fork, so the repaired answer pairs with another branch, not with its repair."""
    from trellis.tree import Action, Observation, Step

    def write(content: str, finished: bool = True) -> Step:
        observation = Observation(text="2 of 2 pass", terminal="finished" if finished else None)
        return Step(
            action=Action(tool="write_file", args={"path": "solution.py", "content": content}), observation=observation
        )

    tree = Tree.new()
    crashed = tree.add_child("0", 0, write("a"), state_id="a", reward=0.8, terminal=True, terminal_reason="finished")
    crashed.meta["crashes"] = ["f('') raised IndexError"]
    tree.add_child(crashed.id, 0, write("b"), state_id="b", reward=0.9, terminal=True, terminal_reason="finished")
    tree.add_child("0", 1, write("c"), state_id="c", reward=0.1, terminal=True, terminal_reason="finished")
    labels = label_leaves(tree, {"0.0": 0.0, "0.0.0": 1.0, "0.1": 0.0})
    assert set(labels) == {"0.0", "0.0.0", "0.1"}
    assert [(p.good, p.bad) for p in find_pairs(tree, labels, PairConfig(max_pairs=5))] == [("0.0.0", "0.1")]
