"""Good/bad leaf pairs from a search tree (Agent-R's pair selection).

Two leaves of one tree share the path from the root to their lowest common ancestor. A pair is kept
when the good leaf's value exceeds `alpha` and beats the bad leaf's by more than `beta`.

What a leaf is worth, best source first:
1. a ground-truth check given by the caller (a code task's hidden tests run at the leaf's state,
   SWE-bench grading of the patch): `checks`;
2. the world's checked reward the search recorded on the node (`meta["world_reward"]`, written when
   the search ran with `use_world_reward`);
3. the value the search gave the node (`reward`: the critic's evaluation in [0, 1]).
Only terminal leaves are trajectories with an outcome: a finished one (a submitted answer) can be the
good side of a pair; any terminal one (finished, rejected, unparsable) can be the bad side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trellis.tree import Node, NodeId, Tree

LabelSource = Literal["check", "world reward", "value"]


class PairConfig(BaseModel):
    """Which pairs of a tree are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    """The good leaf's value must exceed this."""
    beta: float = Field(default=0.2, ge=0.0, le=1.0)
    """The good leaf's value must exceed the bad leaf's by more than this."""
    max_pairs: int = Field(default=4, ge=1)
    """Most pairs taken from one tree (each bad leaf is used at most once)."""


class LeafLabel(BaseModel):
    """A terminal leaf's worth and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: NodeId
    value: float
    source: LabelSource
    finished: bool


class Pair(BaseModel):
    """A good and a bad leaf and the last node their paths share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    good: NodeId
    bad: NodeId
    ancestor: NodeId
    good_value: float
    bad_value: float
    good_source: LabelSource
    bad_source: LabelSource


def terminal_leaves(tree: Tree) -> list[Node]:
    """Nodes with an outcome: terminal, not the root, not a duplicate of another branch's state. Most
    are leaves; a finished answer that crashed on probe inputs can have repairs below it."""
    return [node for node in tree if node.parent_id is not None and node.terminal and node.duplicate_of is None]


def label_leaves(tree: Tree, checks: Mapping[NodeId, float] | None = None) -> dict[NodeId, LeafLabel]:
    """A label for every terminal leaf (see the module docstring for the order of sources)."""
    checks = checks or {}
    labels: dict[NodeId, LeafLabel] = {}
    for node in terminal_leaves(tree):
        finished = node.terminal_reason == "finished"
        recorded = node.meta.get("world_reward")
        if node.id in checks:
            value, source = float(checks[node.id]), "check"
        elif isinstance(recorded, dict) and isinstance(recorded.get("value"), int | float):
            value, source = float(recorded["value"]), "world reward"
        elif node.reward is not None:
            value, source = float(node.reward), "value"
        else:
            continue  # never evaluated: no outcome to compare
        labels[node.id] = LeafLabel(node_id=node.id, value=value, source=source, finished=finished)  # type: ignore[arg-type]
    return labels


def common_ancestor(tree: Tree, a: NodeId, b: NodeId) -> Node:
    """The deepest node on both root paths."""
    on_a = {node.id for node in tree.ancestors(a)}
    return next(node for node in reversed(tree.ancestors(b)) if node.id in on_a)


def find_pairs(tree: Tree, labels: Mapping[NodeId, LeafLabel], config: PairConfig | None = None) -> list[Pair]:
    """The kept pairs, widest value gap first (ties: the longer shared prefix, then node ids).

    A bad leaf appears in at most one pair, so the pairs of a tree teach different recoveries.
    """
    config = config or PairConfig()
    goods = [label for label in labels.values() if label.finished and label.value > config.alpha]
    candidates: list[tuple[float, int, LeafLabel, LeafLabel, Node]] = []
    for good in goods:
        for bad in labels.values():
            if bad.node_id == good.node_id or good.value - bad.value <= config.beta:
                continue
            ancestor = common_ancestor(tree, good.node_id, bad.node_id)
            if ancestor.id in (good.node_id, bad.node_id):  # one path (an answer and its repair): no fork
                continue
            candidates.append((good.value - bad.value, ancestor.depth, good, bad, ancestor))
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2].node_id, c[3].node_id))
    pairs: list[Pair] = []
    used: set[NodeId] = set()
    for _, _, good, bad, ancestor in candidates:
        if bad.node_id in used:
            continue
        used.add(bad.node_id)
        pairs.append(
            Pair(
                good=good.node_id,
                bad=bad.node_id,
                ancestor=ancestor.id,
                good_value=good.value,
                bad_value=bad.value,
                good_source=good.source,
                bad_source=bad.source,
            )
        )
        if len(pairs) == config.max_pairs:
            break
    return pairs
