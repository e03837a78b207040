"""Search methods compared on the shipped code tasks at an equal model-token budget, plus the
bookkeeping speed of the search itself.

Methods (all with the same model, critic and tools; solve rate = the chosen answer passes the
task's hidden tests, which no method sees during the search):

- linear:       one trajectory (one sample per step) until it finishes or the budget is spent
- best-of-3:    three independent linear trajectories with a third of the budget each; the
                finished one the critic scores highest is the answer
- mcts:         depth-aware UCT, 2 samples per expansion, progressive widening, critic feedback,
                reflections, debate among finished candidates
- mcts-no-feedback, mcts-no-reflection, mcts-no-debate: the same with one part switched off

Run:  python benchmarks/search.py [--tasks 4] [--budget 6000] [--model embedded] [--methods linear,mcts]
      python benchmarks/search.py --bookkeeping-only
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.catalog import TASKS, CodeTask
from trellis.envs.tasks.world import CodeTaskWorld, make_task_repository
from trellis.search.config import BudgetConfig, SearchConfig, SelectorConfig
from trellis.search.selectors import select_nodes

from trellis.models import load_model
from trellis.models.base import ChatModel
from trellis.run import run_search
from trellis.tree import Tree, Usage


def method_config(name: str, budget: int, seed: int) -> SearchConfig:
    common = {"seed": seed, "use_world_reward": False}
    if name == "linear":
        return SearchConfig(
            samples=1,
            feedback=False,
            reflection=False,
            budget=BudgetConfig(max_tokens=budget, max_nodes=200, enough_finished=1, max_depth=12),
            discriminator={"strategy": "mean"},
            **common,
        )  # type: ignore[arg-type]
    mcts = {
        "samples": 2,
        "budget": BudgetConfig(
            max_tokens=budget, max_nodes=200, max_depth=10, enough_finished=3, max_expansions_per_node=2, widen_after=2
        ),
        "selector": SelectorConfig(name="depth_uct"),
        **common,
    }
    if name == "mcts":
        return SearchConfig(**mcts)  # type: ignore[arg-type]
    if name == "mcts-no-feedback":
        return SearchConfig(feedback=False, **mcts)  # type: ignore[arg-type]
    if name == "mcts-no-reflection":
        return SearchConfig(reflection=False, **mcts)  # type: ignore[arg-type]
    if name == "mcts-no-debate":
        return SearchConfig(discriminator={"strategy": "mean"}, **mcts)  # type: ignore[arg-type]
    raise SystemExit(f"unknown method {name}")


async def one_search(
    task: CodeTask, model: ChatModel, critic: ChatModel, config: SearchConfig, folder: Path
) -> tuple[float, str | None, Usage, CodeTaskWorld, Tree]:
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, folder / "repo")))
    outcome = await run_search(
        task=world.task, worlds=[world], model=model, config=config, run_dir=folder / "run", critic_model=critic
    )
    from trellis.run import RunDir

    tree = RunDir(folder / "run").load_tree()
    final = outcome.final_node
    return (tree.get(final).reward or 0.0) if final else 0.0, final, outcome.usage, world, tree


async def solve(
    task: CodeTask, method: str, model: ChatModel, critic: ChatModel, budget: int, root: Path
) -> tuple[bool, Usage, float]:
    started = time.perf_counter()
    runs = 3 if method == "best-of-3" else 1
    best: tuple[float, str | None, CodeTaskWorld, Tree] | None = None
    usage = Usage()
    for seed in range(runs):
        config = method_config("linear" if method == "best-of-3" else method, budget // runs, seed)
        reward, final, used, world, tree = await one_search(task, model, critic, config, root / f"{method}-{seed}")
        usage = usage + used
        if final and (best is None or reward > best[0]):
            best = (reward, final, world, tree)
    solved = False
    if best is not None:
        _, final, world, tree = best
        await world.restore(tree.get(final or "0").state_id or "")
        checked = await world.reward()
        solved = checked.resolved
    return solved, usage, time.perf_counter() - started


def bookkeeping(nodes: int = 10_000, iterations: int = 200) -> tuple[float, float]:
    """Iterations per second of select + backpropagate on a random tree (no model, no world)."""
    rng = random.Random(0)
    tree = Tree.new()
    ids = ["0"]
    while len(tree) < nodes:
        parent = rng.choice(ids)
        node = tree.add_child(parent, len(tree.children(parent)))
        tree.get(parent).meta["expansions"] = [0]
        ids.append(node.id)
    for node_id in ids[1:]:
        tree.backpropagate(node_id, rng.random())
    budget = BudgetConfig(max_depth=10_000, max_nodes=10**9)
    started = time.perf_counter()
    for _ in range(iterations):
        chosen = select_nodes(tree, SelectorConfig(name="depth_uct"), budget, rng, k=1)
        for node_id in chosen:
            tree.backpropagate(node_id, rng.random())
    single = iterations / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(iterations // 4):
        for node_id in select_nodes(tree, SelectorConfig(name="depth_uct"), budget, rng, k=4):
            tree.backpropagate(node_id, rng.random())
    batched = (iterations // 4) / (time.perf_counter() - started)
    return single, batched


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=4, help="how many tasks, easiest first")
    parser.add_argument("--budget", type=int, default=6000, help="model tokens per task and method")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--methods", default="linear,best-of-3,mcts,mcts-no-feedback,mcts-no-reflection,mcts-no-debate")
    parser.add_argument("--bookkeeping-only", action="store_true")
    args = parser.parse_args()

    single, batched = bookkeeping()
    print(
        f"bookkeeping on a 10,000-node tree: {single:.0f} select+backpropagate iterations/s "
        f"({batched:.0f}/s picking 4 nodes per batch with virtual loss)"
    )
    if args.bookkeeping_only:
        return
    tasks = sorted(TASKS, key=lambda t: (t.level, t.id))[: args.tasks]
    model = load_model(args.model)
    critic = load_model(args.model) if args.model.split(":")[0] in ("embedded", "gguf") else model
    methods = args.methods.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for method in methods:
            solved, tokens, cached, prompt, seconds = 0, [], 0, 0, []
            for task in tasks:
                ok, usage, wall = await solve(task, method, model, critic, args.budget, Path(folder) / task.id)
                solved += ok
                tokens.append(usage.total_tokens)
                cached += usage.cached_tokens
                prompt += usage.prompt_tokens
                seconds.append(wall)
                print(
                    f"  {method:<20} {task.id:<22} solved={ok!s:<5} tokens={usage.total_tokens:>6} wall={wall:6.1f}s",
                    flush=True,
                )
            rows.append(
                (
                    method,
                    solved,
                    len(tasks),
                    statistics.mean(tokens),
                    cached / prompt if prompt else 0.0,
                    statistics.mean(seconds),
                )
            )
    await model.aclose()
    if critic is not model:
        await critic.aclose()
    print(
        f"\nmodel {model.name}; {len(tasks)} tasks ({', '.join(t.id for t in tasks)}); "
        f"budget {args.budget} tokens per task"
    )
    print(f"{'method':<20}{'solved':>8}{'tokens/task':>13}{'cached':>8}{'wall s/task':>13}")
    for method, ok, total, mean_tokens, share, wall in rows:
        print(f"{method:<20}{f'{ok}/{total}':>8}{mean_tokens:>13.0f}{share:>8.0%}{wall:>13.1f}")
    print(f"rerun: python benchmarks/search.py --tasks {args.tasks} --budget {args.budget} --model {args.model}")


if __name__ == "__main__":
    asyncio.run(main())
