"""What the tree browser reads from a run folder: the growing tree, the event log, the prompt a
step's model saw, filters, and the patch of a node's state (the search replayed: `trellis.cli.replay`).

Nothing here draws or writes. A run being written by another process is read through the tree
store's read-only connection (`changes_since`, one short read transaction per poll: no lock is held
between polls) and by reading the event log's complete lines from where the last read stopped.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group
from trellis.agents.prompts import focused_messages, solver_messages
from trellis.envs.code.workspace import HOST_GIT_SUFFIX, GitError, run_git
from trellis.search.config import BudgetConfig
from trellis.search.engine import repair_turns
from trellis.search.run import RunDir

from trellis.errors import UserError
from trellis.render import node_detail
from trellis.store import TreeStore
from trellis.tree import ROOT_ID, Message, Node, NodeId, Tree

# --- the live run ------------------------------------------------------------------------------------


class LiveRun:
    """A run folder read as it grows: call `poll()` now and then; `tree` is None until the root is stored."""

    def __init__(self, path: str | Path) -> None:
        self.folder = RunDir(path)
        self.nodes: dict[NodeId, Node] = {}
        self.meta: dict[str, Any] = {}
        self.records: dict[str, Any] = {}
        """The tree's typed run-level records as stored (reflections, the final choice, the decision)."""
        self.events: list[dict[str, Any]] = []
        self.unreadable_events = 0
        self._store: TreeStore | None = None
        self._seq = 0
        self._offset = 0
        self._tree: Tree | None = None
        self.waiting = ""
        """Why the store could not be opened at the last poll (empty once it is open)."""

    @property
    def path(self) -> Path:
        return self.folder.path

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def poll(self) -> list[NodeId]:
        """Read what was written since the last poll; returns the ids of the nodes that changed (a
        change of the run's metadata alone, such as the final choice, is reported as the root)."""
        changed: list[NodeId] = []
        store = self._open()
        if store is not None:
            nodes, self._seq = store.changes_since(self._seq)
            for node in nodes:
                self.nodes[node.id] = node
                changed.append(node.id)
            meta = store.get_meta("tree", {})
            records = store.get_meta("run", {})
            if isinstance(meta, dict) and isinstance(records, dict) and (meta, records) != (self.meta, self.records):
                self.meta, self.records = meta, records
                if ROOT_ID in self.nodes and ROOT_ID not in changed:
                    changed.append(ROOT_ID)
        self._read_events()
        if changed:
            self._tree = None
        return changed

    def _open(self) -> TreeStore | None:
        if self._store is None:
            if not self.folder.tree_db.is_file() or self.folder.tree_db.stat().st_size == 0:
                return None  # the run has not stored its root yet
            try:
                self._store = TreeStore(self.folder.tree_db, readonly=True)
            except UserError as exc:  # the writer may be creating the schema right now: look again later
                self.waiting = str(exc)
                return None
            self.waiting = ""
        return self._store

    def _read_events(self) -> None:
        try:
            with self.folder.events.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return  # no complete line yet: the writer is in the middle of one
        self._offset += end + 1
        for line in data[: end + 1].splitlines():
            try:
                event = json.loads(line)
            except ValueError:  # a line cut short by a kill, then appended to by a resumed run
                self.unreadable_events += 1
                continue
            if isinstance(event, dict):
                self.events.append(event)

    @property
    def tree(self) -> Tree | None:
        if self._tree is None and ROOT_ID in self.nodes:
            self._tree = Tree(nodes=dict(self.nodes), meta=self.meta, **self.records)
        return self._tree

    @property
    def decided(self) -> bool:
        """Whether the run has chosen its final answer (the search is over)."""
        return bool(self.records.get("final")) or "final" in self.meta  # format 1 kept it in the meta


# --- the prompt a step's model saw ---------------------------------------------------------------------


@dataclass
class PromptView:
    """The messages of one step's model call, where they come from, and what is not known of them."""

    messages: list[Message]
    source: str
    """`stored` (kept with the step), `opening` (the run's focused first prompt), `focused repair`
    (the opening's conversation continued) or `rebuilt`."""
    notes: list[str] = field(default_factory=list)


