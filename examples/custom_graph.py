"""A different graph from the same parts: MCTS whose expansion step is a self-refine loop.

    select --> propose --> critique --(not accepted, attempts left)--> propose (same node, with the
      ^                        |                                        critic's feedback as a hint)
      |                        +--(accepted or out of attempts)--> backpropagate --> select ...
      +-- (budget spent) --> discriminate --> END

The nodes are the public steps of `trellis.search.engine`; only the wiring is new.

Run:  python examples/custom_graph.py [--task reverse_string] [--model embedded] [--nodes 12]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from rich.console import Console
from trellis.agents import Critic, Discriminator, Reflector, Solver
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.world import CodeTaskWorld, get_task, make_task_repository
from trellis.search import engine
from trellis.search.config import BudgetConfig, SearchConfig
from trellis.search.engine import SearchContext, WorldPool

from trellis.models import load_model
from trellis.models.base import ChatModel
from trellis.render import TreeView, summary
from trellis.tree import Tree


class RefineState(TypedDict, total=False):
    iteration: int
    node: str
    attempt: int
    accepted: bool
    stop: str


def build_refine_search(ctx: SearchContext, *, attempts: int = 3, accept: float = 0.7) -> StateGraph:
    async def select(state: RefineState) -> dict[str, Any]:
        await engine.initialise(ctx)
        iteration = state.get("iteration", 0)
        reason = engine.stop_reason(ctx, iteration)
        chosen = [] if reason else engine.select(ctx, iteration)
        return {
            "iteration": iteration + 1,
            "node": chosen[0] if chosen else "",
            "attempt": 0,
            "stop": reason or ("" if chosen else "nothing to expand"),
        }

    async def propose(state: RefineState) -> dict[str, Any]:
        # each refinement is another expansion of the same node; the critic's feedback on the
        # earlier attempts reaches the solver through the engine's hints
        await engine.expand(ctx, state["node"], state["iteration"] * 100 + state["attempt"])
        return {"attempt": state["attempt"] + 1}

    async def critique(state: RefineState) -> dict[str, Any]:
        evaluated = await engine.evaluate(ctx)
        best = max((ctx.tree.get(i).reward or 0.0 for i in evaluated), default=0.0)
        return {"accepted": best >= accept}

    def after_critique(state: RefineState) -> str:
        return "backpropagate" if state["accepted"] or state["attempt"] >= attempts else "propose"

    async def backpropagate(state: RefineState) -> dict[str, Any]:
        engine.backpropagate(ctx)
        return {}

    async def discriminate(state: RefineState) -> dict[str, Any]:
        await engine.discriminate(ctx)
        return {}

    graph = StateGraph(RefineState)
    for name, fn in [
        ("select", select),
        ("propose", propose),
        ("critique", critique),
        ("backpropagate", backpropagate),
        ("discriminate", discriminate),
    ]:
        graph.add_node(name, fn)  # type: ignore[call-overload]
    graph.add_edge(START, "select")
    graph.add_conditional_edges(
        "select", lambda s: "discriminate" if s["stop"] else "propose", ["propose", "discriminate"]
    )
    graph.add_edge("propose", "critique")
    graph.add_conditional_edges("critique", after_critique, ["propose", "backpropagate"])
    graph.add_edge("backpropagate", "select")
    graph.add_edge("discriminate", END)
    return graph


def make_context(world: CodeTaskWorld, model: ChatModel, config: SearchConfig) -> SearchContext:
    """Every role played by `model` in one world; the tree lives in memory (no run folder)."""
    return SearchContext(
        task=world.task,
        tree=Tree.new(task=world.task),
        worlds=WorldPool([world]),
        solver=Solver(model, config.solver),
        critic=Critic(model, config.critic),
        discriminator=Discriminator(model, config.discriminator),
        reflector=Reflector(model),
        config=config,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="reverse_string")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--nodes", type=int, default=12)
    args = parser.parse_args()
    task = get_task(args.task)
    with tempfile.TemporaryDirectory(prefix=f"trellis-{task.id}-") as scratch:  # removed when done
        world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, Path(scratch) / "repo")))
        model = load_model(args.model)
        attempts = 3
        config = SearchConfig(
            samples=1,
            budget=BudgetConfig(
                max_nodes=args.nodes,
                max_expansions_per_node=attempts,
                widen_after=0,
                enough_finished=1,
                agreement=1,  # the first finished answer ends the refine loop
                max_depth=6,
            ),
        )
        ctx = make_context(world, model, config)
        app = build_refine_search(ctx, attempts=attempts).compile()
        await app.ainvoke({}, {"recursion_limit": 20 * args.nodes})
        console = Console()
        console.print(TreeView(ctx.tree))
        console.print(summary(ctx.tree))
        final = ctx.tree.final
        if final is not None and final.node:
            await world.restore(ctx.tree.get(final.node).state_id or "")
            reward = await world.reward()
            console.print(f"hidden tests on the chosen solution: {reward.summary}")
        else:
            console.print("no solution was chosen")
        await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
