from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trellis.errors import UserError
from trellis.tree import (
    FORMAT_VERSION,
    Action,
    FinalChoice,
    JudgeVerdict,
    Message,
    Node,
    Observation,
    Reflection,
    Step,
    Tree,
    Usage,
    child_id,
)

GOLDEN_V1 = Path(__file__).parent / "data" / "tree_v1.json"
GOLDEN = Path(__file__).parent / "data" / "tree_v2.json"


def sample_tree(records: bool = True) -> Tree:
    """A small tree using every field, the shape the golden file holds (without `records`: the shape
    of the format 1 golden file, which had no typed search records)."""
    tree = Tree.new(state_id="4b825dc642cb6eb9a060e54bf8d69288fbee4904", task="demo", seed=7)
    a = tree.add_child(
        "0",
        0,
        Step(
            action=Action(tool="view_file", args={"path": "src/app.py", "start": 1}, thought="look first"),
            observation=Observation(text="1 import os", data={"lines": 1}),
            completion='{"tool": "view_file", "args": {"path": "src/app.py"}}',
            prompt=[Message(role="system", content="You fix bugs."), Message(role="user", content="Fix it.")],
            judge=JudgeVerdict(keep=True, reason="relevant", reward=0.1),
        ),
        state_id="4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        reward=0.6,
        explanation="reads the right file",
        feedback="try the test next",
        usage=Usage(prompt_tokens=120, cached_tokens=100, completion_tokens=20, seconds=0.5, calls=1),
    )
    tree.add_child(
        "0",
        1,
        Step(error="no tool call found", completion="I am not sure"),
        terminal=True,
        terminal_reason="format error",
        reward=0.0,
    )
    tree.add_child(
        a.id,
        0,
        Step(action=Action(tool="finish", args={}), observation=Observation(text="submitted")),
        terminal=True,
        terminal_reason="finished",
        reward=1.0,
        reflection="",
        count=2,
    )
    tree.add_child(a.id, 1, Step(action=Action(tool="finish", args={})), duplicate_of="0.0.0")
    tree.backpropagate("0.0.0", 1.0)
    tree.backpropagate("0.1", 0.0)
    if records:
        tree.root.expansions = [0]
        tree.get("0.0").expansions = [1]
        for node in tree:
            if node.parent_id is not None:
                node.expansion = 0 if node.depth == 1 else 1
                node.backed_up = node.reward is not None
        done = tree.get("0.0.0").step.observation  # type: ignore[union-attr]
        done.terminal, done.patch, done.tests = "finished", "diff --git a/x b/x", {"test_x": "PASSED"}
        tree.reflections = [Reflection(node="0.1", lesson="reply with one action")]
        tree.final = FinalChoice(node="0.0.0", patch="diff --git a/x b/x")
        tree.decision = {"node_id": "0.0.0", "strategy": "mean", "reason": "one distinct answer"}
    return tree


def test_ids_are_deterministic() -> None:
    assert child_id("0", 2) == "0.2"
    assert child_id("0.2", 0) == "0.2.0"
    tree = Tree.new()
    first = tree.add_child("0", 3)
    assert first.id == "0.3" and first.depth == 1
    again = tree.add_child("0", 3)  # re-running an expansion replaces, never duplicates
    assert again.id == "0.3" and len(tree) == 2
    with pytest.raises(ValueError):
        child_id("0", -1)


def test_structure_queries() -> None:
    tree = sample_tree()
    assert [n.id for n in tree.children("0")] == ["0.0", "0.1"]
    assert [n.id for n in tree.path("0.0.1").nodes] == ["0", "0.0", "0.0.1"]
    assert [n.id for n in tree.descendants("0")] == ["0.0", "0.0.0", "0.0.1", "0.1"]
    assert {n.id for n in tree.leaves()} == {"0.0.0", "0.0.1", "0.1"}
    assert {n.id for n in tree.terminals()} == {"0.0.0", "0.1"}
    assert tree.parent("0.0.0").id == "0.0"  # type: ignore[union-attr]
    assert tree.best_path() == ["0", "0.0", "0.0.0"]
    assert tree.path("0.0.0").actions[-1].tool == "finish"
    assert tree.total_usage().cached_tokens == 100
    tree.check()


def test_backpropagate_updates_the_path() -> None:
    tree = sample_tree()
    assert tree.root.visits == 2 and tree.root.value == pytest.approx(0.5)
    assert tree.get("0.0").visits == 1 and tree.get("0.0").value == 1.0
    assert tree.get("0.0.1").visits == 0 and tree.get("0.0.1").value == 0.0


def test_add_rejects_broken_structure() -> None:
    tree = Tree.new()
    with pytest.raises(ValueError, match="not in the tree"):
        tree.add(Node(id="9.0", parent_id="9", depth=2))
    with pytest.raises(ValueError, match="depth"):
        tree.add(Node(id="0.0", parent_id="0", depth=5))
    with pytest.raises(ValueError, match="exactly one root"):
        tree.add(Node(id="x"))
    with pytest.raises(UserError, match="no node"):
        tree.get("0.7")


def test_json_round_trip_is_exact() -> None:
    tree = sample_tree()
    again = Tree.from_json(tree.to_json())
    assert again == tree
    assert again.to_json() == tree.to_json()
    assert [n.id for n in again.children("0.0")] == ["0.0.0", "0.0.1"]


