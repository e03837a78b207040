"""A plain ReAct agent as a linear graph: reason, act, observe, until the agent finishes.

    START --> reason --> act --> observe --(finished, gave up, or out of steps)--> END
                ^                   |
                +-------------------+

No tree search, no critic: one trajectory, each step taken from the one before. The graph's nodes
use the parts directly: the `Solver` role (a thought and one action), the `World` (acts in the
sandbox), and a `Tree` that records the trajectory so it can be drawn and saved like a search's.

Run:  python examples/react_agent.py --task reverse_string [--model embedded] [--steps 8]
"""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from _support import command_line, report, task_world
from langgraph.graph import END, START, StateGraph
from rich.console import Console
from trellis.agents import Proposal, Solver

from trellis.models import load_model
from trellis.tree import Observation, Step, Tree
from trellis.world import World


class ReactState(TypedDict, total=False):
    node: str
    """The trajectory's latest step (the root at the start)."""
    proposal: Proposal
    observation: Observation
    done: str
    """Why the agent stopped ("" while it goes on)."""


def build_react(task: str, world: World, solver: Solver, tree: Tree, *, max_steps: int = 8) -> StateGraph:
    """A ReAct loop on `task` in `world`; every step becomes the only child of the one before in `tree`."""
    default_path = getattr(world, "default_path", None)

    async def reason(state: ReactState) -> dict[str, Any]:
        node = state.get("node", tree.root_id)
        if node == tree.root_id and tree.root.state_id is None:
            await world.reset()
            tree.root.state_id = await world.snapshot()
        (proposal,) = await solver(task, world.tools, tree.path(node), n=1, default_path=default_path)
        return {"node": node, "proposal": proposal}

    async def act(state: ReactState) -> dict[str, Any]:
        proposal = state["proposal"]
        if proposal.action is None:  # what the model wrote is no action: tell it so, as an observation
            return {"observation": Observation(text=f"Error: {proposal.error}", is_error=True)}
        return {"observation": await world.step(proposal.action)}

    async def observe(state: ReactState) -> dict[str, Any]:
        proposal, observation = state["proposal"], state["observation"]
        terminal = observation.terminal or ""
        step = Step(
            action=proposal.action, observation=observation, completion=proposal.completion, error=proposal.error
        )
        child = tree.add_child(
            state["node"],
            0,
            step,
            state_id=await world.snapshot(),
            usage=proposal.usage,
            terminal=bool(terminal),
            terminal_reason=terminal,
        )
        Console(stderr=True).print(
            f"step {child.depth}: {proposal.action.summary(80) if proposal.action else proposal.error}"
        )
        done = f"the agent stopped: {terminal}" if terminal else ""
        if not done and child.depth >= max_steps:
            done = f"{max_steps} steps taken"
        return {"node": child.id, "done": done}

    graph = StateGraph(ReactState)
    graph.add_node("reason", reason)
    graph.add_node("act", act)
    graph.add_node("observe", observe)
    graph.add_edge(START, "reason")
    graph.add_edge("reason", "act")
    graph.add_edge("act", "observe")
    graph.add_conditional_edges("observe", lambda s: END if s["done"] else "reason", ["reason", END])
    return graph


async def main() -> None:
    args = command_line(__doc__, steps=8)
    world = task_world(args.task)
    model = load_model(args.model)
    tree = Tree.new(task=world.task)
    app = build_react(world.task, world, Solver(model), tree, max_steps=args.steps).compile()
    final = await app.ainvoke({}, {"recursion_limit": 3 * args.steps + 5})
    Console().print(f"stopped: {final['done']}")
    await report(tree, world, final["node"])
    await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
