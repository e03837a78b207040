"""The search's steps as public functions over a `SearchContext`: select, expand, evaluate,
backpropagate, discriminate. `build_search_graph` wires them into a LangGraph graph; other graphs
can use them as they are.

Every step is idempotent, so a run killed at any point and resumed repeats at most the step it was
in without losing or duplicating nodes: node ids are deterministic, a node remembers the
iterations that expanded it, evaluation skips nodes that have a reward, and backpropagation marks
each node it has backed up in the same transaction that writes the new statistics.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from trellis.agents.discriminator import Candidate, Decision
from trellis.agents.roles import DiscriminatorRole, JudgeRole, ReflectorRole, SolverRole, ValueRole
from trellis.agents.solver import Proposal
from trellis.search.config import BudgetConfig, SearchConfig
from trellis.search.selectors import expansions, is_open, repairable, select_nodes

from trellis.errors import ContextLengthError, ModelError
from trellis.store import TreeStore
from trellis.tree import (
    FinalChoice,
    JudgeVerdict,
    Node,
    NodeId,
    Observation,
    Reflection,
    StateId,
    Step,
    Tree,
    Usage,
)
from trellis.world import FINISH_HINT, Behaviour, JudgeChecked, Opening, Probed, World

EventSink = Callable[[dict[str, Any]], None]


class WorldPool:
    """Worlds for parallel expansion: one per concurrent task, handed out and taken back."""

    def __init__(self, worlds: Sequence[World]) -> None:
        if not worlds:
            raise ValueError("a world pool needs at least one world")
        self.worlds = list(worlds)
        self._free: asyncio.Queue[World] | None = None

    @property
    def first(self) -> World:
        return self.worlds[0]

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[World]:
        if self._free is None:
            self._free = asyncio.Queue()
            for world in self.worlds:
                self._free.put_nowait(world)
        world = await self._free.get()
        try:
            yield world
        finally:
            self._free.put_nowait(world)


@dataclass
class SearchContext:
    """What the steps work on. The tree is the in-memory view of what the store holds.

    The agents are roles (`trellis.agents.roles`): the shipped ones, or any object of your own with
    the same call."""

    task: str
    tree: Tree
    worlds: WorldPool
    solver: SolverRole
    critic: ValueRole
    discriminator: DiscriminatorRole
    config: SearchConfig
    reflector: ReflectorRole | None = None
    judge: JudgeRole | None = None
    """A judge agent of its own: the verdict on a node's last observation for the children of its
    expansions whose replies carry none (see `SearchConfig.judge_agent`)."""
    opening: Opening | None = None
    """A focused prompt for the root's expansions (see `Opening`); None: the agent's prompt throughout."""
    store: TreeStore | None = None
    emit: EventSink = field(default=lambda event: None)
    started: float = field(default_factory=time.monotonic)
    states: dict[StateId, NodeId] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Nodes not yet evaluated are left to `mark_duplicates`, exactly as in a run never stopped.
        for node in sorted(self.tree, key=lambda n: (n.depth, n.id)):
            settled = node.parent_id is None or node.reward is not None
            if node.state_id and node.duplicate_of is None and settled:
                self.states.setdefault(node.state_id, node.id)

    def seed(self, *parts: object) -> int:
        """A stable seed for one model call, derived from the run's seed and what the call is for."""
        key = ":".join(str(p) for p in (self.config.seed, *parts))
        return zlib.crc32(key.encode()) & 0x7FFFFFFF

    def save(self, nodes: Sequence[Node], *, meta: bool = False) -> None:
        """Write `nodes` (and with `meta` the tree's metadata) in one transaction, with the search
        time spent so far (`elapsed_seconds`, which a resumed run's time budget continues from)."""
        if self.store is not None:
            extra: dict[str, Any] = {"elapsed_seconds": time.monotonic() - self.started}
            if meta:
                extra["tree"] = self.tree.meta
                extra["run"] = self.tree.records()
            self.store.put_many(nodes, meta=extra)

    def event(self, kind: str, **data: Any) -> None:
        self.emit({"event": kind, "time": time.time(), **data})


# --- start -------------------------------------------------------------------------------------