def _run_tools(names: Sequence[str]) -> tuple[list[Any], list[str]]:
    """The specs of a run's tools, by their names (a QA world's where it could answer, else the code
    world's), and the names neither knows."""
    if "answer" in names:
        from trellis.envs.qa.world import QA_TOOLS, REVERT

        specs = {tool.name: tool for tool in [*QA_TOOLS, REVERT]}
    else:
        from trellis.envs.code.tools import CODE_TOOLS

        specs = {name: spec for name, (spec, _) in CODE_TOOLS.items()}
    return [specs[name] for name in names if name in specs], [name for name in names if name not in specs]


def _messages(value: object) -> list[Message]:
    if not isinstance(value, list):
        return []
    return [Message.model_validate(item) for item in value if isinstance(item, dict)]


def prompt_for(tree: Tree, node: Node) -> PromptView | None:
    """The prompt of the model call that produced `node`'s step (None for the root).

    A stored prompt is shown as stored. Otherwise it is rebuilt from the path with the run's tools in
    the world's order, its action format, judge setting and default file, and the notes
    (`meta["hints"]`) given at that expansion. Retry turns (`meta["retry_turns"]`: the reply that
    could not be used and the error shown, before the stored completion) follow the prompt.
    """
    step = node.step
    if step is None or node.parent_id is None:
        return None
    retries = _messages(node.meta.get("retry_turns"))
    notes: list[str] = []
    if step.prompt is not None:
        messages = list(step.prompt)
        if retries and messages[-len(retries) :] != retries:
            messages += retries
        return PromptView(messages, "stored", notes)
    opening = tree.meta.get("opening")
    if node.meta.get("opening") and isinstance(opening, dict):
        return PromptView([Message(role="user", content=str(opening.get("prompt", "")))], "opening", notes)
    config = tree.meta.get("config") or {}
    if node.meta.get("repair") and isinstance(opening, dict) and node.parent_id is not None:
        budget = BudgetConfig(crash_free=bool((config.get("budget") or {}).get("crash_free", True)))
        turns = repair_turns(tree, tree.get(node.parent_id), budget)
        return PromptView(focused_messages(str(opening.get("prompt", "")), turns), "focused repair", notes)
    solver = config.get("solver") or {}
    names = [str(name) for name in tree.meta.get("tools", [])]
    if not names:
        from trellis.envs.code.tools import CODE_TOOLS

        names = list(CODE_TOOLS)
        notes.append("the run did not record its tools; every code tool is listed")
    tools, unknown = _run_tools(names)
    if unknown:
        notes.append(f"tools not described here (left out of the rebuilt prompt): {', '.join(unknown)}")
    hints = node.meta.get("hints")
    if not isinstance(hints, list):
        hints = []
        if config.get("feedback", True) or config.get("reflection", True):
            notes.append(
                "the notes given at this expansion (critic feedback, lessons) were not recorded in this run; "
                "the model may also have seen 'Notes from other attempts' after the last observation"
            )
    default_path = node.meta.get("default_path", tree.meta.get("default_path"))
    action_format = "json" if solver.get("action_format") == "json" else "markdown"
    if default_path is None and action_format == "markdown" and "default_path" not in tree.meta:
        notes.append("the run did not record its default file: the format help's example path may differ")
    if "retry_turns" not in node.meta and int(solver.get("retries", 1) or 0) > 0:
        notes.append(
            "retry turns were not recorded in this run: when a first reply could not be used, the model "
            "also saw it and the error before this completion"
        )
    messages = solver_messages(
        str(tree.meta.get("task", "")),
        tools,
        tree.path(node.parent_id),
        [str(h) for h in hints],
        action_format=action_format,
        default_path=str(default_path) if default_path else None,
        judge=bool(solver.get("judge")),
        system=str(tree.meta["system_prompt"]) if tree.meta.get("system_prompt") else None,
    )
    return PromptView([*messages, *retries], "rebuilt", notes)


