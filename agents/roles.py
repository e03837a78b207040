"""The roles of a search, as Protocols: what the engine asks of each agent, and all it asks.

`SearchContext` is typed against these, so any object with the right async call can take a role:
the shipped agents (`Solver`, `Critic`, `Discriminator`, `Reflector`, `Judge`), a wrapper around
them, or an agent of your own (a solver on another model, a critic that runs a linter, a judge
that greps for the issue's symbols). `trellis.agents.nodes` makes each role a LangGraph node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from trellis.tools import ToolSpec
from trellis.tree import Trajectory, Usage
from trellis.world import Opening

if TYPE_CHECKING:
    from trellis.agents.critic import Evaluation
    from trellis.agents.discriminator import Candidate, Decision
    from trellis.agents.solver import Proposal


@runtime_checkable
class SolverRole(Protocol):
    """Proposes next steps: `n` proposals for a trajectory, and `n` focused steps from an opening."""

    async def __call__(
        self,
        task: str,
        tools: Sequence[ToolSpec],
        trajectory: Trajectory,
        *,
        n: int,
        seed: int | None = None,
        hints: Sequence[str] = (),
        avoid: Sequence[str] = (),
        default_path: str | None = None,
        greedy: bool | None = None,
        system: str | None = None,
    ) -> list[Proposal]: ...

    async def open(
        self,
        opening: Opening,
        tools: Sequence[ToolSpec],
        *,
        n: int,
        seed: int | None = None,
        greedy: bool | None = None,
        turns: Sequence[tuple[str, str]] = (),
    ) -> list[Proposal]: ...


@runtime_checkable
class ValueRole(Protocol):
    """Values a node's trajectory in [0, 1], with an explanation and feedback for later attempts.

    `signals` are facts the world checked (tests run, errors); `hard` the share of visible checks
    passed, when there were any; `changes` the node's patch against the task's start."""

    async def __call__(
        self,
        task: str,
        trajectory: Trajectory,
        *,
        signals: list[str],
        hard: float | None = None,
        consistency: float | None = None,
        seed: int | None = None,
        changes: str = "",
        failed: bool = False,
        failure: str = "",
    ) -> Evaluation: ...


@runtime_checkable
class DiscriminatorRole(Protocol):
    """Chooses the final answer among the finished candidates."""

    async def __call__(self, task: str, candidates: Sequence[Candidate], *, seed: int | None = None) -> Decision: ...


@runtime_checkable
class ReflectorRole(Protocol):
    """Draws a lesson (one or two sentences, "" for none) from a failed trajectory, with its cost."""

    async def __call__(
        self, task: str, trajectory: Trajectory, outcome: str, *, seed: int | None = None
    ) -> tuple[str, Usage]: ...


@runtime_checkable
class JudgeRole(Protocol):
    """ReSeek's JUDGE as an agent of its own: is the trajectory's last observation useful for the task?

    True keeps it, False drops it from the branch's later prompts, None abstains; with its cost."""

    async def __call__(
        self, task: str, trajectory: Trajectory, *, seed: int | None = None
    ) -> tuple[bool | None, Usage]: ...
