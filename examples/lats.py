"""LATS (Language Agent Tree Search) as a graph: UCT over values, reflections on failed terminals.

    START --> select --Send per node--> expand --> evaluate --> reflect --> backpropagate --> select ...
                 \\--(a good enough answer, or the budget spent)--> decide --> END

- select: UCT over each child's mean backed-up value (`selector.name="uct"`);
- expand: n samples of the solver at the selected node; the prompt carries the lessons of every
  failed branch so far (`reflection=True`) and nothing else (`feedback=False`);
- evaluate: LATS's value, a mix of the model's judgement (P(Yes) of the verifier, on top of the
  visible examples' results) and self-consistency (the share of samples that proposed the action,
  `critic.sc_weight`);
- reflect: a failed terminal (a rejected branch, a finished one valued under 0.5) gets a one- or
  two-sentence lesson from the `Reflector`; `engine.evaluate` asks for it when a reflector is given;
  the graph node reports the new lessons;
- backpropagate: every new value is added along the path to the root.

Run:  python examples/lats.py --task reverse_string [--model embedded] [--samples 3] [--nodes 16]
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from _support import command_line, report, search_context, task_world
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from rich.console import Console
from trellis.agents import CriticConfig
from trellis.search import engine
from trellis.search.config import BudgetConfig, SearchConfig, SelectorConfig
from trellis.search.engine import SearchContext

from trellis.models import load_model


class LatsState(TypedDict, total=False):
    iteration: int
    selected: list[str]
    stop: str
    lessons: Annotated[list[str], operator.add]
    """Every lesson drawn so far, in the order they were drawn."""
    chosen: str | None


def lats_config(*, samples: int = 3, nodes: int = 16, exploration: float = 1.0) -> SearchConfig:
    return SearchConfig(
        samples=samples,
        selector=SelectorConfig(name="uct", exploration=exploration),
        critic=CriticConfig(mode="verifier", sc_weight=0.3),
        reflection=True,
        feedback=False,
        # the first answer that passes the examples ends it (no wait for a second one that agrees)
        budget=BudgetConfig(max_nodes=nodes, max_depth=6, widen_after=0, enough_finished=2, agreement=1),
        # the solver says `finish` itself: a finish the examples fail is a failed terminal to reflect on
        finish_when_checked=False,
    )


def build_lats(ctx: SearchContext, console: Console | None = None) -> StateGraph:
    """The LATS loop over `ctx` (give it a `Reflector`: without one there are no lessons)."""

    async def select(state: LatsState) -> dict[str, Any]:
        await engine.initialise(ctx)
        iteration = state.get("iteration", 0)
        stop = engine.stop_reason(ctx, iteration)
        selected = [] if stop else engine.select(ctx, iteration)
        return {"iteration": iteration + 1, "selected": selected, "stop": stop or ("" if selected else "no open node")}

    def fan_out(state: LatsState) -> Any:
        if state["stop"]:
            return "decide"
        return [Send("expand", {"node": node, "iteration": state["iteration"]}) for node in state["selected"]]

    async def expand(task: dict[str, Any]) -> dict[str, Any]:
        await engine.expand(ctx, task["node"], task["iteration"])
        return {}

    async def evaluate(state: LatsState) -> dict[str, Any]:
        await engine.evaluate(ctx)
        return {}

    async def reflect(state: LatsState) -> dict[str, Any]:
        known = set(state.get("lessons", []))
        fresh = [n.reflection for n in ctx.tree if n.reflection and n.reflection not in known]
        for lesson in fresh:
            if console is not None:
                console.print(f"[yellow]lesson:[/] {lesson}")
        return {"lessons": list(dict.fromkeys(fresh))}

    async def backpropagate(state: LatsState) -> dict[str, Any]:
        engine.backpropagate(ctx)
        return {}

    async def decide(state: LatsState) -> dict[str, Any]:
        decision = await engine.discriminate(ctx)
        return {"chosen": decision.node_id}

    graph = StateGraph(LatsState)
    graph.add_node("select", select)
    graph.add_node("expand", expand)  # type: ignore[arg-type]  # takes a Send payload, not the state
    graph.add_node("evaluate", evaluate)
    graph.add_node("reflect", reflect)
    graph.add_node("backpropagate", backpropagate)
    graph.add_node("decide", decide)
    graph.add_edge(START, "select")
    graph.add_conditional_edges("select", fan_out, ["expand", "decide"])
    graph.add_edge("expand", "evaluate")
    graph.add_edge("evaluate", "reflect")
    graph.add_edge("reflect", "backpropagate")
    graph.add_edge("backpropagate", "select")
    graph.add_edge("decide", END)
    return graph


async def main() -> None:
    args = command_line(__doc__, samples=3, nodes=16)
    world = task_world(args.task)
    model = load_model(args.model)
    config = lats_config(samples=args.samples, nodes=args.nodes)
    ctx = search_context(world, model, config)
    console = Console()
    final = await build_lats(ctx, console).compile().ainvoke({}, {"recursion_limit": 10 * args.nodes})
    console.print(f"stopped: {final['stop']}")
    await report(ctx.tree, world, final["chosen"], console)
    await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
