"""The `World` seam: a task environment an agent acts in.

A world resets to a task, steps on actions, snapshots and restores its state by id (so a search can
jump between branches), and, where the task can be checked, computes a reward in [0, 1].
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from trellis.tools import ToolSpec
from trellis.tree import Action, Observation, StateId, Step

FINISH_HINT = "If the implementation is complete, reply with: finish"
"""The line a code task's world ends an observation with when every check passes; a search that
finishes such an answer itself (`SearchConfig.finish_when_checked`) leaves it out."""


class Reward(BaseModel):
    """A checked outcome: a value in [0, 1] and what it rests on."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(ge=0.0, le=1.0)
    resolved: bool = False
    details: dict[str, object] = Field(default_factory=dict)
    summary: str = ""


class Opening(BaseModel):
    """A focused first step: the search's root is expanded by asking the model this prompt alone, and
    the code it replies with becomes a write of `path`.

    A small model writes one function far better in a short prompt (the issue and the code it
    concerns, or a function to complete) than in the middle of an agent's tool instructions
    (Agentless's repair step); every later step sees that write as the trajectory's first action,
    with its observation, and goes on as an agent.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1)
    path: str = Field(min_length=1)
    """The file the reply's code is written to (merged into it, for a fragment of a Python file)."""


@runtime_checkable
class World(Protocol):
    """Where an agent acts.

    Optional attributes a world may have: `default_path` (where a code block without a path goes)
    and `system_prompt` (the solver's role line, for worlds that are not code repositories).
    """

    tools: list[ToolSpec]

    async def reset(self) -> Observation:
        """Put the world in its task's start state and describe the task."""
        ...

    async def step(self, action: Action) -> Observation: ...

    async def snapshot(self) -> StateId: ...

    async def restore(self, state: StateId) -> None: ...

    async def reward(self) -> Reward | None:
        """The checked reward of the current state, or None where the task has no check."""
        ...

    async def patch(self, state: StateId | None = None) -> str:
        """What `state` (default: the current one) changed against the task's start, as text a reviewer
        reads: a code world's diff, a QA world's answer; "" where nothing changed."""
        ...


@runtime_checkable
class JudgeChecked(Protocol):
    """A world that knows which observations were useful (ReSeek's instructive reward for the judge).

    It may also say whether it knows that at all, in a `knows_useful` attribute (a code world does
    only with its reference patch): where it is False, the search does not restore a finished node's
    state to score its verdicts. A world without the attribute is asked every time."""

    def judge_rewards(self, steps: Sequence[Step]) -> dict[int, float] | Awaitable[dict[int, float]]:
        """The reward of each verdict in `steps` (a trajectory whose last state the world now holds),
        by the index of the step that gave it; a verdict is on the observation of the step before.
        A coroutine where working it out runs something (a code world's hidden checks)."""
        ...


class Behaviour(BaseModel):
    """How an answer behaved on a world's probe inputs (see `Probed`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signature: str
    """Equal for answers that behave alike."""
    crashes: list[str] = Field(default_factory=list)
    """The probe inputs the answer failed on by accident (an error no line of it raised on purpose,
    or no result in time), each with what happened: `f('') raised IndexError: string index out of
    range`. An input of the kind the task's examples use should not crash a right answer (the
    implicit oracle of fuzzing), so such an answer is repaired and does not end a search."""


@runtime_checkable
class Probed(Protocol):
    """A world that can run an answer on inputs nobody checked (a code task's probe calls), so that
    answers can be grouped by how they behave rather than by their text."""

    async def behaviour(self, state: StateId) -> Behaviour | None:
        """How the answer in `state` behaves; None where the world has nothing to run it on."""
        ...
