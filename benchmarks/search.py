"""The yardstick for agents and search: solve rates on the shipped code tasks at an equal token budget.

Every method uses the same model; solved = the chosen answer passes the task's hidden tests, which no
method sees. Methods:

- direct:          the model alone: one greedy call, the function in a fenced code block, no tools
- direct-best-of-N: N sampled answers (the first greedy), the value function picks one (visible
                   examples run, then the verifier); it spends what its N samples and N values cost,
                   whatever --budget says (pick N for equal tokens)
- linear:          the agent, one trajectory (one sample per step, greedy but for focused repairs) until it finishes
- best-of-N:       N independent agent trajectories (the first greedy, the rest sampled), each
                   given an even share of what is left of the budget; the finished one with the
                   highest value is the answer
- mcts:            depth-aware UCT, 8 samples at the root and 2 per expansion below (first greedy),
                   progressive widening, feedback, reflections, the discriminator; an answer that
                   passes every example is finished, and the search goes on until two different
                   answers that pass them behave alike on probe calls (agreement picks the answer);
                   an answer that crashes on a probe call (an empty input) is repaired, shown the
                   crash, and does not end the search
- mcts-no-feedback, mcts-no-reflection, mcts-no-debate, mcts-no-verifier, mcts-no-opening,
  mcts-no-examples, mcts-no-repair, mcts-no-agreement (stop at the first answer that passes the
  examples), mcts-no-auto-finish (the solver says `finish` itself), mcts-no-crash-check (an answer
  that crashes on a probe input counts like any other), mcts-no-yield (the selector's widening score,
  not the yield of each, decides between fresh samples and repairs): the same with one part switched off
- default:         (SWE examples only) `trellis swe solve ID --seed S` exactly as the README runs it
- METHOD+key=value: a method with settings changed, e.g. `mcts+root_samples=4+selector.exploration=0.5`

Every agent method expands its root with the task's focused opening (the function's stub, or the
issue and the localised function) unless the method switches it off.

Each (task, seed) is a trial; rates come with a 95% Wilson interval. Tokens are prompt + completion
tokens of every model call (the prompt counted once per request, cached or not), the same on every
backend. JSON with every trial goes to --json, written after each trial; `--resume` reads it back and
runs only the trials it lacks (a trial cut short starts again), so a long run survives a kill.

Run:  python benchmarks/search.py [--tasks 35] [--seeds 3] [--first-seed 0] [--budget 8000] [--model embedded]
                                  [--methods direct,linear,mcts] [--json results.json] [--resume]
      python benchmarks/search.py --bookkeeping-only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from trellis.agents.critic import Critic, CriticConfig
from trellis.agents.prompts import completion_prompt
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.catalog import TASKS, CodeTask
from trellis.envs.tasks.world import SOLUTION, CodeTaskWorld, make_task_repository
from trellis.search.config import BudgetConfig, SearchConfig, SelectorConfig, linear_agent, token_budget_mcts
from trellis.search.run import RunDir, run_search
from trellis.search.selectors import select_nodes

from trellis.models import load_model
from trellis.models.base import ChatModel
from trellis.tree import Action, Message, Observation, Step, Tree, Usage
from trellis.world import Opening

ABLATIONS = (
    "mcts-no-feedback",
    "mcts-no-reflection",
    "mcts-no-debate",
    "mcts-no-verifier",
    "mcts-no-opening",
    "mcts-no-examples",
    "mcts-no-repair",
    "mcts-no-agreement",
    "mcts-no-auto-finish",
    "mcts-no-crash-check",
    "mcts-no-yield",
)
DEFAULT_METHODS = ("direct", "direct-best-of-4", "linear", "best-of-3", "mcts", *ABLATIONS)


@dataclass
class Trial:
    method: str
    task: str
    level: int
    seed: int
    solved: bool
    tokens: int
    seconds: float
    nodes: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens a prefix cache served (what the embedded backend reports; 0 elsewhere)."""
    samples: list[dict[str, Any]] | None = None
    """direct-best-of-N: each answer in order (its tokens with its value call, its share of passing
    examples, its value, and whether the hidden tests pass it), so best-of-k for every k <= N can be
    read from one run (`fewer_samples`)."""


