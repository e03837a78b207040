"""Golden tests of every view: rich output at a fixed width, and the exports.

Regenerate after an intended change with TRELLIS_UPDATE_GOLDENS=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.console import Console
from test_tree import sample_tree

from trellis.render import TreeView, node_detail, summary, to_dot, to_mermaid
from trellis.tree import FinalChoice, Tree

GOLDEN = Path(__file__).parent / "data" / "views"


def decided_tree() -> Tree:
    tree = sample_tree()
    tree.decision = {"strategy": "debate", "reason": "votes {0: 2} in the last round"}
    tree.final = FinalChoice(node="0.0.0", patch="diff")
    tree.meta["instance_id"] = "example__tinycalc-1"
    return tree


def rendered(renderable: object) -> str:
    console = Console(width=100, color_system=None, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TRELLIS_UPDATE_GOLDENS"):
        path.write_text(text)
    assert path.exists(), f"missing golden {path}; run with TRELLIS_UPDATE_GOLDENS=1"
    assert text == path.read_text()


@pytest.mark.parametrize(
    ("name", "options"),
    [("tree_full.txt", {}), ("tree_depth1.txt", {"depth": 1}), ("tree_top1.txt", {"top": 1})],
)
def test_tree_view(name: str, options: dict[str, int]) -> None:
    check(name, rendered(TreeView(decided_tree(), **options)))  # type: ignore[arg-type]


def test_summary_view() -> None:
    check("summary.txt", rendered(summary(decided_tree(), {"resolved": True})))


def test_node_view() -> None:
    check("node_0.0.txt", rendered(node_detail(decided_tree(), "0.0")))
    check("node_0.1.txt", rendered(node_detail(decided_tree(), "0.1")))


def test_a_finished_node_shows_the_judge_reward_of_each_verdict_on_its_path() -> None:
    from trellis.tree import Action, JudgeVerdict, Observation, Step

    tree = Tree.new()
    searched = tree.add_child(
        "0", 0, Step(action=Action(tool="search", args={"query": "x"}), observation=Observation(text="p"))
    )
    looked = Step(
        action=Action(tool="search", args={"query": "y"}),
        observation=Observation(text="q"),
        judge=JudgeVerdict(keep=True),
    )
    second = tree.add_child(searched.id, 0, looked)
    answered = Step(
        action=Action(tool="answer", args={"text": "Quillon"}),
        observation=Observation(text="answered", terminal="finished"),
        judge=JudgeVerdict(keep=False),
    )
    leaf = tree.add_child(second.id, 0, answered, terminal_reason="finished")
    leaf.meta["judge_reward"] = {"per_step": {"2": 0.4, "3": -0.3}, "total": 0.1, "count": 2}
    text = rendered(node_detail(tree, leaf.id))
    assert "node 0.0.0 (Yes): +0.40" in text and "node 0.0.0.0 (No): -0.30" in text
    assert "total +0.10 over 2 verdicts" in text
    assert "judge rewards" not in rendered(node_detail(tree, second.id))  # only where it was scored


def test_exports() -> None:
    check("tree.dot", to_dot(decided_tree()))
    check("tree.mmd", to_mermaid(decided_tree()))


def test_live_view_follows_events() -> None:
    from rich.live import Live

    from trellis.render import LiveTree

    console = Console(width=100, height=40, color_system=None, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    tree = decided_tree()
    with Live(console=console, auto_refresh=False) as live:
        view = LiveTree(live, lambda: tree, title="demo")
        view({"event": "iteration", "iteration": 3, "selected": ["0.0"], "stop": None})
        tree.add_child("0.0", 2)
        view({"event": "node_created", "node": {"id": "0.0.2"}})
    text = console.export_text()
    assert "demo  6 nodes  iteration 3: expanding 0.0" in text
    assert "0.0.2" in text
