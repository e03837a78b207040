"""Revision trajectories: a bad path cut at its first error, a revert, then the good path.

A splice of a pair is: the steps both paths share (root to their common ancestor), the bad path's
steps up to its first error, one revision step (a thought that names the mistake, in one of several
phrasings chosen by seed, and a `revert` action that restores the common ancestor's files), and the
good path's steps from the ancestor on. In a world whose state is its files, the revert makes the
good suffix valid again exactly where it was first taken, which `replay` checks: the trajectory is
run from the task's start in a fresh world and must end in the good leaf's state.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from trellis.agents.first_error import FirstError
from trellis.envs.code.tools import START_STATE
from trellis.envs.qa.world import QAState
from trellis.train.pairs import Pair

from trellis.errors import UserError
from trellis.tree import ROOT_ID, Action, Node, Observation, StateId, Step, Trajectory, Tree
from trellis.world import World

REVERT_TOOL = "revert"

REVISION_THOUGHTS = (
    "I realise my approach from `{mistake}` on was wrong, and the steps after it build on that mistake. "
    "I will undo those changes and go back to where I was before it.",
    "Looking back, `{mistake}` was a mistake. Let me go back to the state before it and take a different approach.",
    "This is not working: `{mistake}` led me the wrong way. I will restore the earlier state and solve the "
    "task differently.",
    "Wait, `{mistake}` was an error. Continuing from here only adds to it, so I go back to the state before "
    "it and try again.",
)


class Splice(BaseModel):
    """One revision trajectory and where its parts come from."""

    model_config = ConfigDict(extra="forbid")

    pair: Pair
    prefix: list[Step]
    """The shared steps, root to the common ancestor."""
    bad: list[Step]
    """The bad path's steps after the ancestor, up to and including the first error."""
    bad_total: int
    """How many steps the bad path has after the ancestor (the ones after the first error are cut)."""
    revision: Step
    """The revision thought and the revert action (its observation filled in by `replay`)."""
    good: list[Step]
    """The good path's steps after the ancestor."""
    ancestor_state: StateId
    good_state: StateId
    phrasing: int
    first_error: FirstError | None = None
    verified: bool = False
    replayed: list[Observation] = Field(default_factory=list)
    """What the world answered to each step when the splice was replayed."""

    def steps(self) -> list[Step]:
        return [*self.prefix, *self.bad, self.revision, *self.good]

    def trajectory(self) -> Trajectory:
        return steps_trajectory(self.steps())


def steps_trajectory(steps: Sequence[Step]) -> Trajectory:
    """A root-to-leaf path made of `steps` (node ids are positions; only the steps matter)."""
    nodes = [Node(id=ROOT_ID)]
    for depth, step in enumerate(steps, 1):
        nodes.append(Node(id=f"{ROOT_ID}{'.0' * depth}", parent_id=nodes[-1].id, depth=depth, step=step))
    return Trajectory(nodes=nodes)


def path_steps(tree: Tree, start: str, end: str) -> list[Step]:
    """The steps of the nodes below `start` down to and including `end`."""
    chain = tree.ancestors(end)
    ids = [node.id for node in chain]
    return [node.step for node in chain[ids.index(start) + 1 :] if node.step is not None]


def choose_phrasing(seed: int, key: str) -> int:
    """A phrasing index that depends only on the seed and the pair (stable across runs and machines)."""
    return random.Random(f"{seed}:{key}").randrange(len(REVISION_THOUGHTS))


def revert_target(tree: Tree, ancestor: Node) -> str:
    """How the revert names the ancestor's state: `start` for the task's start; in a QA world, `after
    search N` (what the model can say from its own trajectory); else the state's id."""
    if ancestor.state_id is None:
        raise ValueError(f"node {ancestor.id} has no state; a splice needs the world state of the common ancestor")
    if ancestor.state_id == tree.root.state_id:
        return START_STATE
    try:
        return f"after search {QAState.parse(ancestor.state_id).turns}"
    except UserError:  # not a QA state
        return ancestor.state_id


def make_splice(tree: Tree, pair: Pair, first_error: FirstError | None = None, *, seed: int = 0) -> Splice:
    """The revision trajectory of `pair`, its bad segment cut after `first_error`'s first bad step."""
    ancestor = tree.get(pair.ancestor)
    good_leaf = tree.get(pair.good)
    if good_leaf.state_id is None:
        raise ValueError(f"good leaf {pair.good} has no state")
    bad_all = path_steps(tree, pair.ancestor, pair.bad)
    keep = first_error.segment_length(len(bad_all)) if first_error is not None else len(bad_all)
    bad = bad_all[:keep]
    mistake_step = (
        bad[first_error.first_bad] if first_error is not None and first_error.first_bad is not None else bad[0]
    )
    mistake = mistake_step.action.describe(80) if mistake_step.action else "my last reply"
    phrasing = choose_phrasing(seed, f"{tree.meta.get('task', '')}:{pair.good}:{pair.bad}")
    thought = REVISION_THOUGHTS[phrasing].format(mistake=mistake)
    revert = Action(tool=REVERT_TOOL, args={"state": revert_target(tree, ancestor)}, thought=thought)
    return Splice(
        pair=pair,
        prefix=path_steps(tree, tree.root_id, pair.ancestor),
        bad=bad,
        bad_total=len(bad_all),
        revision=Step(action=revert),
        good=path_steps(tree, pair.ancestor, pair.good),
        ancestor_state=ancestor.state_id or "",
        good_state=good_leaf.state_id,
        phrasing=phrasing,
        first_error=first_error,
    )


class ReplayError(Exception):
    """A splice did not reproduce in its world; `reason` says where it went astray."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _run(world: World, steps: Sequence[Step], seen: list[Observation]) -> None:
    for step in steps:
        if step.action is None:  # an unparsable reply did nothing in the world
            seen.append(Observation(text=step.observation.text if step.observation else f"Error: {step.error}"))
            continue
        seen.append(await world.step(step.action))


async def replay(world: World, splice: Splice) -> Splice:
    """Run `splice` from the task's start in `world`; a copy with the revert's real observation and
    `verified=True`, or ReplayError when a stage does not reach the state it must."""
    seen: list[Observation] = []
    await world.reset()
    await _run(world, splice.prefix, seen)
    if await world.snapshot() != splice.ancestor_state:
        raise ReplayError("prefix does not reproduce")
    await _run(world, splice.bad, seen)
    await world.snapshot()  # store the bad state, as the search did
    await _run(world, [splice.revision], seen)
    revert_seen = seen[-1]
    if revert_seen.is_error or await world.snapshot() != splice.ancestor_state:
        raise ReplayError("revert does not restore the common ancestor")
    await _run(world, splice.good, seen)
    if await world.snapshot() != splice.good_state:
        raise ReplayError("good suffix does not reach the good leaf")
    revision = splice.revision.model_copy(update={"observation": revert_seen})
    return splice.model_copy(update={"revision": revision, "verified": True, "replayed": seen})
