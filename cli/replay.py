"""The search replayed iteration by iteration from a run's event log (`events.jsonl`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trellis.tree import FinalChoice, Node, NodeId, Tree


@dataclass
class Frame:
    """The search after one of its iterations, as the event log tells it."""

    number: int
    """0 before the first iteration, then one per iteration."""
    iteration: int | None
    selected: list[NodeId] = field(default_factory=list)
    created: list[NodeId] = field(default_factory=list)
    evaluated: list[NodeId] = field(default_factory=list)
    stop: str = ""
    decided: str | None = None
    decision: str = ""
    present: list[NodeId] = field(default_factory=list)
    """Every node made so far, in the order they were made."""
    rewards: dict[NodeId, float | None] = field(default_factory=dict)
    visits: dict[NodeId, int] = field(default_factory=dict)
    value_sums: dict[NodeId, float] = field(default_factory=dict)
    briefs: dict[NodeId, dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        if self.iteration is None:
            return "start: " + (f"root {', '.join(self.created)}" if self.created else "nothing stored yet")
        parts = [f"iteration {self.iteration}"]
        if self.selected:
            parts.append(f"expanded {', '.join(self.selected)}")
        parts.append(f"{len(self.created)} new" + (f" ({', '.join(self.created[:8])})" if self.created else ""))
        if self.stop:
            parts.append(f"stop: {self.stop}")
        if self.decision:
            parts.append(self.decision)
        return "; ".join(parts)


def replay(events: Sequence[dict[str, Any]]) -> list[Frame]:
    """Frames of the search, one per `iteration` event (the select that starts it) and one before;
    visits and values are backed up exactly as the search does, from `node_backed_up` events."""
    frames = [Frame(0, None)]
    current = frames[0]
    present: list[NodeId] = []
    seen: set[NodeId] = set()
    rewards: dict[NodeId, float | None] = {}
    visits: dict[NodeId, int] = {}
    value_sums: dict[NodeId, float] = {}
    briefs: dict[NodeId, dict[str, Any]] = {}

    def settle(frame: Frame) -> None:
        frame.present, frame.rewards = list(present), dict(rewards)
        frame.visits, frame.value_sums, frame.briefs = dict(visits), dict(value_sums), dict(briefs)

    for event in events:
        kind = event.get("event")
        brief = event.get("node")
        node_id = str(brief.get("id")) if isinstance(brief, dict) else None
        if kind == "iteration":
            settle(current)
            current = Frame(len(frames), _int(event.get("iteration")), selected=list(event.get("selected") or []))
            current.stop = str(event.get("stop") or "")
            frames.append(current)
        elif kind == "node_created" and node_id is not None and isinstance(brief, dict):
            if node_id not in seen:
                seen.add(node_id)
                present.append(node_id)
                current.created.append(node_id)
            briefs[node_id] = brief
            rewards.setdefault(node_id, None)
        elif kind == "node_evaluated" and node_id is not None and isinstance(brief, dict):
            briefs[node_id] = {**briefs.get(node_id, {}), **brief}
            rewards[node_id] = brief.get("reward")
            current.evaluated.append(node_id)
        elif kind == "node_backed_up" and node_id is not None:
            value = float(rewards.get(node_id) or 0.0)
            for ancestor in event.get("path") or []:
                visits[ancestor] = visits.get(ancestor, 0) + 1
                value_sums[ancestor] = value_sums.get(ancestor, 0.0) + value
        elif kind == "decided":
            current.decided = event.get("node")
            current.decision = f"chose {event.get('node') or 'nothing'} by {event.get('strategy')}"
    settle(current)
    return frames


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def tree_at(tree: Tree, frame: Frame) -> Tree:
    """`tree` as it stood at `frame`: the nodes made by then, with the rewards and statistics of then."""
    nodes: dict[NodeId, Node] = {}
    for node_id in [tree.root_id, *frame.present]:
        node = tree.nodes.get(node_id)
        if node is None or node_id in nodes:
            continue
        if node.parent_id is not None and node.parent_id not in nodes:
            continue
        brief = frame.briefs.get(node_id, {})
        nodes[node_id] = node.model_copy(
            update={
                "reward": frame.rewards.get(node_id) if node.parent_id is not None else node.reward,
                "visits": frame.visits.get(node_id, 0),
                "value_sum": frame.value_sums.get(node_id, 0.0),
                "duplicate_of": brief.get("duplicate_of", node.duplicate_of),
            }
        )
    if frame.decided is None:
        return Tree(nodes=nodes, meta=tree.meta, reflections=tree.reflections)
    final = FinalChoice(node=frame.decided, patch=tree.final.patch if tree.final else "")
    return Tree(nodes=nodes, meta=tree.meta, reflections=tree.reflections, final=final, decision=tree.decision)
