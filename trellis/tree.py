"""The data model every algorithm shares: messages, actions, steps, nodes, trees, trajectories.

Trees are pure data. A `Tree` is a flat `dict[NodeId, Node]`; a node id is its parent's id plus the
sample index that produced it (`"0"`, `"0.2"`, `"0.2.0"`), so re-running an expansion after a crash
produces the same ids and a store can upsert instead of duplicating. Everything here round-trips
through JSON; `FORMAT_VERSION` is written with every tree so later versions can read older files.

Format 2 gave the search's own records typed fields (a node's `expansion`, `expansions` and
`backed_up`; an observation's `terminal`, `patch` and `tests`; a tree's `reflections`, `final` and
`decision`); format 1 kept them in the `meta` and `data` dicts, and is read by moving them over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_serializer, model_validator

from trellis.errors import UserError

FORMAT_VERSION = 2
ROOT_ID = "0"

NodeId = str
StateId = str


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_safe(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8.

    A JSON escape such as `"\\ud800"` in model output decodes to a lone surrogate, which no JSON
    writer or SQLite will take; a well-formed surrogate pair is joined into its character.
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _utf8_safe_data(value: Any, depth: int = 0) -> Any:
    """`value` with `utf8_safe` applied to every string in its dicts and lists (the same object when clean)."""
    if isinstance(value, str):
        return utf8_safe(value)
    if depth > 200:
        return value
    if isinstance(value, dict):
        items = [(_utf8_safe_data(k, depth + 1), _utf8_safe_data(v, depth + 1)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(), strict=True)):
            return value
        return dict(items)
    if isinstance(value, list | tuple):
        cleaned = [_utf8_safe_data(item, depth + 1) for item in value]
        if all(a is b for a, b in zip(cleaned, value, strict=True)):
            return value
        return cleaned if isinstance(value, list) else tuple(cleaned)
    return value


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _utf8_safe_strings(cls, data: Any, info: ValidationInfo) -> Any:
        # Text built in Python (model output, tool output) may hold lone surrogates that would make
        # the node unwritable later; JSON input cannot hold them, so it is not walked.
        return data if info.mode == "json" else _utf8_safe_data(data)


class Message(_Data):
    """One chat message."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    name: str | None = None
    """Tool name for `role="tool"` messages."""


class Usage(_Data):
    """Token and time cost of one or more model calls."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens served from the backend's prefix cache (0 where the backend cannot tell)."""
    completion_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            seconds=self.seconds + other.seconds,
            calls=self.calls + other.calls,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Action(_Data):
    """A tool call: the tool's name and its (validated) arguments."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    thought: str = ""
    """The model's reasoning that came with the call, if any."""

    def key(self) -> str:
        """A canonical string of tool and arguments: equal actions have equal keys."""
        return self.tool + json.dumps(self.args, sort_keys=True, separators=(",", ":"), default=str)

    def summary(self, width: int = 60) -> str:
        """A one-line `tool(arg=value, ...)` form for tree views."""
        parts = []
        for name, value in self.args.items():
            text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
            parts.append(f"{name}={text}")
        line = f"{self.tool}({', '.join(parts)})".replace("\n", "\\n")
        return line if len(line) <= width else line[: max(width - 1, 1)] + "…"

    def describe(self, width: int = 80) -> str:
        """What the action did, in words, for prompts that quote it (feedback, lessons, summaries).

        Unlike `summary`, nothing here looks like a call a model could copy as its own next reply.
        """
        args = self.args
        path = args.get("path")
        if self.tool in ("write_file", "create_file") and path:
            text = f"writing {path}"
        elif self.tool in ("replace", "insert") and path:
            text = f"editing {path}"
        elif self.tool == "shell":
            text = f"running `{' '.join(str(args.get('command', '')).split())}`"
        else:
            shown = " ".join(str(v) for v in args.values() if isinstance(v, str | int | float))
            text = f"`{self.tool} {shown}`" if shown else f"`{self.tool}`"
        return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def _ints(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _lessons(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) and {"node", "lesson"} <= set(v) for v in value)


_FORMAT_1: dict[str, Callable[[Any], bool]] = {
    # what each record looked like in format 1; anything else under the same name is left where it is
    "expansion": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "expansions": _ints,
    "backed_up": lambda v: isinstance(v, bool),
    "terminal": lambda v: isinstance(v, str),
    "patch": lambda v: isinstance(v, str),
    "tests": lambda v: isinstance(v, dict) and all(isinstance(s, str) for s in v.values()),
    "reflections": _lessons,
    "final": lambda v: isinstance(v, dict) and set(v) <= {"node", "patch"},
    "decision": lambda v: isinstance(v, dict),
}