async def initialise(ctx: SearchContext) -> Node:
    """Reset the world to the task and record the root's state (no-op when the root has one)."""
    root = ctx.tree.root
    if root.state_id is None:
        await ctx.worlds.first.reset()
        root.state_id = await ctx.worlds.first.snapshot()
        ctx.states.setdefault(root.state_id, root.id)
        ctx.save([root], meta=True)
        ctx.event("node_created", node=_brief(root))
    return root


# --- select ------------------------------------------------------------------------------------


def finished_nodes(tree: Tree) -> list[Node]:
    return [n for n in tree if n.terminal and n.terminal_reason == "finished" and n.duplicate_of is None]


def stop_reason(ctx: SearchContext, iteration: int) -> str | None:
    """Why the search should stop now, or None."""
    budget = ctx.config.budget
    tree = ctx.tree
    finished = finished_nodes(tree)
    # a probed answer waits for agreement however it was valued: its value cannot tell it from a
    # wrong answer that passes the same examples
    if any((n.reward or 0.0) >= budget.reward_threshold and "behaviour" not in n.meta for n in finished):
        return "a finished candidate reached the reward threshold"
    checked = [n for n in finished if n.meta.get("hard") == 1.0 and _checked(n) and not repairable(n, budget)]
    if budget.stop_when_checked and checked:
        alike = _alike(tree, checked)
        if alike is None or budget.agreement == 1:
            return "a finished candidate passes every visible check"
        if alike >= budget.agreement:
            return f"{alike} distinct finished candidates pass every visible check and behave alike"
    # as with the threshold, probed answers wait for agreement (or the budget) however many there are
    waiting = budget.stop_when_checked and budget.agreement > 1
    distinct = {n.state_id for n in finished if not (waiting and "behaviour" in n.meta)}
    if len(distinct) >= budget.enough_finished:
        return f"{len(distinct)} distinct finished candidates"
    if len(tree) >= budget.max_nodes:
        return f"node budget ({budget.max_nodes}) spent"
    if iteration >= budget.max_iterations:
        return f"iteration budget ({budget.max_iterations}) spent"
    if tokens_spent(ctx):
        return f"token budget ({budget.max_tokens}) spent"
    if budget.max_seconds is not None and time.monotonic() - ctx.started >= budget.max_seconds:
        return f"time budget ({budget.max_seconds:g} s) spent"
    if not any(is_open(n, budget, patient=True) for n in tree):
        return "no node left to expand"
    return None


def _alike(tree: Tree, checked: list[Node]) -> int | None:
    """The most distinct answers from independent lineages (`lineage`) among `checked` that behave
    alike on the world's probes; None when some have no behaviour recorded (the world has no probes
    for them)."""
    if any(n.meta.get("behaviour") is None for n in checked):
        return None
    groups: dict[str, list[Node]] = {}
    for node in checked:
        groups.setdefault(str(node.meta["behaviour"]), []).append(node)
    return max(
        min(len({n.state_id for n in group}), len({lineage(tree, n) for n in group})) for group in groups.values()
    )


def lineage(tree: Tree, node: Node) -> str:
    """The independent sample `node` descends from: its first ancestor (or itself) whose files differ
    from the start's. An answer and its repairs share one; agreement between them is no evidence."""
    path = tree.ancestors(node.id)
    start = path[0].state_id
    # the first step that changed anything: identical first looks (`view_file`) merge into one child
    return next((n.id for n in path[1:] if n.state_id != start), node.id)


def _checked(node: Node) -> bool:
    """Whether the world ran visible checks (tests) at this finished node."""
    return bool(node.step and node.step.observation and node.step.observation.tests)


def select(ctx: SearchContext, iteration: int) -> list[NodeId]:
    rng = random.Random(ctx.seed("select", iteration))
    chosen = select_nodes(
        ctx.tree,
        ctx.config.selector,
        ctx.config.budget,
        rng,
        k=ctx.config.parallel,
        virtual_loss=ctx.config.virtual_loss,
        by_yield=ctx.config.allocate_by_yield,
    )
    ctx.event("selected", iteration=iteration, nodes=chosen)
    return chosen


# --- expand ------------------------------------------------------------------------------------


