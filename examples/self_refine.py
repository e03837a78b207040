"""Self-Refine as a graph: the solver drafts, the critic critiques, the solver refines with the critique.

    START --> solve --> critique --(accepted, finished, or out of rounds)--> decide --> END
                ^           |
                +-----------+ (the critic's feedback on the draft is in the solver's next prompt)

One trajectory, no tree search: each round continues from the latest step. The critic scores in
`score` mode (a verdict with written feedback) on top of the visible examples' results. What makes
this self-refine rather than a retry is the engine's hints: a node expanded again is told the
critic's advice on its own step (`SearchConfig.feedback`, on by default).

Run:  python examples/self_refine.py --task reverse_string [--model embedded] [--rounds 4]
"""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from _support import command_line, report, search_context, task_world
from langgraph.graph import END, START, StateGraph
from rich.console import Console
from trellis.agents import CriticConfig
from trellis.search import engine
from trellis.search.config import BudgetConfig, SearchConfig
from trellis.search.engine import SearchContext

from trellis.models import load_model


class RefineState(TypedDict, total=False):
    node: str
    """The latest step of the trajectory (the root before the first draft)."""
    round: int
    done: str
    """Why refining stopped ("" while it goes on)."""
    chosen: str | None
    """The node whose files are the answer."""


def build_self_refine(ctx: SearchContext, *, rounds: int = 4, accept: float = 0.9) -> StateGraph:
    """Draft and refine until the critic's value reaches `accept`, the solver finishes, or `rounds` pass."""

    async def solve(state: RefineState) -> dict[str, Any]:
        await engine.initialise(ctx)
        node, round_ = state.get("node", ctx.tree.root_id), state.get("round", 0)
        created = await engine.expand(ctx, node, round_)
        if not created:  # a budget ran out or the model failed: nothing new to critique
            return {"node": node, "round": round_ + 1, "done": "no new step"}
        return {"node": created[0], "round": round_ + 1, "done": ""}

    async def critique(state: RefineState) -> dict[str, Any]:
        await engine.evaluate(ctx)  # value, explanation and feedback on the new step
        engine.backpropagate(ctx)
        if state.get("done"):
            return {}
        step = ctx.tree.get(state["node"])
        if step.terminal and step.terminal_reason != "format error":
            return {"done": f"the solver stopped ({step.terminal_reason})"}
        if (step.reward or 0.0) >= accept:
            return {"done": f"the critic accepts ({step.reward:.2f})"}
        if state["round"] >= rounds:
            return {"done": f"{rounds} rounds spent"}
        if step.terminal:  # a reply that was no action: no draft to refine, so ask again from the one before
            return {"node": step.parent_id}
        return {}

    async def decide(state: RefineState) -> dict[str, Any]:
        decision = await engine.discriminate(ctx)  # a finished step, or else the best-valued changed one
        return {"chosen": decision.node_id}

    graph = StateGraph(RefineState)
    graph.add_node("solve", solve)
    graph.add_node("critique", critique)
    graph.add_node("decide", decide)
    graph.add_edge(START, "solve")
    graph.add_edge("solve", "critique")
    graph.add_conditional_edges("critique", lambda s: "decide" if s.get("done") else "solve", ["solve", "decide"])
    graph.add_edge("decide", END)
    return graph


def refine_config(rounds: int, *, feedback: bool = True) -> SearchConfig:
    """One sample per step, the critic's written verdict, no reflection (one trajectory has no other
    branch to learn from); `feedback=False` drops the critique from the prompts (a plain retry)."""
    return SearchConfig(
        samples=1,
        feedback=feedback,
        critic=CriticConfig(mode="score"),
        reflection=False,
        budget=BudgetConfig(max_nodes=rounds + 2, max_depth=rounds + 1),
        finish_when_checked=False,  # the critic's verdict ends the loop, not the examples alone
    )


async def main() -> None:
    args = command_line(__doc__, rounds=4)
    world = task_world(args.task)
    model = load_model(args.model)
    config = refine_config(args.rounds)
    ctx = search_context(world, model, config)
    app = build_self_refine(ctx, rounds=args.rounds).compile()
    final = await app.ainvoke({}, {"recursion_limit": 10 * args.rounds})
    Console().print(f"stopped: {final['done']}")
    await report(ctx.tree, world, final["chosen"])
    await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
