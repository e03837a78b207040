"""A search graph with an agent node of your own (a linter) and a selector of your own.

    START --> select --> expand --> lint --> evaluate --> backpropagate --> select ...
                 \\--(budget spent or an answer passes)--> decide --> END

- `Linter`, a role: checks solution.py the way pyflakes does first (it compiles, and every name a
  function reads is defined somewhere), without running it: a name misspelt in a branch the
  examples never reach passes the examples and still fails later;
- the `lint` node runs it on each new step and keeps the finding on the node (`meta["lint"]`);
- `LintAwareSolver`: the solver continuing from a step is told that step's finding;
- `LintAware`, a selector: UCT, minus `options["lint_penalty"]` for a child with a finding, so of two
  equally valued branches the clean one is taken further. Registered as `lint_aware`; a selector in
  a package of yours is named `package.module:LintAware` instead, with no registration.

Run:  python examples/linter_graph.py --task reverse_string [--model embedded] [--nodes 12]
"""

from __future__ import annotations

import asyncio
import builtins
import random
import symtable
from collections.abc import Sequence
from typing import Any, TypedDict

from _support import command_line, report, search_context, task_world
from langgraph.graph import END, START, StateGraph
from rich.console import Console
from trellis.agents import Proposal, Solver
from trellis.envs.tasks.world import SOLUTION, CodeTaskWorld
from trellis.search import engine
from trellis.search.config import BudgetConfig, SearchConfig, SelectorConfig
from trellis.search.engine import SearchContext
from trellis.search.selectors import UCT, Stats, register_selector

from trellis.models import load_model
from trellis.tools import ToolSpec
from trellis.tree import Node, Trajectory


class Linter:
    """A finding on Python source ("" when it is clean): a syntax error, or the names read but never defined."""

    async def __call__(self, source: str, path: str = SOLUTION) -> str:
        try:
            compile(source, path, "exec")
            top = symtable.symtable(source, path, "exec")
        except (SyntaxError, ValueError) as exc:
            return f"{path} does not compile: {exc}"
        defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()} | set(dir(builtins))
        undefined: set[str] = set()
        tables = [top]
        while tables:
            table = tables.pop()
            undefined |= {
                s.get_name()
                for s in table.get_symbols()
                if s.is_referenced() and s.is_global() and s.get_name() not in defined
            }
            tables.extend(table.get_children())
        if not undefined:
            return ""
        return f"{path} reads names that are defined nowhere: {', '.join(sorted(undefined))}"


class LintAwareSolver(Solver):
    """A solver that is told the linter's finding on the step it continues from."""

    async def __call__(
        self, task: str, tools: Sequence[ToolSpec], trajectory: Trajectory, *, hints: Sequence[str] = (), **options: Any
    ) -> list[Proposal]:
        finding = trajectory.leaf.meta.get("lint")
        if finding:
            hints = [f"The linter says: {finding}", *hints]
        return await super().__call__(task, tools, trajectory, hints=hints, **options)


class LintAware(UCT):
    """UCT, with `options["lint_penalty"]` (default 0.5) taken off a child the linter found fault with."""

    def score(self, parent: Node, child: Node, stats: Stats, rng: random.Random) -> float:
        penalty = float(self.config.options.get("lint_penalty", 0.5)) if child.meta.get("lint") else 0.0
        return super().score(parent, child, stats, rng) - penalty


register_selector("lint_aware", LintAware)


class LintState(TypedDict, total=False):
    iteration: int
    selected: list[str]
    stop: str
    chosen: str | None


def build_linted_search(ctx: SearchContext, world: CodeTaskWorld, linter: Linter) -> StateGraph:
    """MCTS over `ctx` with a `lint` node between expansion and evaluation (one node expanded at a time)."""

    async def select(state: LintState) -> dict[str, Any]:
        await engine.initialise(ctx)
        iteration = state.get("iteration", 0)
        stop = engine.stop_reason(ctx, iteration)
        selected = [] if stop else engine.select(ctx, iteration)
        return {"iteration": iteration + 1, "selected": selected, "stop": stop or ("" if selected else "no open node")}

    async def expand(state: LintState) -> dict[str, Any]:
        for node in state["selected"]:
            await engine.expand(ctx, node, state["iteration"])
        return {}

    async def lint(state: LintState) -> dict[str, Any]:
        for node in ctx.tree:
            if node.parent_id is None or node.state_id is None or "lint" in node.meta:
                continue
            await world.restore(node.state_id)
            node.meta["lint"] = await linter(await world.sandbox.read_file(SOLUTION))
        return {}

    async def evaluate(state: LintState) -> dict[str, Any]:
        await engine.evaluate(ctx)
        return {}

    async def backpropagate(state: LintState) -> dict[str, Any]:
        engine.backpropagate(ctx)
        return {}

    async def decide(state: LintState) -> dict[str, Any]:
        decision = await engine.discriminate(ctx)
        return {"chosen": decision.node_id}

    graph = StateGraph(LintState)
    steps = [select, expand, lint, evaluate, backpropagate, decide]
    for step in steps:
        graph.add_node(step.__name__, step)
    graph.add_edge(START, "select")
    graph.add_conditional_edges("select", lambda s: "decide" if s["stop"] else "expand", ["expand", "decide"])
    for before, after in [("expand", "lint"), ("lint", "evaluate"), ("evaluate", "backpropagate")]:
        graph.add_edge(before, after)
    graph.add_edge("backpropagate", "select")
    graph.add_edge("decide", END)
    return graph


def linted_config(*, samples: int = 2, nodes: int = 12, selector: str = "lint_aware") -> SearchConfig:
    return SearchConfig(
        samples=samples,
        selector=SelectorConfig(name=selector, options={"lint_penalty": 0.5}),
        # the first answer that passes the examples ends it (no wait for a second one that agrees)
        budget=BudgetConfig(max_nodes=nodes, max_depth=5, widen_after=0, agreement=1),
        # a step that passes the examples goes on, so the linter's finding reaches the prompt after it
        finish_when_checked=False,
    )


async def main() -> None:
    args = command_line(__doc__, samples=2, nodes=12)
    world = task_world(args.task)
    model = load_model(args.model)
    config = linted_config(samples=args.samples, nodes=args.nodes)
    ctx = search_context(world, model, config, solver=LintAwareSolver(model, config.solver))
    final = await build_linted_search(ctx, world, Linter()).compile().ainvoke({}, {"recursion_limit": 6 * args.nodes})
    console = Console()
    for node in ctx.tree:
        if node.meta.get("lint"):
            console.print(f"node {node.id}: {node.meta['lint']}")
    console.print(f"stopped: {final['stop']}")
    await report(ctx.tree, world, final["chosen"], console)
    await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