def method_config(name: str, budget: int, seed: int, *, greedy: bool = True) -> SearchConfig:
    """The configuration of a method; `METHOD+key=value+...` changes settings of it (dotted keys reach
    into sections: `mcts+root_samples=4+selector.exploration=0.5`)."""
    name, *changes = name.split("+")
    config = _base_config(name, budget, seed, greedy=greedy)
    if not changes:
        return config
    data = config.model_dump(mode="json")
    for change in changes:
        key, equals, value = change.partition("=")
        if not equals:
            raise SystemExit(f"a method change is key=value, not {change!r}")
        *sections, last = key.split(".")
        target = data
        for section in sections:
            target = target.setdefault(section, {})
        target[last] = yaml.safe_load(value)
    return SearchConfig.model_validate(data)


def _base_config(name: str, budget: int, seed: int, *, greedy: bool = True) -> SearchConfig:
    if name == "linear":
        return linear_agent(budget, seed, solver={"greedy_first": greedy})

    def mcts(**changes: Any) -> SearchConfig:
        return token_budget_mcts(budget, seed, **changes)

    if name in ("mcts", "mcts-no-examples"):
        return mcts()
    if name == "mcts-no-opening":  # the root sees the agent's prompt like every other node
        return mcts(opening=False)
    if name == "mcts-no-repair":  # every step below the opening in the agent's prompt
        return mcts(focused_repair=False)
    if name == "mcts-no-agreement":  # the first answer that passes the examples ends the search
        return mcts(budget=token_budget_mcts(budget, seed).budget.model_copy(update={"agreement": 1}))
    if name == "mcts-no-crash-check":
        return mcts(budget=token_budget_mcts(budget, seed).budget.model_copy(update={"crash_free": False}))
    if name == "mcts-no-auto-finish":
        return mcts(finish_when_checked=False)
    if name == "mcts-no-yield":  # the selector's widening score decides between fresh samples and repairs
        return mcts(allocate_by_yield=False)
    if name == "mcts-no-feedback":
        return mcts(feedback=False)
    if name == "mcts-no-reflection":
        return mcts(reflection=False)
    if name == "mcts-no-debate":
        return mcts(discriminator={"strategy": "mean"})
    if name == "mcts-no-verifier":  # execution signals only: no value call at all
        return mcts(critic={"mode": "none"})
    raise SystemExit(f"unknown method {name}")


def world_for(task: CodeTask, folder: Path, *, examples: bool = True) -> CodeTaskWorld:
    return CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, folder)), visible_examples=examples)


async def hidden_check(world: CodeTaskWorld, state: str | None) -> bool:
    return state is not None and (await world.grade(state)).resolved


def code_block(text: str, entry_point: str) -> str:
    """The reply's code: the first fenced block that defines the entry point, else the first block
    (the whole reply when it has none). Models often add a usage block after the function."""
    blocks = re.findall(r"```[a-zA-Z0-9_+-]*[^\n]*\n(.*?)(?:```|$)", text, re.S)
    defining = [b for b in blocks if re.search(rf"^\s*def {re.escape(entry_point)}\b", b, re.M)]
    return (defining or blocks or [text])[0]


