"""The `World` seam: a task environment an agent acts in.

A world resets to a task, steps on actions, snapshots and restores its state by id (so a search can
jump between branches), and, where the task can be checked, computes a reward in [0, 1].
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from trellis.tools import ToolSpec
from trellis.tree import Action, Observation, StateId


class Reward(BaseModel):
    """A checked outcome: a value in [0, 1] and what it rests on."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(ge=0.0, le=1.0)
    resolved: bool = False
    details: dict[str, object] = Field(default_factory=dict)
    summary: str = ""


@runtime_checkable
class World(Protocol):
    """Where an agent acts."""

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
