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