def hints_for(ctx: SearchContext, node: Node) -> list[str]:
    """What the solver is told at `node` besides the trajectory, at most `max_hints` notes.

    The critic's advice on the node's own step (self-refine), feedback from the node's evaluated
    children (hindsight: a node expanded again learns what its first children ran into), then from its
    siblings; and lessons drawn from failed branches (reflections), which always get room: up to half
    the notes, at least one.
    """
    config = ctx.config
    feedback: list[str] = []
    if config.feedback:
        # the critic's advice on this node's own step (self-refine); a restatement of what its step ran
        # into is left out, since the node's last observation already shows it
        own = node.feedback
        if own and own != _failure(node, node.meta.get("hard")):
            feedback.append(own)

        parent = ctx.tree.parent(node.id)
        children = sorted(ctx.tree.children(node.id), key=lambda c: ((c.reward or 0.0), c.id))
        siblings = sorted(ctx.tree.children(parent.id) if parent else [], key=lambda s: (-(s.reward or 0.0), s.id))
        # what the children and siblings ran into is news here
        for source in (children, [s for s in siblings if s.id != node.id]):
            for other in source:
                if other.feedback and other.feedback not in feedback:
                    feedback.append(other.feedback)
    if repairable(node, config.budget):  # what is left to fix, whatever else is switched off
        feedback.insert(0, crash_note(node))
    lessons: list[str] = []
    if config.reflection:
        for entry in reversed(ctx.tree.reflections):
            if entry.lesson not in lessons and entry.lesson not in feedback:
                lessons.append(entry.lesson)
    room = config.max_hints
    reserved = min(len(lessons), max(1, room // 2)) if room else 0
    chosen = feedback[: room - reserved]
    return chosen + lessons[: room - len(chosen)]


def _group(proposals: Sequence[Proposal]) -> list[tuple[Proposal, int, Usage]]:
    """Identical actions merge into one entry with a count; unusable samples merge into one too."""
    groups: dict[str, list[Any]] = {}
    for proposal in proposals:
        key = proposal.action.key() if proposal.action else "<format error>"
        key += f"|judge={proposal.judge}"  # the same action after another verdict sees another context
        if key in groups:
            groups[key][1] += 1
            groups[key][2] = groups[key][2] + proposal.usage
        else:
            groups[key] = [proposal, 1, proposal.usage]
    return [(p, count, usage) for p, count, usage in groups.values()]


def default_path(world: World) -> str | None:
    """The file a world's code blocks go to when the model names none (a code task's solution.py)."""
    path = getattr(world, "default_path", None)
    return path if isinstance(path, str) else None


def system_prompt(world: World) -> str | None:
    """A world's own role line for the solver (a QA world's researcher), None for the default."""
    text = getattr(world, "system_prompt", None)
    return text if isinstance(text, str) and text.strip() else None


def tokens_spent(ctx: SearchContext) -> bool:
    """Whether the token budget leaves no room for another expansion.

    Tokens are projected: an expansion is started only while at least half of what an expansion
    (with its evaluations) has cost on average is left, so a search ends near its budget, on average
    neither short of it nor past it, and never past it by more than the expansion under way; the
    first expansion always runs.
    """
    budget = ctx.config.budget
    if budget.max_tokens is None:
        return False
    used = ctx.tree.total_usage().total_tokens
    done = sum(expansions(n) for n in ctx.tree)
    return used + (used / done / 2 if done else 0) > budget.max_tokens


def budget_spent(ctx: SearchContext) -> bool:
    """Whether the token or time budget leaves no room for another expansion."""
    budget = ctx.config.budget
    return tokens_spent(ctx) or (
        budget.max_seconds is not None and time.monotonic() - ctx.started >= budget.max_seconds
    )


async def expand(ctx: SearchContext, node_id: NodeId, iteration: int) -> list[NodeId]:
    """Sample the solver at `node_id`, act out each distinct action in a world, add the children.

    A model call that fails (after the solver's own retries) leaves the node as it was, open for a
    later iteration; after `max_model_errors` such failures the node counts as expanded.
    """
    tree = ctx.tree
    node = tree.get(node_id)
    done = node.expansions
    if iteration in done:  # this expansion already happened before a restart
        return [c.id for c in tree.children(node_id) if c.expansion == iteration]
    if budget_spent(ctx):
        return []
    samples = ctx.config.samples
    if node.parent_id is None and ctx.config.root_samples is not None:
        samples = ctx.config.root_samples
    base = expansions(node) * (samples + 1)
    async with ctx.worlds.acquire() as world:
        turns = focused_turns(ctx, node)
        opening = ctx.opening if node.parent_id is None or turns else None
        hints = [] if opening is not None else hints_for(ctx, node)
        try:
            if opening is not None:
                proposals = await ctx.solver.open(
                    opening,
                    world.tools,
                    n=samples,
                    seed=ctx.seed("solve", node_id, len(done)),
                    # a repair's greedy reply mostly repeats the code that just failed: repairs are sampled
                    greedy=None if not done and not turns else False,
                    **({"turns": turns} if turns else {}),
                )
            else:
                proposals = await ctx.solver(
                    ctx.task,
                    world.tools,
                    tree.path(node_id),
                    n=samples,
                    seed=ctx.seed("solve", node_id, len(done)),
                    hints=hints,
                    avoid=[node.action.key()] if node.action else [],
                    default_path=default_path(world),
                    greedy=None if not done else False,
                    system=system_prompt(world),
                )
            unjudged = any(p.judge is None for p in proposals)
            if ctx.judge is not None and node.parent_id is not None and opening is None and unjudged:
                if "judge_verdict" not in node.meta:  # one verdict per observation, kept on its node
                    judge_seed = ctx.seed("judge", node_id)
                    verdict, judged = await ctx.judge(ctx.task, tree.path(node_id), seed=judge_seed)
                    node.usage = node.usage + judged
                    node.meta["judge_verdict"] = verdict
                verdict = node.meta["judge_verdict"]
                if verdict is not None:
                    for proposal in proposals:
                        if proposal.judge is None:
                            proposal.judge = verdict
                            proposal.judged_by_agent = True
        except ModelError as exc:
            errors = [*node.meta.get("model_errors", []), f"iteration {iteration}: {exc}"[:500]]
            node.meta["model_errors"] = errors
            if len(errors) >= ctx.config.max_model_errors or isinstance(exc, ContextLengthError):
                node.expansions = [*done, iteration]
            ctx.save([node])
            ctx.event("model_error", node=node_id, iteration=iteration, error=str(exc)[:500])
            return []
        created: list[Node] = []
        touched: list[Node] = []
        for position, (proposal, count, usage) in enumerate(_group(proposals)):
            index = base + position
            if proposal.action is None:
                created.append(
                    tree.add_child(
                        node_id,
                        index,
                        Step(completion=proposal.completion, error=proposal.error, prompt=proposal.prompt),
                        terminal=True,
                        terminal_reason="format error",
                        reward=0.0,
                        count=count,
                        usage=usage,
                        explanation="the model's output could not be parsed into an action",
                        expansion=iteration,
                        meta=_child_meta(opening is not None, bool(turns), hints, proposal),
                    )
                )
                continue
            await world.restore(node.state_id or "")
            observation = await world.step(proposal.action)
            state = await world.snapshot()
            if not observation.terminal and ctx.config.finish_when_checked and _completes(world, observation):
                # a complete answer: finished, with its patch, as a `finish` step would record it
                patch = await world.patch(state)
                text = "\n".join(line for line in observation.text.splitlines() if line.strip() != FINISH_HINT)
                observation = observation.model_copy(update={"terminal": "finished", "patch": patch, "text": text})
            step = Step(
                action=proposal.action,
                observation=observation,
                completion=proposal.completion,
                prompt=proposal.prompt,
                judge=None
                if proposal.judge is None
                else JudgeVerdict(keep=proposal.judge, by_agent=proposal.judged_by_agent),
            )
            # Different edits that produce the same files are one state: count them on the first.
            same = next((c for c in created if c.state_id == state and state != node.state_id), None)
            if same is not None:
                same.count += count
                same.usage = same.usage + usage
                continue
            terminal = observation.terminal
            # Whether the state duplicates another branch is settled in `evaluate`, in id order,
            # so it does not depend on which of two parallel expansions finished first.
            child = tree.add_child(
                node_id,
                index,
                step,
                state_id=state,
                count=count,
                usage=usage,
                terminal=bool(terminal),
                terminal_reason=str(terminal or ""),
                expansion=iteration,
                meta=_child_meta(opening is not None, bool(turns), hints, proposal),
            )
            created.append(child)
    node.expansions = [*done, iteration]
    touched.append(node)
    ctx.save([*created, *touched])
    for child in created:
        ctx.event("node_created", node=_brief(child))
    return [c.id for c in created]


def _completes(world: World, observation: Observation) -> bool:
    """Whether every check ran after a step passes (its hard score is 1), in a world whose checks are
    the task's own."""
    return (
        bool(getattr(world, "checks_complete", False))
        and not observation.is_error
        and bool(observation.tests)
        and _passing(observation.tests or {}) == len(observation.tests or {})
    )


def focused_turns(ctx: SearchContext, node: Node) -> list[tuple[str, str]]:
    """The focused repair conversation for expanding `node` (see `SearchConfig.focused_repair`), or
    empty where the agent's prompt is used (see `repair_turns`)."""
    if ctx.opening is None or not ctx.config.focused_repair or node.parent_id is None:
        return []
    return repair_turns(ctx.tree, node, ctx.config.budget)


def repair_turns(tree: Tree, node: Node, budget: BudgetConfig) -> list[tuple[str, str]]:
    """Each focused reply on the path to `node` with what running it showed, the conversation a
    repair of `node` continues; empty where the agent's prompt is used (a step whose checks passed or
    did not run, a path with an agent step on it). A finished answer that crashed on probe inputs
    (`BudgetConfig.crash_free`) is repaired with its crashes added to what its run showed."""
    hard = node.meta.get("hard")
    if not repairable(node, budget) and (node.terminal or hard is None or hard >= 1.0):
        return []
    turns: list[tuple[str, str]] = []
    for step_node in tree.ancestors(node.id)[1:]:
        step = step_node.step
        focused = step_node.meta.get("opening") or step_node.meta.get("repair")
        if not focused or step is None or step.action is None or step.observation is None:
            return []
        turns.append((step.completion or "", step.observation.text))
        if repairable(step_node, budget):
            # the examples pass: what is left to fix is the crash
            turns[-1] = (turns[-1][0], f"{turns[-1][1]}\n{crash_note(step_node)}")
    return turns


def crash_note(node: Node) -> str:
    """What a finished answer's crashes on probe inputs tell the model that repairs it."""
    crashes = [str(c) for c in node.meta.get("crashes", [])]
    lines = ["It passes the examples, but it is not complete: it fails on the smallest inputs of their kind:"]
    lines += [f"  {crash}" for crash in crashes[:3]]
    if len(crashes) > 3:
        lines.append(f"  ({len(crashes) - 3} more)")
    lines.append("Make it handle these inputs as well; the examples must still pass.")
    return "\n".join(lines)


def _child_meta(opening: bool, repair: bool, hints: Sequence[str], proposal: Proposal) -> dict[str, Any]:
    """What a child records of how it was asked for: what its prompt held beyond the trajectory (the
    opening or the focused repair, the notes, the retry turns), so `trellis tree node` shows that
    prompt exactly."""
    meta: dict[str, Any] = {}
    if repair:
        meta["repair"] = True
    elif opening:
        meta["opening"] = True
    else:
        meta["hints"] = list(hints)
        meta["retry_turns"] = [m.model_dump() for m in proposal.retry_turns]
    return meta


def mark_duplicates(ctx: SearchContext, nodes: Sequence[Node]) -> None:
    """Mark each new node whose files another branch reached first, in (depth, id) order.

    The order is the tree's, not the clock's, so a search with parallel expansions builds the same
    tree for the same seed. An ancestor's state is not a duplicate (a step that changed nothing).
    """
    for node in sorted(nodes, key=lambda n: (n.depth, n.id)):
        if node.state_id is None or node.duplicate_of is not None:
            continue
        parent = ctx.tree.parent(node.id)
        original = ctx.states.get(node.state_id)
        ancestors = {a.id for a in ctx.tree.ancestors(node.id)}
        if parent is not None and node.state_id == parent.state_id:
            if parent.terminal:  # a repair of a finished answer that changed nothing: that answer again
                node.duplicate_of = parent.id
            continue
        if original is not None and original != node.id and original not in ancestors:
            node.duplicate_of = original
        else:
            ctx.states.setdefault(node.state_id, node.id)


# --- evaluate ----------------------------------------------------------------------------------


def _signals(node: Node, partial_credit: float) -> tuple[list[str], float | None]:
    """Facts the world established for this step, and a hard score (0 for a failed step, the share
    of passing tests when tests ran, a failing test of a step that did not fail counting
    `partial_credit` times the progress the world saw toward passing it)."""
    signals: list[str] = []
    hard = None
    step = node.step
    if step is None or step.observation is None:
        return signals, hard
    observation = step.observation
    if observation.is_error:
        signals.append("the last action failed: " + observation.text[:200])
        hard = 0.0

    tests = observation.tests
    if tests:
        passed = _passing(tests)
        moved = {
            name: share
            for name, share in (observation.progress or {}).items()
            if not observation.is_error and tests.get(name) not in (None, *_PASSING) and 0 < share < 1
        }
        hard = (passed + partial_credit * sum(moved.values())) / len(tests)
        signals.append(f"tests ran: {passed} of {len(tests)} pass")
        if moved:
            signals.append("nearer to passing than the original code: " + ", ".join(list(moved)[:5]))
        failing = [name for name, status in tests.items() if status not in ("PASSED", "XFAIL", "SKIPPED")]
        if failing:
            signals.append("failing: " + ", ".join(failing[:5]))
    if observation.terminal == "finished":
        patch = observation.patch or ""
        signals.append(f"a patch of {len(patch.splitlines())} lines was submitted")
    return signals, hard


_PASSING = ("PASSED", "XFAIL")
"""Test statuses that count as passing (an expected failure does)."""


def _worse_than_nothing(node: Node) -> bool:
    """Whether the checks that ran on the node's state all failed: every visible example or issue
    check wrong, or, where the only checks were tests the change broke (`data["nearby"]`), at least
    half of those next to it that passed before broken. A change that broke a few may be right (the
    broken ones asserting the old behaviour); one that broke a changed module's import is not."""
    observation = node.step.observation if node.step else None
    tests = observation.tests if observation else None
    if observation is None or not tests:
        return False
    if _unimportable(node):
        return True
    if _passing(tests) or all(s == "SKIPPED" for s in tests.values()):
        return False
    nearby = observation.data.get("nearby") or {}
    broken, before = int(nearby.get("broken", 0)), int(nearby.get("passed_before", 0))
    return len(tests) > broken or 2 * broken >= before


def _unimportable(node: Node) -> bool:
    """Whether the node's change broke the import of a module it changed (`data["nearby"]`)."""
    observation = node.step.observation if node.step else None
    nearby = (observation.data.get("nearby") if observation else None) or {}
    return int(nearby.get("broken_imports", 0)) > 0


def _passing(tests: dict[str, str]) -> int:
    """How many of `tests` pass (an expected failure counts as passing)."""
    return sum(1 for status in tests.values() if status in _PASSING)


def _failure(node: Node, hard: float | None) -> str:
    """What went wrong at this step, in words another branch can use ("" when nothing did)."""
    step = node.step
    if step is None or step.observation is None or step.action is None:
        return ""
    if not step.observation.is_error and (hard is None or hard >= 1.0):
        return ""
    text = " ".join(step.observation.text.split())
    return f"{step.action.describe(60)} led to: {text[:300]}"


async def _changes(ctx: SearchContext, node: Node) -> str:
    """The node's changes against the task's start, where the world can tell (a code world's patch)."""
    if node.state_id is None or node.state_id == ctx.tree.root.state_id:
        return ""
    async with ctx.worlds.acquire() as world:
        return await world.patch(node.state_id)


async def _behaviour(ctx: SearchContext, node: Node) -> Behaviour | None:
    """How the node's answer behaves on the world's probe inputs, where the world has probes."""
    if node.state_id is None:
        return None
    async with ctx.worlds.acquire() as world:
        if not isinstance(world, Probed):
            return None
        return await world.behaviour(node.state_id)


async def _judge_rewards(ctx: SearchContext, node: Node) -> None:
    """ReSeek's instructive reward of the verdicts on a finished trajectory, where the world knows
    which observations were useful; kept on the node as `meta["judge_reward"]` (per judging step, by
    its depth, and the total)."""
    trajectory = ctx.tree.path(node.id)
    if not any(step.judge is not None for step in trajectory.steps):
        return
    async with ctx.worlds.acquire() as world:
        if not isinstance(world, JudgeChecked) or not getattr(world, "knows_useful", True):
            return
        await world.restore(node.state_id or "")
        judged = world.judge_rewards(trajectory.steps)
        rewards = await judged if inspect.isawaitable(judged) else judged
    if rewards:
        node.meta["judge_reward"] = {
            "per_step": {str(index + 1): value for index, value in sorted(rewards.items())},
            "total": round(sum(rewards.values()), 6),
            "count": len(rewards),
        }


async def evaluate_node(ctx: SearchContext, node: Node) -> Node:
    tree = ctx.tree
    if node.duplicate_of is not None:
        original = tree.nodes.get(node.duplicate_of)
        if original is not None and original.reward is not None:
            node.reward = original.reward
            node.explanation = f"same files as node {original.id}"
            return node
    parent = tree.parent(node.id)
    repeated = (
        parent is not None
        and parent.action is not None
        and node.action is not None
        and parent.action.key() == node.action.key()
        and parent.state_id == node.state_id
    )
    if node.terminal_reason == "rejected":
        node.reward = 0.0
        node.explanation = "the solver abandoned this branch"
    elif repeated:  # a step that repeats its parent's and changes nothing is worth nothing; no need to ask
        node.reward = 0.0
        node.explanation = "repeats the previous step without effect"
    else:
        signals, hard = _signals(node, ctx.config.partial_credit)
        if node.terminal_reason == "finished" and ctx.config.use_world_reward:
            async with ctx.worlds.acquire() as world:
                await world.restore(node.state_id or "")
                checked = await world.reward()
            if checked is not None:
                hard = checked.value
                signals.append(f"checked: {checked.summary}")
                node.meta["world_reward"] = checked.model_dump(mode="json")
        if node.terminal_reason == "finished":
            await _judge_rewards(ctx, node)
        failed = bool(node.step and node.step.observation and node.step.observation.is_error)
        evaluation = await ctx.critic(
            ctx.task,
            tree.path(node.id),
            signals=signals,
            hard=hard,
            consistency=node.count / ctx.config.samples,
            seed=ctx.seed("critic", node.id),
            changes=await _changes(ctx, node),
            failed=failed,
            failure=_failure(node, hard),
        )
        node.reward = evaluation.value
        judged = node.meta.get("judge_reward")
        if ctx.config.judge_value and isinstance(judged, dict) and judged.get("count"):
            # the verdicts' mean reward, from [-0.6, 0.4] onto [0, 1], a fifth of the value
            mean = float(judged["total"]) / int(judged["count"])
            node.reward = 0.8 * evaluation.value + 0.2 * (mean + 0.6)
        node.explanation = evaluation.explanation
        node.feedback = evaluation.feedback
        node.usage = node.usage + evaluation.usage
        node.meta["lm_score"] = evaluation.lm_score
        if hard is not None:
            node.meta["hard"] = hard
        if node.terminal_reason == "finished" and hard == 1.0:
            behaviour = await _behaviour(ctx, node)
            if behaviour is not None:
                node.meta["behaviour"] = behaviour.signature
                if behaviour.crashes:
                    node.meta["crashes"] = behaviour.crashes
            same = parent is not None and parent.state_id == node.state_id
            if parent is not None and same and not parent.terminal and "submitted" not in parent.meta:
                # its answer passes every check and was submitted: expanding it again can only submit
                # it again, so new answers must come from elsewhere (selection skips it from now on);
                # a crashed answer's repair that changed nothing leaves it open for another try
                parent.meta["submitted"] = node.id
                ctx.save([parent])
        if evaluation.error:
            node.meta["critic_error"] = evaluation.error
    failed = node.terminal and node.terminal_reason in ("rejected", "finished") and (node.reward or 0) < 0.5
    if failed and ctx.config.reflection and ctx.reflector is not None:
        outcome = node.explanation or node.terminal_reason
        lesson, usage = await ctx.reflector(ctx.task, tree.path(node.id), outcome, seed=ctx.seed("reflect", node.id))
        node.usage = node.usage + usage
        if lesson:
            node.reflection = lesson
    return node


async def evaluate(ctx: SearchContext) -> list[NodeId]:
    """Evaluate every node that has no reward yet (the ones the last expansions made)."""
    pending = [n for n in ctx.tree if n.parent_id is not None and n.reward is None]
    mark_duplicates(ctx, pending)
    pending.sort(key=lambda n: (n.duplicate_of is not None, n.depth, n.id))
    done = [await evaluate_node(ctx, n) for n in pending]
    reflections = [n for n in done if n.reflection]
    if reflections:
        known = {entry.node for entry in ctx.tree.reflections}
        ctx.tree.reflections += [Reflection(node=n.id, lesson=n.reflection) for n in reflections if n.id not in known]
    ctx.save(done, meta=bool(reflections))
    for node in done:
        ctx.event("node_evaluated", node=_brief(node))
    return [n.id for n in done]


# --- backpropagate -----------------------------------------------------------------------------


def backpropagate(ctx: SearchContext) -> list[NodeId]:
    """Back up each evaluated node's reward once; one transaction marks and updates."""
    tree = ctx.tree
    fresh = [n for n in tree if n.parent_id is not None and n.reward is not None and not n.backed_up]
    touched: dict[NodeId, Node] = {}
    for node in sorted(fresh, key=lambda n: n.id):
        tree.backpropagate(node.id, float(node.reward or 0.0))
        node.backed_up = True
        for ancestor in tree.ancestors(node.id):
            touched[ancestor.id] = ancestor
    ctx.save(list(touched.values()))
    for node in fresh:
        ctx.event("node_backed_up", node=_brief(node), path=[a.id for a in tree.ancestors(node.id)])
    return [n.id for n in fresh]


# --- discriminate ------------------------------------------------------------------------------


async def discriminate(ctx: SearchContext) -> Decision:
    """Choose the final answer among finished candidates (or the best unfinished state)."""
    tree = ctx.tree
    world = ctx.worlds.first
    candidates = []
    for node in finished_nodes(tree):
        patch = (node.step.observation.patch or "") if node.step and node.step.observation else ""
        if patch.strip():
            behaviour = node.meta.get("behaviour")
            candidates.append(
                Candidate(
                    node_id=node.id,
                    answer=patch,
                    reward=node.reward or 0.0,
                    note=node.explanation,
                    behaviour=str(behaviour) if behaviour is not None else None,
                    crashes=len(node.meta.get("crashes", [])) if ctx.config.budget.crash_free else 0,
                    lineage=lineage(tree, node),
                )
            )
    if candidates:
        decision = await ctx.discriminator(ctx.task, candidates, seed=ctx.seed("discriminate"))
    else:
        decision = Decision(node_id=None, strategy="fallback", reason="no finished candidate")
        # a state whose checks all failed is worse than no patch, however a neutral critic valued it
        passed = {
            n.state_id for n in tree if n.step and n.step.observation and _passing(n.step.observation.tests or {})
        }
        failing = {n.state_id for n in tree if _worse_than_nothing(n)} - passed
        failing |= {n.state_id for n in tree if _unimportable(n)}  # whatever else passed on that state
        changed = [n for n in tree if n.parent_id and n.state_id and n.state_id != tree.root.state_id]
        ranked = sorted(
            (n for n in changed if n.state_id not in failing),
            key=lambda n: (-(n.value or 0.0), -(n.reward or 0.0), n.id),
        )
        if changed and not ranked:
            decision = Decision(
                node_id=None,
                strategy="fallback",
                reason="no finished candidate, and every changed state failed all the checks that ran on it",
            )
        for node in ranked:
            patch = await world.patch(node.state_id)
            if patch.strip():
                decision = Decision(
                    node_id=node.id,
                    strategy="fallback",
                    reason="no finished candidate; the highest-valued changed state was taken",
                )
                break
    final_patch = ""
    if decision.node_id is not None:
        node = tree.get(decision.node_id)
        final_patch = (node.step.observation.patch or "") if node.step and node.step.observation else ""
        if not final_patch:
            final_patch = await world.patch(node.state_id)
    tree.decision = decision.model_dump(mode="json")
    tree.final = FinalChoice(node=decision.node_id, patch=final_patch)
    if decision.usage.calls:
        tree.meta["discriminator_usage"] = decision.usage.model_dump()
    ctx.save([], meta=True)
    ctx.event("decided", node=decision.node_id, strategy=decision.strategy, reason=decision.reason)
    return decision


def _brief(node: Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "parent": node.parent_id,
        "depth": node.depth,
        "action": node.action.summary(80) if node.action else (node.step.error if node.step else None),
        "reward": node.reward,
        "visits": node.visits,
        "value": round(node.value, 4),
        "terminal": node.terminal_reason,
        "duplicate_of": node.duplicate_of,
        "count": node.count,
    }