async def direct(
    task: CodeTask, model: ChatModel, folder: Path, samples: int, seed: int, record: list[dict[str, Any]] | None = None
) -> tuple[bool, Usage]:
    """The model alone: `samples` answers (the first greedy); with more than one, the value picks.
    `record` receives each answer's tokens, examples, value and hidden verdict (see `Trial.samples`)."""
    messages = [Message(role="user", content=completion_prompt(task.prompt))]
    (first,) = await model.complete(messages, n=1, temperature=0.0, max_tokens=512, seed=seed)
    replies = [first]
    if samples > 1:
        replies += await model.complete(messages, n=samples - 1, temperature=0.8, max_tokens=512, seed=seed + 1)
    usage = Usage()
    for reply in replies:
        usage = usage + reply.usage
    world = world_for(task, folder)
    await world.reset()
    scored: list[tuple[float, int, str]] = []
    critic = Critic(model, CriticConfig(verify_checked=True))  # N answers: the verifier breaks ties
    for index, reply in enumerate(replies):
        await world.restore(world.workspace.base_tree)
        code = code_block(reply.text, task.entry_point)
        # the answer as the model wrote it: no tool tidies it up (the agent's write_file would)
        await world.sandbox.write_file("solution.py", code)
        state = await world.snapshot()
        if samples == 1:
            return await hidden_check(world, state), usage
        tests, summary = await world.check_examples()
        observation = Observation(text=summary, tests=tests)
        hard = sum(1 for s in tests.values() if s == "PASSED") / len(tests) if tests else None
        tree = Tree.new()
        written = Action(tool="write_file", args={"path": "solution.py", "content": code})
        child = tree.add_child("0", 0, Step(action=written, observation=observation))
        trajectory = tree.path(child.id)
        evaluation = await critic(
            task.prompt, trajectory, signals=[], hard=hard, changes=await world.patch(state), seed=seed + index
        )
        usage = usage + evaluation.usage
        scored.append((evaluation.value, -index, state))
        if record is not None:
            record.append(
                {
                    "tokens": reply.usage.total_tokens + evaluation.usage.total_tokens,
                    "examples": hard,
                    "value": evaluation.value,
                    "solved": await hidden_check(world, state),
                }
            )
    _, _, best = max(scored)
    return await hidden_check(world, best), usage