def node_view(tree: Tree, node: Node) -> Group:
    """Everything about one node as `trellis tree node` and the browser's node pane show it: the
    prompt as the model saw it (with where it comes from and what may differ), and the selector's
    score with its parts."""
    view = prompt_for(tree, node)
    return node_detail(
        tree,
        node.id,
        None if view is None else [m.model_dump() for m in view.messages],
        prompt_title="prompt" if view is None else f"prompt ({view.source})",
        prompt_notes=[] if view is None else view.notes,
        selector=selector_terms(tree, node),
    )


# --- the selector's view of a node ------------------------------------------------------------------


def selector_terms(tree: Tree, node: Node) -> list[tuple[str, str]]:
    """The run's selector score of `node` under its parent, with its parts, on the tree as it is now."""
    from pydantic import ValidationError
    from trellis.search.config import SearchConfig
    from trellis.search.selectors import Stats, make_selector

    parent = tree.parent(node.id)
    if parent is None:
        return []
    try:
        config = SearchConfig.model_validate(tree.meta.get("config") or {}).selector
        selector = make_selector(config)
    except (ValidationError, UserError) as exc:
        return [("selector", f"not available here ({str(exc).splitlines()[0]})")]
    stats = Stats(tree, {})
    n, big_n = node.visits, max(parent.visits, 1)
    terms: list[tuple[str, str]] = [("selector", config.name)]
    if config.name == "hgm":
        clade = [m for m in [node, *tree.descendants(node.id)] if m.reward is not None]
        wins = sum(1 for m in clade if (m.reward or 0.0) >= config.success_threshold)
        terms.append(("clade", f"{wins} successes, {len(clade) - wins} failures"))
        terms.append(
            ("sampled from", f"Beta({1 + wins}, {1 + len(clade) - wins}), mean {(1 + wins) / (2 + len(clade)):.3f}")
        )
        return terms
    terms.append(("Q", f"{node.value:.3f}"))
    if config.name == "puct":
        siblings = tree.children(parent.id)
        prior = max(node.count, 1) / (sum(max(s.count, 1) for s in siblings) or 1)
        terms.append(("prior P", f"{prior:.3f}"))
        terms.append(("exploration", f"{config.exploration * prior * math.sqrt(big_n) / (1 + n):.3f}"))
    elif config.name in ("uct", "depth_uct"):
        explore = config.exploration * math.sqrt(math.log(big_n) / n) if n else math.inf
        terms.append(("exploration", f"{explore:.3f}"))
        if config.name == "depth_uct":
            d = node.depth
            bonus = config.depth_alpha * math.exp(-config.depth_beta * (d - 1)) - config.depth_gamma * math.sqrt(d)
            terms.append(("depth term", f"{bonus:+.3f}"))
    score = selector.score(parent, node, stats, random.Random(0))
    terms.append(("score", "unvisited: first" if math.isinf(score) else f"{score:.3f}"))
    return terms


# --- filters -----------------------------------------------------------------------------------------

_BOUND = re.compile(r"(value|reward|visits|depth|count)(>=|<=|>|<|=)(-?[0-9.]+)$")
_RANGE = re.compile(r"(value|reward|visits|depth|count):(-?[0-9.]*)\.\.(-?[0-9.]*)$")
_FIELD = re.compile(r"(value|reward|visits|depth|count)[<>=:]")
_FLAGS = ("best", "chosen", "terminal", "duplicate", "merged", "dropped", "error")


