"""Best-of-N with a verifier: N independent answers, checked, and the best one picked.

    START --> sample --> check --> pick --> END

- sample: N completions of the task's stub in one short prompt (the solver's focused `open`, with
  `completion_prompt`, the prompt a single plain call of the model gets), each a write of solution.py;
- check: each answer is written into a fresh copy of the start state; the world runs the docstring's
  examples on it, and the `Verifier` reads P(Yes) for "is this correct?" from the model's token
  log-probabilities;
- pick: the answer passing the most examples; among those, the one the verifier believes most
  (`--no-verifier` leaves the tie to the sampling order, to compare).

Run:  python examples/best_of_n.py --task reverse_string [--model embedded] [--n 4] [--no-verifier]
"""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

from _support import command_line, report, task_world
from langgraph.graph import END, START, StateGraph
from rich.console import Console
from trellis.agents import Proposal, Solver
from trellis.agents.prompts import completion_prompt
from trellis.agents.verifier import Verifier
from trellis.envs.tasks.world import SOLUTION, CodeTaskWorld

from trellis.models import load_model
from trellis.tree import Step, Tree
from trellis.world import Opening


class BestOfNState(TypedDict, total=False):
    proposals: list[Proposal]
    scores: dict[str, tuple[float, float]]
    """Per checked answer (a node of the tree): (share of examples passing, the verifier's P(Yes))."""
    chosen: str | None


def build_best_of_n(
    world: CodeTaskWorld, solver: Solver, verifier: Verifier | None, tree: Tree, *, n: int = 4
) -> StateGraph:
    """Sample `n` answers to `world`'s task and pick one; every checked answer is a child of `tree`'s root."""

    async def sample(state: BestOfNState) -> dict[str, Any]:
        await world.reset()
        tree.root.state_id = await world.snapshot()
        opening = Opening(prompt=completion_prompt(world.code_task.prompt), path=SOLUTION)
        return {"proposals": await solver.open(opening, world.tools, n=n, seed=0)}

    async def check(state: BestOfNState) -> dict[str, Any]:
        scores: dict[str, tuple[float, float]] = {}
        for index, proposal in enumerate(state["proposals"]):
            if proposal.action is None:  # no code in the reply: nothing to check
                continue
            await world.restore(tree.root.state_id or "")
            observation = await world.step(proposal.action)
            step = Step(action=proposal.action, observation=observation, completion=proposal.completion)
            node = tree.add_child(tree.root_id, index, step, state_id=await world.snapshot(), usage=proposal.usage)
            tests = observation.tests or {}
            passed = sum(1 for status in tests.values() if status == "PASSED")
            examples = passed / len(tests) if tests else 0.0
            believed = 0.0
            if verifier is not None and not observation.is_error:
                signals = [f"examples from the docstring: {passed} of {len(tests)} pass"]
                changes = await world.patch(node.state_id)
                p_yes, usage, _ = await verifier(world.task, tree.path(node.id), signals=signals, changes=changes)
                believed = p_yes or 0.0
                node.usage = node.usage + usage
            node.reward = examples
            node.explanation = f"{passed}/{len(tests)} examples pass, P(Yes) = {believed:.2f}"
            scores[node.id] = (examples, believed)
        return {"scores": scores}

    async def pick(state: BestOfNState) -> dict[str, Any]:
        scores = state["scores"]
        # the most examples passing, then the verifier's belief, then the first sampled
        best = max(scores, key=lambda node: (*scores[node], -tree.get(node).index), default=None)
        return {"chosen": best}

    graph = StateGraph(BestOfNState)
    graph.add_node("sample", sample)
    graph.add_node("check", check)
    graph.add_node("pick", pick)
    graph.add_edge(START, "sample")
    graph.add_edge("sample", "check")
    graph.add_edge("check", "pick")
    graph.add_edge("pick", END)
    return graph


async def main() -> None:
    args = command_line(__doc__, n=4, no_verifier=False)
    world = task_world(args.task)
    model = load_model(args.model)
    tree = Tree.new(task=world.task)
    verifier = None if args.no_verifier else Verifier(model)
    final = await build_best_of_n(world, Solver(model), verifier, tree, n=args.n).compile().ainvoke({})
    console = Console()
    for node, (examples, believed) in final["scores"].items():
        console.print(f"node {node}: examples {examples:.0%} pass, verifier P(Yes) {believed:.2f}")
    await report(tree, world, final["chosen"], console)
    await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
