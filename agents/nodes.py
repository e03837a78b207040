"""Each role as a LangGraph node on its own: a function from a state mapping to an update.

The search engine's steps (`trellis.search.engine`) are nodes over a whole tree. These are the agents
alone, for graphs that keep their own state: a ReAct loop, a self-refine pair, a judge in front of a
summariser. Each reads the keys of `RoleState` it needs and returns the keys it produces; `usage` is
added up across nodes by its reducer (`operator.add`), so a graph knows what it spent.

    graph = StateGraph(RoleState)
    graph.add_node("solve", solver_node(Solver(model), n=2))
    graph.add_node("value", value_node(Critic(model)))
    graph.add_edge(START, "solve"); graph.add_edge("solve", "value"); graph.add_edge("value", END)

Any object with the role's call (`trellis.agents.roles`) works in place of the shipped agents.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

from trellis.agents.critic import Evaluation
from trellis.agents.discriminator import Candidate, Decision
from trellis.agents.roles import DiscriminatorRole, JudgeRole, ReflectorRole, SolverRole, ValueRole
from trellis.agents.solver import Proposal

from trellis.tools import ToolSpec
from trellis.tree import Trajectory, Usage
from trellis.world import Opening

Update = dict[str, Any]
RoleNode = Callable[["RoleState"], Awaitable[Update]]


class RoleState(TypedDict, total=False):
    """What the role nodes read and write. Inputs: `task`, `tools`, `trajectory` (and `hints`,
    `signals`, `hard`, `changes`, `outcome`, `candidates` where a role takes them)."""

    task: str
    tools: Sequence[ToolSpec]
    trajectory: Trajectory
    hints: Sequence[str]
    signals: list[str]
    hard: float | None
    changes: str
    outcome: str
    candidates: Sequence[Candidate]
    proposals: list[Proposal]
    evaluation: Evaluation
    lesson: str
    verdict: bool | None
    decision: Decision
    usage: Annotated[Usage, operator.add]


def solver_node(
    solver: SolverRole, *, n: int = 1, opening: Opening | None = None, default_path: str | None = None
) -> RoleNode:
    """`proposals`: `n` next steps for `trajectory` (from `opening`'s focused prompt where it is given
    and the trajectory has no step yet), with `hints` as notes."""

    async def solve(state: RoleState) -> Update:
        trajectory = state["trajectory"]
        if opening is not None and not trajectory.steps:
            proposals = await solver.open(opening, state["tools"], n=n)
        else:
            proposals = await solver(
                state["task"], state["tools"], trajectory, n=n, hints=state.get("hints", ()), default_path=default_path
            )
        return {"proposals": proposals, "usage": _total(p.usage for p in proposals)}

    return solve


def value_node(critic: ValueRole) -> RoleNode:
    """`evaluation`: the trajectory's value, explanation and feedback, from `signals`, `hard` and `changes`."""

    async def value(state: RoleState) -> Update:
        evaluation = await critic(
            state["task"],
            state["trajectory"],
            signals=list(state.get("signals", [])),
            hard=state.get("hard"),
            changes=state.get("changes", ""),
        )
        return {"evaluation": evaluation, "usage": evaluation.usage}

    return value


def reflector_node(reflector: ReflectorRole) -> RoleNode:
    """`lesson`: what the failed trajectory teaches, given its `outcome`."""

    async def reflect(state: RoleState) -> Update:
        lesson, usage = await reflector(state["task"], state["trajectory"], state.get("outcome", "failed"))
        return {"lesson": lesson, "usage": usage}

    return reflect


def judge_node(judge: JudgeRole) -> RoleNode:
    """`verdict`: whether the trajectory's last observation is worth keeping (None: no verdict)."""

    async def judged(state: RoleState) -> Update:
        verdict, usage = await judge(state["task"], state["trajectory"])
        return {"verdict": verdict, "usage": usage}

    return judged


def discriminator_node(discriminator: DiscriminatorRole) -> RoleNode:
    """`decision`: the chosen candidate among `candidates`."""

    async def decide(state: RoleState) -> Update:
        decision = await discriminator(state["task"], state.get("candidates", []))
        return {"decision": decision, "usage": decision.usage}

    return decide


def _total(usages: Any) -> Usage:
    total = Usage()
    for usage in usages:
        total = total + usage
    return total