def _number(text: str, term: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{term!r}: {text!r} is not a number") from None


@dataclass(frozen=True)
class NodeFilter:
    """Which nodes to show. Written as words, all of which must hold:

    `tool:write_file`, `reason:finished` (terminal reason; `reason:open` for none), `value>=0.5`,
    `reward<0.3`, `value:0.2..0.8` (also visits, depth, count), `is:best|chosen|terminal|duplicate|
    merged|dropped|error`, and any other word: text in the node's id, action, completion or observation.
    """

    tools: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    bounds: tuple[tuple[str, str, float], ...] = ()
    flags: tuple[str, ...] = ()
    words: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> NodeFilter:
        tools: list[str] = []
        reasons: list[str] = []
        bounds: list[tuple[str, str, float]] = []
        flags: list[str] = []
        words: list[str] = []
        for term in text.split():
            lowered = term.lower()
            if bound := _BOUND.match(lowered):
                bounds.append((bound[1], bound[2], _number(bound[3], term)))
            elif span := _RANGE.match(lowered):
                if span[2]:
                    bounds.append((span[1], ">=", _number(span[2], term)))
                if span[3]:
                    bounds.append((span[1], "<=", _number(span[3], term)))
            elif _FIELD.match(lowered):
                raise UserError(f"{term!r}: write a bound as value>=0.5, reward<0.3 or value:0.2..0.8")
            elif lowered.startswith("tool:"):
                tools.append(term[5:])
            elif lowered.startswith("reason:"):
                reasons.append(lowered[7:].replace("-", " ").replace("_", " "))
            elif lowered.startswith("is:"):
                if lowered[3:] not in _FLAGS:
                    raise UserError(f"{term!r}: use is:{', is:'.join(_FLAGS)}")
                flags.append(lowered[3:])
            else:
                words.append(lowered)
        return cls(tuple(tools), tuple(reasons), tuple(bounds), tuple(flags), tuple(words))

    def __bool__(self) -> bool:
        return bool(self.tools or self.reasons or self.bounds or self.flags or self.words)

    def matches(self, tree: Tree, node: Node, best: set[NodeId] | None = None) -> bool:
        action = node.action
        if self.tools and (action is None or action.tool not in self.tools):
            return False
        if self.reasons:
            reason = node.terminal_reason.lower() if node.terminal else "open"
            if not any(reason == r or reason.startswith(r) for r in self.reasons):
                return False
        for name, op, number in self.bounds:
            value = {
                "value": node.value if node.visits else None,
                "reward": node.reward,
                "visits": float(node.visits),
                "depth": float(node.depth),
                "count": float(node.count),
            }[name]
            if value is None or not _compare(value, op, number):
                return False
        for flag in self.flags:
            if not _flag(tree, node, flag, best):
                return False
        if self.words:
            step = node.step
            haystack = " ".join(
                [
                    node.id,
                    action.summary(200) if action else "",
                    step.completion if step else "",
                    step.observation.text if step and step.observation else "",
                    step.error or "" if step else "",
                    node.explanation,
                ]
            ).lower()
            if not all(word in haystack for word in self.words):
                return False
        return True


def _compare(value: float, op: str, number: float) -> bool:
    if op == ">=":
        return value >= number
    if op == "<=":
        return value <= number
    if op == ">":
        return value > number
    if op == "<":
        return value < number
    return math.isclose(value, number, abs_tol=1e-9)


def _flag(tree: Tree, node: Node, flag: str, best: set[NodeId] | None) -> bool:
    step = node.step
    if flag == "best":
        return node.id in (best if best is not None else set(tree.best_path()))
    if flag == "chosen":
        return tree.final is not None and node.id == tree.final.node
    if flag == "terminal":
        return node.terminal
    if flag == "duplicate":
        return node.duplicate_of is not None
    if flag == "merged":
        return node.count > 1
    if flag == "dropped":
        return step is not None and step.judge is not None and not step.judge.keep
    return step is not None and (step.error is not None or (step.observation is not None and step.observation.is_error))


# --- the patch of a node's state ----------------------------------------------------------------------

_STATE = re.compile(r"[0-9a-f]{4,64}")


class Patches:
    """Patches of node states, read from the run's worktree git (`RUN/worktrees/<w>.trellis-git`).

    Read-only, through the code world's host-side git (no configuration, hooks, filters or textconv
    are read; nothing in a worktree folder is looked at); a git directory that is a link or belongs
    to another user is not used.
    """

    def __init__(self, run_path: str | Path) -> None:
        self.run_path = Path(run_path)
        self.git_dir: Path | None = None
        self.problem = ""
        self._base: str | None = None
        self._cache: dict[str, str] = {}
        self._states: Path | None = None
        self._imported: set[str] = set()
        folder = self.run_path / "worktrees"
        found = sorted(p for p in folder.glob(f"*{HOST_GIT_SUFFIX}")) if folder.is_dir() else []
        if not found and (self.run_path / "states" / "BASE").is_file():
            self._from_packs(self.run_path / "states")
            return
        for git_dir in found:
            if git_dir.is_symlink() or not git_dir.is_dir() or git_dir.stat().st_uid != os.geteuid():
                self.problem = f"{git_dir} is a link or belongs to another user; trellis does not run git on it"
                continue
            self.git_dir = git_dir
            break
        if self.git_dir is None and not self.problem:
            self.problem = f"this run has no worktrees ({folder} holds no git directory), so states have no patch here"

    def _from_packs(self, states: Path) -> None:
        """A run made in containers: its states are packs (`states/*.pack`, the base tree's in
        `base.pack`), stored into a git directory of the run's own (`states.trellis-git`) as they come."""
        git_dir = self.run_path / f"states{HOST_GIT_SUFFIX}"
        if git_dir.is_symlink() or (git_dir.exists() and git_dir.stat().st_uid != os.geteuid()):
            self.problem = f"{git_dir} is a link or belongs to another user; trellis does not run git on it"
            return
        try:
            if not git_dir.is_dir():
                run_git(None, None, "init", "-q", "--bare", "--template=", str(git_dir))
            self.git_dir = git_dir
            self._states = states
            base = (states / "BASE").read_text().strip()
            if not _STATE.fullmatch(base):
                raise UserError(f"{states / 'BASE'} holds no tree id")
            self._base = base
            self._import_packs()
        except (GitError, OSError) as exc:
            self.git_dir, self.problem = None, f"cannot read the states of {states}: {exc}"

    def _import_packs(self) -> None:
        """Store the packs not stored yet (git checks each object; a pack is data, nothing in it runs)."""
        if self.git_dir is None or self._states is None:
            return
        done = self.git_dir / "trellis-imported"
        if not self._imported and done.is_file():
            self._imported = set(done.read_text().split())
        # the base's objects first: a state's pack holds only what the base lacks
        for pack in sorted(self._states.glob("*.pack"), key=lambda p: (p.name != "base.pack", p.name)):
            if pack.name not in self._imported:
                try:
                    run_git(self.git_dir, None, "index-pack", "--stdin", "--strict", stdin=pack.read_bytes())
                except GitError as exc:  # a damaged pack costs the patches of its state, not every one
                    self.problem = f"{pack} could not be read ({exc})"
                    self._imported.add(pack.name)
                    continue
                self._imported.add(pack.name)
                with done.open("a") as listed:
                    listed.write(pack.name + "\n")

    def base(self) -> str:
        if self._base is None:
            if self.git_dir is None:
                raise UserError(self.problem)
            text = run_git(self.git_dir, None, "rev-parse", "--verify", "--end-of-options", "HEAD^{commit}")
            self._base = text.decode().strip()
        return self._base

    def diff(self, old: str | None, new: str) -> str:
        """The patch from `old` (default: the run's base commit) to state `new`."""
        key = f"{old}..{new}"
        if key not in self._cache:
            for state in (old, new):
                if state is not None and not _STATE.fullmatch(state):
                    raise UserError(f"{state!r} is not a state id")
            if self.git_dir is None:
                raise UserError(self.problem)
            args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", old or self.base(), new, "--"]
            try:
                self._import_packs()  # a live run's newest states
                output = run_git(self.git_dir, None, *args)
            except GitError as exc:
                raise UserError(f"cannot read the patch of state {new[:12]}: {exc}") from exc
            self._cache[key] = output.decode("utf-8", "replace")
        return self._cache[key]

    def patch(self, node: Node) -> tuple[str, str]:
        """(the patch of `node`'s state against the base, where it comes from)."""
        submitted = node.step.observation.patch if node.step and node.step.observation else None
        if node.state_id is None:
            return "", "this node has no state (its action was never run)"
        if self.git_dir is None:
            if isinstance(submitted, str):
                return submitted, f"the patch submitted at this node ({self.problem})"
            return "", self.problem
        return self.diff(None, node.state_id), f"state {node.state_id[:12]} against the base commit"