def _moved(data: Any, source: str, keys: tuple[str, ...]) -> Any:
    """Format 1 to 2: `keys` move from the `source` dict to fields of their own, where the field is
    not set yet and the value has the shape format 1 gave it; a key of your own that only shares a
    name (another shape, or beside a set field) stays where it is."""
    if not isinstance(data, dict) or not isinstance(data.get(source), dict):
        return data
    old = data[source]
    moving = [k for k in keys if k in old and _FORMAT_1[k](old[k]) and data.get(k) in (None, [], False)]
    if not moving:
        return data
    data = {**data, source: {k: v for k, v in old.items() if k not in moving}}
    for key in moving:
        data[key] = old[key]
    return data


class Observation(_Data):
    """What the world answered to an action."""

    text: str
    """The short textual form shown to the model."""
    is_error: bool = False
    terminal: str | None = None
    """Why the trajectory ends here (`finished`, `rejected`), None while it goes on."""
    patch: str | None = None
    """The changes against the task's start, where the world reports them (a finish's answer)."""
    tests: dict[str, str] | None = None
    """Each check the world ran on this state and its status (`PASSED`, `FAILED`, ...)."""
    progress: dict[str, float] | None = None
    """For a failing check in `tests`, how far this state moved toward passing it, from 0 (no nearer
    than where the task started) to below 1, where the world can tell (what a call returns against
    what it should return): partial credit a value may count. Checks not named made no progress."""
    data: dict[str, Any] = Field(default_factory=dict)
    """The tool's other results, serialised."""

    @model_validator(mode="before")
    @classmethod
    def _from_format_1(cls, data: Any) -> Any:
        return _moved(data, "data", ("terminal", "patch", "tests"))

    @model_serializer(mode="wrap")
    def _progress_only_when_set(self, handler: Any) -> Any:
        # trees written before worlds reported progress read and write back byte for byte
        data = handler(self)
        if self.progress is None and isinstance(data, dict):
            data.pop("progress", None)
        return data


class JudgeVerdict(_Data):
    """A verdict on the observation a step answers: the previous step's (ReSeek's JUDGE action).

    The step that carries it is the reply that judged; an observation judged useless (`keep=False`)
    is replaced by a one-line stub in every later prompt of that branch, and stays in the tree.
    """

    keep: bool
    reason: str = ""
    reward: float = 0.0
    """A reward for this verdict alone, where a graph of your own gives one (`trellis tree node` shows
    it). The search keeps ReSeek's reward on each finished node instead (`meta["judge_reward"]`, by
    judging step): one verdict earns a different reward on each trajectory through it, whose answer
    decides the 0.1 for a right judgement."""
    by_agent: bool = False
    """Given by a judge agent of its own (`JudgeRole`), not written by the reply itself."""

    @model_serializer(mode="wrap")
    def _written_only_when_set(self, handler: Any) -> Any:
        # trees written before judge agents existed read and write back byte for byte
        data = handler(self)
        if not self.by_agent and isinstance(data, dict):
            data.pop("by_agent", None)
        return data


class Step(_Data):
    """One move of an agent: what it was asked, what it said, what it did and what came back."""

    action: Action | None = None
    """None when the completion could not be parsed (see `error`)."""
    observation: Observation | None = None
    completion: str = ""
    """The raw model text that produced the action."""
    prompt: list[Message] | None = None
    """The messages the model saw, when the run keeps them."""
    judge: JudgeVerdict | None = None
    error: str | None = None
    """A format or run error recorded instead of crashing."""


class Node(_Data):
    """One state of the search: the step that led here, its evaluation and its statistics."""

    id: NodeId
    parent_id: NodeId | None = None
    depth: int = 0
    index: int = 0
    """Sample index among its parent's expansions."""
    step: Step | None = None
    state_id: StateId | None = None
    reward: float | None = None
    """The value assigned when the node was evaluated, in [0, 1]."""
    explanation: str = ""
    """The critic's explanation of `reward`."""
    feedback: str = ""
    """The critic's advice for sibling branches (SWE-Search hindsight feedback)."""
    reflection: str = ""
    """A lesson drawn from this node when it is a failed terminal (LATS)."""
    visits: int = 0
    value_sum: float = 0.0
    terminal: bool = False
    terminal_reason: str = ""
    duplicate_of: NodeId | None = None
    """Set when this node reaches the same action or world state as an earlier sibling."""
    count: int = 1
    """How many samples proposed this node's action (merged duplicates included)."""
    usage: Usage = Field(default_factory=Usage)
    expansion: int | None = None
    """The search iteration whose expansion made this node."""
    expansions: list[int] = Field(default_factory=list)
    """The search iterations that expanded this node (a restarted expansion is found here and not repeated)."""
    backed_up: bool = False
    """Whether the node's reward has been backed up its path (once, in the same write as the statistics)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """What agents, worlds and tools of your own record on a node; the search's own records are fields."""

    @model_validator(mode="before")
    @classmethod
    def _from_format_1(cls, data: Any) -> Any:
        return _moved(data, "meta", ("expansion", "expansions", "backed_up"))

    @property
    def value(self) -> float:
        """Mean backed-up value (0 when never visited)."""
        return self.value_sum / self.visits if self.visits else 0.0

    @property
    def action(self) -> Action | None:
        return self.step.action if self.step else None