async def agent(
    task: CodeTask, method: str, model: ChatModel, budget: int, seed: int, folder: Path
) -> tuple[bool, Usage, int]:
    runs = int(method.split("+")[0].split("-")[-1]) if method.startswith("best-of-") else 1
    best: tuple[float, CodeTaskWorld, str | None] | None = None
    usage, nodes = Usage(), 0
    for run in range(runs):
        base = "linear" + method[len(method.split("+")[0]) :] if method.startswith("best-of-") else method
        # what is left of the budget, shared by the runs still to come: a run that overshot its share
        # leaves less to the next, so N runs together overshoot by at most one expansion too
        left = budget - usage.total_tokens
        if left <= 0:
            break
        config = method_config(base, max(1, left // (runs - run)), seed * 100 + run, greedy=run == 0)
        world = world_for(task, folder / f"repo{run}", examples=method != "mcts-no-examples")
        opening = Opening(prompt=completion_prompt(task.prompt), path=SOLUTION) if config.opening else None
        outcome = await run_search(
            task=world.task, worlds=[world], model=model, config=config, run_dir=folder / f"run{run}", opening=opening
        )
        tree = RunDir(folder / f"run{run}").load_tree()
        usage, nodes = usage + outcome.usage, nodes + len(tree)
        final = outcome.final_node
        if final is None:
            continue
        node = tree.get(final)
        finished = node.terminal_reason == "finished"
        score = (1.0 if finished else 0.0) + (node.reward or 0.0)
        if best is None or score > best[0]:
            best = (score, world, node.state_id)
    solved = best is not None and await hidden_check(best[1], best[2])
    return solved, usage, nodes


SWE_EXAMPLES = ("example__tinycalc-1", "example__textkit-1")
SWE_METHODS = ("default", "linear", "mcts", *ABLATIONS[:5], "mcts-no-repair")


async def swe_trial(instance_id: str, method: str, model_spec: str, budget: int, seed: int, root: Path) -> Trial:
    """One shipped SWE example through `trellis swe solve` (offline environment), graded by its hidden tests."""
    folder = fresh_folder(root / f"{method}-{instance_id}-{seed}")
    if method.split("+")[0] == "default":  # `trellis swe solve ID` as the README runs it, with this seed
        settings = ["--seed", str(seed)]
        for change in method.split("+")[1:]:
            settings += ["--set", change]
    else:
        config = method_config(method, budget, seed)
        (folder / "config.yaml").write_text(json.dumps(config.model_dump(mode="json")))  # JSON is YAML
        settings = ["--config", str(folder / "config.yaml")]
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trellis.cli", "swe", "solve", instance_id, "--offline", "--model", model_spec,
        *settings, "--run", str(folder / "run"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    seconds = time.perf_counter() - started
    report = folder / "run" / "report.json"
    if process.returncode != 0 or not report.exists():  # counted as unsolved, with the reason shown
        print(f"  trellis swe solve {instance_id} failed: {err.decode()[-600:]}", flush=True)
        return Trial(method, instance_id, 0, seed, False, 0, seconds, 0)
    resolved = bool(json.loads(report.read_text()).get("resolved"))
    tree = RunDir(folder / "run").load_tree()
    usage = tree.total_usage()
    return Trial(
        method, instance_id, 0, seed, resolved, usage.total_tokens, seconds, len(tree),
        usage.prompt_tokens, usage.cached_tokens,
    )  # fmt: skip


def fresh_folder(folder: Path) -> Path:
    """A trial's folder, emptied of what a trial cut short there left."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def done_trials(path: Path | None, budget: int, model: str) -> list[Trial]:
    """The trials a `--json` file already holds, for `--resume`; a file from another budget or model
    is refused rather than mixed in."""
    if path is None:
        raise SystemExit("--resume reads the trials done so far from --json: give the file")
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        trials = [Trial(**row) for row in data["trials"]] if isinstance(data, dict) else [Trial(**row) for row in data]
    except (ValueError, TypeError, KeyError) as exc:
        raise SystemExit(f"{path} does not hold this benchmark's trials ({exc}); give another --json") from exc
    if isinstance(data, dict) and (data.get("budget"), data.get("model")) != (budget, model):
        raise SystemExit(
            f"{path} holds trials at budget {data.get('budget')} with model {data.get('model')}, "
            f"not {budget} with {model}: resume with the same settings or give another --json"
        )
    print(f"resuming: {len(trials)} trials read from {path}")
    return trials


async def trial(task: CodeTask, method: str, model: ChatModel, budget: int, seed: int, root: Path) -> Trial:
    started = time.perf_counter()
    folder = fresh_folder(root / f"{method}-{task.id}-{seed}")
    nodes = 0
    if method == "direct":
        solved, usage = await direct(task, model, folder, 1, seed)
    elif method.startswith("direct-best-of-"):
        record: list[dict[str, Any]] = []
        solved, usage = await direct(task, model, folder, int(method.rsplit("-", 1)[1]), seed, record)
        seconds = time.perf_counter() - started
        return Trial(
            method, task.id, task.level, seed, solved, usage.total_tokens, seconds, nodes,
            usage.prompt_tokens, usage.cached_tokens, record,
        )  # fmt: skip
    else:
        solved, usage, nodes = await agent(task, method, model, budget, seed, folder)
    seconds = time.perf_counter() - started
    return Trial(
        method, task.id, task.level, seed, solved, usage.total_tokens, seconds, nodes,
        usage.prompt_tokens, usage.cached_tokens,
    )  # fmt: skip


def fewer_samples(trials: list[Trial]) -> str:
    """direct-best-of-N read at every k <= N: the first k answers, picked the same way (highest value,
    the earlier on a tie), so a method can be set beside best-of-k at the tokens it spent."""
    rows = [t for t in trials if t.samples]
    if not rows:
        return ""
    most = min(len(t.samples or []) for t in rows)
    lines = [f"{'k':>3}{'solved':>9}{'rate':>7}{'95% interval':>16}{'tokens/task':>13}"]
    for k in range(1, most + 1):
        solved, tokens = 0, []
        for trial in rows:
            first = (trial.samples or [])[:k]
            best = max(range(k), key=lambda i: (first[i]["value"], -i))
            solved += bool(first[best]["solved"])
            tokens.append(sum(int(sample["tokens"]) for sample in first))
        low, high = wilson(solved, len(rows))
        lines.append(
            f"{k:>3}{f'{solved}/{len(rows)}':>9}{solved / len(rows):>7.0%}{f'{low:.0%}-{high:.0%}':>16}"
            f"{statistics.mean(tokens):>13.0f}"
        )
    return "\n".join(lines)


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if trials == 0:
        return 0.0, 0.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def table(trials: list[Trial], methods: list[str]) -> str:
    lines = [
        f"{'method':<20}{'solved':>9}{'rate':>7}{'95% interval':>16}{'tokens/task':>13}{'cached':>8}{'wall s/task':>13}"
    ]
    for method in methods:
        rows = [t for t in trials if t.method == method]
        if not rows:
            continue
        ok = sum(t.solved for t in rows)
        low, high = wilson(ok, len(rows))
        lines.append(
            f"{method:<20}{f'{ok}/{len(rows)}':>9}{ok / len(rows):>7.0%}{f'{low:.0%}-{high:.0%}':>16}"
            f"{statistics.mean(t.tokens for t in rows):>13.0f}{_cached(rows):>8}"
            f"{statistics.mean(t.seconds for t in rows):>13.1f}"
        )
    return "\n".join(lines)


def _cached(rows: list[Trial]) -> str:
    """The share of prompt tokens a prefix cache served, over the rows ("-" where none was reported)."""
    prompt = sum(t.prompt_tokens for t in rows)
    return f"{sum(t.cached_tokens for t in rows) / prompt:.0%}" if prompt else "-"


def bookkeeping(nodes: int = 10_000, iterations: int = 200) -> tuple[float, float]:
    """Iterations per second of select + backpropagate on a random tree (no model, no world)."""
    rng = random.Random(0)
    tree = Tree.new()
    ids = ["0"]
    while len(tree) < nodes:
        parent = rng.choice(ids)
        node = tree.add_child(parent, len(tree.children(parent)))
        tree.get(parent).expansions = [0]
        ids.append(node.id)
    for node_id in ids[1:]:
        tree.backpropagate(node_id, rng.random())
    budget = BudgetConfig(max_depth=10_000, max_nodes=10**9)
    started = time.perf_counter()
    for _ in range(iterations):
        for node_id in select_nodes(tree, SelectorConfig(name="depth_uct"), budget, rng, k=1):
            tree.backpropagate(node_id, rng.random())
    single = iterations / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(iterations // 4):
        for node_id in select_nodes(tree, SelectorConfig(name="depth_uct"), budget, rng, k=4):
            tree.backpropagate(node_id, rng.random())
    batched = (iterations // 4) / (time.perf_counter() - started)
    return single, batched


def pick_tasks(count: int, ids: str | None) -> list[CodeTask]:
    if ids:
        wanted = ids.split(",")
        unknown = [i for i in wanted if i not in {t.id for t in TASKS}]
        if unknown:
            raise SystemExit(f"unknown tasks {unknown}")
        return [t for t in TASKS if t.id in wanted]
    # a spread over the levels: round-robin from each level, easiest first
    by_level: dict[int, list[CodeTask]] = {}
    for task in sorted(TASKS, key=lambda t: (t.level, t.id)):
        by_level.setdefault(task.level, []).append(task)
    order: list[CodeTask] = []
    while any(by_level.values()):
        for level in sorted(by_level):
            if by_level[level]:
                order.append(by_level[level].pop(0))
    return order[:count]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=len(TASKS), help="how many tasks, spread over the levels")
    parser.add_argument("--task-ids", default=None, help="comma-separated task ids (instead of --tasks)")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds, counting from --first-seed")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (seed 1 alone: --first-seed 1)")
    parser.add_argument("--budget", type=int, default=8000, help="model tokens per task and method")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--json", type=Path, default=None, help="write every trial here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here (default: a temp folder)")
    parser.add_argument(
        "--resume", action="store_true", help="read the trials --json already holds and run only the missing ones"
    )
    parser.add_argument("--swe", action="store_true", help="also the shipped SWE examples (linear and mcts methods)")
    parser.add_argument("--swe-only", action="store_true", help="only the shipped SWE examples")
    parser.add_argument("--bookkeeping-only", action="store_true")
    args = parser.parse_args()

    single, batched = bookkeeping()
    print(
        f"bookkeeping on a 10,000-node tree: {single:.0f} select+backpropagate iterations/s "
        f"({batched:.0f}/s picking 4 nodes per batch with virtual loss)"
    )
    if args.bookkeeping_only:
        return
    tasks = [] if args.swe_only else pick_tasks(args.tasks, args.task_ids)
    methods = args.methods.split(",")
    trials = done_trials(args.json, args.budget, args.model) if args.resume else []
    done = {(t.method, t.task, t.seed) for t in trials}
    model = load_model(args.model)

    def record(result: Trial) -> None:
        trials.append(result)
        print(
            f"  {result.method:<20} {result.task:<22} seed={result.seed} solved={result.solved!s:<5} "
            f"tokens={result.tokens:>6} nodes={result.nodes:>3} wall={result.seconds:6.1f}s",
            flush=True,
        )
        if args.json:
            data = {"budget": args.budget, "model": args.model, "trials": [asdict(t) for t in trials]}
            partial = args.json.with_suffix(".partial")
            partial.write_text(json.dumps(data, indent=1))
            partial.replace(args.json)  # whole or not at all

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep) if args.keep else Path(scratch)
        for seed in seeds:
            for task in tasks:
                for method in methods:
                    if (method, task.id, seed) not in done:
                        record(await trial(task, method, model, args.budget, seed, folder))
            for instance_id in SWE_EXAMPLES if args.swe or args.swe_only else ():
                for method in [m for m in methods if m.split("+")[0] in SWE_METHODS]:
                    if (method, instance_id, seed) not in done:
                        record(await swe_trial(instance_id, method, args.model, args.budget, seed, folder))
    await model.aclose()
    print(
        f"\nmodel {model.name}; {len(tasks)} tasks x {args.seeds} seeds; budget {args.budget} tokens per task; "
        "solved = the chosen answer passes the hidden tests"
    )
    if tasks:
        planned = {task.id for task in tasks}
        print(table([t for t in trials if t.task in planned and t.seed in seeds], methods))
        for method in [m for m in methods if m.startswith("direct-best-of-")]:
            fewer = fewer_samples([t for t in trials if t.method == method and t.task in planned and t.seed in seeds])
            if fewer:
                print(f"\n{method} with its first k answers only (best-of-k at fewer tokens):\n{fewer}")
    if any(t.task in SWE_EXAMPLES for t in trials):
        print("\nshipped SWE examples (graded by their hidden tests):")
        print(table([t for t in trials if t.task in SWE_EXAMPLES and t.seed in seeds], methods))
    rerun = f"python benchmarks/search.py --budget {args.budget} --model {args.model} --seeds {args.seeds}"
    rerun += f" --first-seed {args.first_seed}" if args.first_seed else ""
    if args.swe_only:
        rerun += " --swe-only"
    else:
        rerun += f" --task-ids {args.task_ids}" if args.task_ids else f" --tasks {args.tasks}"
        rerun += " --swe" if args.swe else ""
    print(f"rerun: {rerun} --methods {args.methods}")


if __name__ == "__main__":
    asyncio.run(main())