def test_golden_file_stays_readable() -> None:
    """A tree written by this format must load and re-serialise to the same content."""
    tree = Tree.load(GOLDEN)
    assert tree == sample_tree() and tree.format_version == FORMAT_VERSION == 2
    assert Tree.from_json(GOLDEN.read_text()).to_json(indent=1) + "\n" == GOLDEN.read_text()


def test_a_format_1_file_is_read_through_the_migration() -> None:
    tree = Tree.load(GOLDEN_V1)
    assert tree == sample_tree(records=False) and tree.format_version == 2  # written back as format 2
    # format 1 kept the search's records in dicts: they move to their fields
    data = sample_tree().model_dump(mode="json")
    data["format_version"] = 1
    for key in ("reflections", "final", "decision"):
        data["meta"][key] = data.pop(key)
    for node in data["nodes"].values():
        for key in ("expansion", "expansions", "backed_up"):
            value = node.pop(key)
            if value is not None:  # format 1 wrote only what a node had
                node["meta"][key] = value
        observation = (node.get("step") or {}).get("observation")
        if observation:
            for key in ("terminal", "patch", "tests"):
                value = observation.pop(key)
                if value is not None:
                    observation["data"][key] = value
    migrated = Tree.model_validate_json(json.dumps(data))
    assert migrated == sample_tree()
    assert migrated.get("0.0").expansions == [1] and migrated.get("0.0.0").backed_up
    assert migrated.final == FinalChoice(node="0.0.0", patch="diff --git a/x b/x") and "final" not in migrated.meta
    assert migrated.get("0.0.0").step.observation.terminal == "finished"  # type: ignore[union-attr]


def test_newer_format_is_refused_with_advice() -> None:
    data = sample_tree().model_dump(mode="json")
    data["format_version"] = 99
    with pytest.raises(UserError, match="upgrade trellis"):
        Tree.model_validate(data)


def test_save_and_load(tmp_path: Path) -> None:
    tree = sample_tree()
    tree.save(tmp_path / "t.json")
    assert Tree.load(tmp_path / "t.json") == tree
    with pytest.raises(UserError, match="does not exist"):
        Tree.load(tmp_path / "missing.json")


def test_to_networkx() -> None:
    graph = sample_tree().to_networkx()
    assert set(graph.nodes) == {"0", "0.0", "0.1", "0.0.0", "0.0.1"}
    assert set(graph.edges) == {("0", "0.0"), ("0", "0.1"), ("0.0", "0.0.0"), ("0.0", "0.0.1")}
    assert graph.nodes["0.0"]["reward"] == 0.6
    assert graph.nodes["0.0"]["action"].startswith("view_file(")
    assert graph.graph["task"] == "demo"


def test_action_key_and_summary() -> None:
    a = Action(tool="edit", args={"b": 1, "a": "x"})
    b = Action(tool="edit", args={"a": "x", "b": 1}, thought="different thought")
    assert a.key() == b.key()
    assert a.summary() == "edit(b=1, a='x')"
    long = Action(tool="write", args={"text": "y" * 200}).summary(width=30)
    assert len(long) == 30 and long.endswith("…")


@st.composite
def random_trees(draw: st.DrawFn) -> tuple[Tree, list[str]]:
    tree = Tree.new()
    ids = ["0"]
    for _ in range(draw(st.integers(0, 40))):
        parent = draw(st.sampled_from(ids))
        index = len(tree.children(parent))
        ids.append(tree.add_child(parent, index).id)
    visits = draw(st.lists(st.tuples(st.sampled_from(ids), st.floats(0, 1)), max_size=60))
    for node_id, value in visits:
        tree.backpropagate(node_id, value)
    return tree, ids


@settings(max_examples=150, deadline=None)
@given(random_trees())
def test_tree_invariants(case: tuple[Tree, list[str]]) -> None:
    tree, _ = case
    tree.check()
    assert [n.id for n in tree if n.parent_id is None] == ["0"]
    for node in tree:
        children = tree.children(node.id)
        assert node.visits >= sum(c.visits for c in children)
        assert node.value_sum >= sum(c.value_sum for c in children) - 1e-9
        assert 0.0 <= node.value <= 1.0
        for child in children:
            assert child.depth == node.depth + 1
            assert child.id == child_id(node.id, child.index)
    assert Tree.from_json(tree.to_json()) == tree


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (Action(tool="write_file", args={"path": "a.py", "content": "x = 1\n"}), "writing a.py"),
        (Action(tool="replace", args={"path": "a.py", "old": "a", "new": "b"}), "editing a.py"),
        (Action(tool="shell", args={"command": "grep -n x\n  a.py"}), "running `grep -n x a.py`"),
        (Action(tool="view_file", args={"path": "a.py", "start": 3}), "`view_file a.py 3`"),
        (Action(tool="finish"), "`finish`"),
    ],
)
def test_an_action_described_in_words(action: Action, words: str) -> None:
    # nothing in it looks like a call (`write_file(path=...)`) a model could copy as its reply
    assert action.describe() == words and "(" not in action.describe()


def test_keys_of_your_own_that_share_a_record_s_name_stay_where_they_are() -> None:
    observation = Observation(text="x", data={"tests": ["a", "b"], "patch": 3})
    assert observation.tests is None and observation.data == {"tests": ["a", "b"], "patch": 3}
    node = Node(id="0", meta={"expansion": "refine", "backed_up": "yes"})
    assert node.expansion is None and node.meta == {"expansion": "refine", "backed_up": "yes"}
    # beside a field that is set, a format-1 key is not moved over it
    typed = Node(id="0", expansions=[3], meta={"expansions": [1]})
    assert typed.expansions == [3] and typed.meta == {"expansions": [1]}