def child_id(parent_id: NodeId, index: int) -> NodeId:
    """The deterministic id of a parent's `index`-th expansion."""
    if index < 0:
        raise ValueError(f"sample index must be >= 0, got {index}")
    return f"{parent_id}.{index}"


class Trajectory(_Data):
    """The path from the root to one node."""

    nodes: list[Node]

    @property
    def leaf(self) -> Node:
        return self.nodes[-1]

    @property
    def steps(self) -> list[Step]:
        return [node.step for node in self.nodes if node.step is not None]

    @property
    def actions(self) -> list[Action]:
        return [step.action for step in self.steps if step.action is not None]

    def __len__(self) -> int:
        return len(self.nodes)


class Reflection(_Data):
    """A lesson drawn from a failed branch, shown to later expansions."""

    node: NodeId
    lesson: str


class FinalChoice(_Data):
    """The search's answer: the chosen node and its patch."""

    node: NodeId | None = None
    patch: str = ""


RUN_RECORDS = ("reflections", "final", "decision")
"""The tree's typed run-level records, stored beside `meta` (`Tree.records`)."""


class Tree(_Data):
    """A search tree: a flat map of nodes with one root."""

    format_version: int = FORMAT_VERSION
    root_id: NodeId = ROOT_ID
    nodes: dict[NodeId, Node]
    meta: dict[str, Any] = Field(default_factory=dict)
    """Task, config and what a job of your own records about the run."""
    reflections: list[Reflection] = Field(default_factory=list)
    """Lessons from failed branches, in the order they were drawn."""
    final: FinalChoice | None = None
    """The answer, once the search has chosen."""
    decision: dict[str, Any] | None = None
    """How the answer was chosen (the discriminator's decision: strategy, groups, transcript, reason)."""

    _children: dict[NodeId, list[NodeId]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_format_1(cls, data: Any) -> Any:
        return _moved(data, "meta", RUN_RECORDS)

    def model_post_init(self, context: Any) -> None:
        if self.format_version > FORMAT_VERSION:
            raise UserError(
                f"this tree was written by a newer trellis (format {self.format_version}, this one reads "
                f"up to {FORMAT_VERSION}); upgrade trellis to read it"
            )
        self.format_version = FORMAT_VERSION  # read as this version, written as this version
        if self.root_id not in self.nodes:
            raise UserError(f"tree has no root node {self.root_id!r}")
        self._children = {}
        for node in sorted(self.nodes.values(), key=lambda n: (n.depth, n.index)):
            if node.parent_id is not None:
                self._children.setdefault(node.parent_id, []).append(node.id)

    @classmethod
    def new(cls, *, state_id: StateId | None = None, step: Step | None = None, **meta: Any) -> Tree:
        root = Node(id=ROOT_ID, state_id=state_id, step=step)
        return cls(nodes={ROOT_ID: root}, meta=meta)

    def records(self) -> dict[str, Any]:
        """The typed run-level records as JSON data (what a store keeps beside `meta`)."""
        return self.model_dump(mode="json", include=set(RUN_RECORDS))

    # --- structure -------------------------------------------------------------------------

    @property
    def root(self) -> Node:
        return self.nodes[self.root_id]

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __iter__(self) -> Iterator[Node]:  # type: ignore[override]
        return iter(self.nodes.values())

    def get(self, node_id: NodeId) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise UserError(f"no node {node_id!r} in this tree ({len(self.nodes)} nodes)") from None

    def add(self, node: Node) -> Node:
        """Insert a node under an existing parent, or replace the node with the same id."""
        if node.parent_id is None:
            raise ValueError(f"node {node.id!r} has no parent; a tree has exactly one root")
        parent = self.nodes.get(node.parent_id)
        if parent is None:
            raise ValueError(f"parent {node.parent_id!r} of node {node.id!r} is not in the tree")
        if node.depth != parent.depth + 1:
            raise ValueError(f"node {node.id!r} has depth {node.depth}, expected {parent.depth + 1}")
        is_new = node.id not in self.nodes
        self.nodes[node.id] = node
        if is_new:
            siblings = self._children.setdefault(node.parent_id, [])
            siblings.append(node.id)
            siblings.sort(key=lambda i: self.nodes[i].index)
        return node

    def add_child(self, parent_id: NodeId, index: int, step: Step | None = None, **fields: Any) -> Node:
        """Create the `index`-th child of `parent_id` (deterministic id); idempotent on the id."""
        parent = self.get(parent_id)
        node = Node(
            id=child_id(parent_id, index),
            parent_id=parent_id,
            depth=parent.depth + 1,
            index=index,
            step=step,
            **fields,
        )
        return self.add(node)

    def children(self, node_id: NodeId) -> list[Node]:
        return [self.nodes[i] for i in self._children.get(node_id, [])]

    def parent(self, node_id: NodeId) -> Node | None:
        parent_id = self.get(node_id).parent_id
        return self.nodes[parent_id] if parent_id is not None else None

    def ancestors(self, node_id: NodeId) -> list[Node]:
        """Nodes from the root down to and including `node_id`."""
        chain = []
        current: Node | None = self.get(node_id)
        while current is not None:
            chain.append(current)
            current = self.nodes.get(current.parent_id) if current.parent_id is not None else None
        return chain[::-1]

    def path(self, node_id: NodeId) -> Trajectory:
        return Trajectory(nodes=self.ancestors(node_id))

    def descendants(self, node_id: NodeId) -> list[Node]:
        """Every node below `node_id` (not including it), depth-first."""
        out: list[Node] = []
        stack = list(reversed(self._children.get(node_id, [])))
        while stack:
            current = stack.pop()
            out.append(self.nodes[current])
            stack.extend(reversed(self._children.get(current, [])))
        return out

    def leaves(self) -> list[Node]:
        return [node for node in self.nodes.values() if not self._children.get(node.id)]

    def terminals(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.terminal]

    # --- statistics ------------------------------------------------------------------------

    def backpropagate(self, node_id: NodeId, value: float) -> None:
        """Add one visit and `value` to the node and each of its ancestors."""
        for node in self.ancestors(node_id):
            node.visits += 1
            node.value_sum += value

    def best_path(self) -> list[NodeId]:
        """Follow the child with the highest mean value (ties: most visits) from the root."""
        path = [self.root_id]
        while children := [c for c in self.children(path[-1]) if c.duplicate_of is None]:
            best = max(children, key=lambda c: (c.value, c.visits, -c.index))
            if best.visits == 0:
                break
            path.append(best.id)
        return path

    def total_usage(self) -> Usage:
        """Every model call the tree cost: its nodes' and the final choice's (`meta["discriminator_usage"]`)."""
        total = Usage()
        for node in self.nodes.values():
            total = total + node.usage
        final = self.meta.get("discriminator_usage")
        if isinstance(final, dict):
            total = total + Usage.model_validate(final)
        return total

    def check(self) -> None:
        """Raise ValueError when a structural invariant does not hold."""
        roots = [n for n in self.nodes.values() if n.parent_id is None]
        if [r.id for r in roots] != [self.root_id]:
            raise ValueError(f"expected exactly one root {self.root_id!r}, found {[r.id for r in roots]}")
        for node in self.nodes.values():
            if node.parent_id is None:
                if node.depth != 0:
                    raise ValueError(f"root has depth {node.depth}")
                continue
            parent = self.nodes.get(node.parent_id)
            if parent is None:
                raise ValueError(f"node {node.id!r} points at missing parent {node.parent_id!r}")
            if node.depth != parent.depth + 1:
                raise ValueError(f"node {node.id!r}: depth {node.depth} != parent depth + 1")

    # --- serialisation ---------------------------------------------------------------------

    def to_json(self, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> Tree:
        return cls.model_validate_json(text)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tree:
        file = Path(path)
        if not file.exists():
            raise UserError(f"tree file {file} does not exist")
        return cls.from_json(file.read_bytes())

    def to_networkx(self) -> nx.DiGraph:
        """A directed graph (parent -> child) whose node attributes are the node's fields."""
        graph = nx.DiGraph(**{k: v for k, v in self.meta.items() if isinstance(v, str | int | float)})
        for node in self.nodes.values():
            attrs = node.model_dump(exclude={"step"})
            attrs["value"] = node.value
            attrs["action"] = node.action.summary() if node.action else ""
            graph.add_node(node.id, **attrs)
        for node in self.nodes.values():
            if node.parent_id is not None:
                graph.add_edge(node.parent_id, node.id)
        return graph
