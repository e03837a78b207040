"""Question answering by search: exact match with and without ReSeek's judge, linear and MCTS.

Each question of the synthetic multi-hop corpus (invented entities: a model cannot answer from
memory; `--data` names other questions, such as HotpotQA's dev file in its distractor setting,
`--data file:hotpot_dev_distractor_v1.json`) is searched with the `search`/`answer` tools; the
chosen answer is scored by exact match and F1 against the gold answers, which the search never
sees. Methods:

- direct:       the model alone: the question, no passages, one greedy answer
- linear:       one trajectory, one greedy sample per step
- linear-judge: the same, each reply judging the observation before it; observations judged
                useless leave later prompts
- mcts:         depth-aware UCT, 2 samples per expansion, the value from a verifier
- mcts-judge:   the same with the judge

Besides EM and F1: prompt tokens per question (what the judge's dropped observations save), the
share of prompt tokens served from the prefix cache (what dropping text costs: a changed prefix
is evaluated again), and the judge's verdicts (how many, how many Yes, and their instructive
reward where a gold answer tells which passages were useful).

Run:  python benchmarks/qa.py [--questions 20] [--corpus-seed 0 | --data SPEC] [--model embedded]
                              [--methods direct,linear,linear-judge,mcts,mcts-judge] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trellis.envs.qa import Question, exact_match, f1_score, judge_reward, qa_worlds
from trellis.envs.qa.judge import search_judgements
from trellis.envs.qa.sources import QASource, open_source
from trellis.search.config import BudgetConfig, SearchConfig, SelectorConfig, linear_agent
from trellis.search.run import RunDir, run_search

from trellis.errors import UserError
from trellis.models import load_model
from trellis.models.base import ChatModel
from trellis.tree import Message

METHODS = ("direct", "linear", "linear-judge", "mcts", "mcts-judge")
DIRECT_PROMPT = "Answer the question with a name, a place or a year only.\n\nQuestion: {question}"


@dataclass
class Trial:
    method: str
    question: str
    kind: str
    em: float
    f1: float
    prompt_tokens: int
    cached_tokens: int
    tokens: int
    seconds: float
    verdicts: int = 0
    kept: int = 0
    judge_reward: float = 0.0


def method_config(method: str, seed: int) -> SearchConfig:
    judge = method.endswith("-judge")
    if method.startswith("linear"):
        # no token budget: 12 nodes of a trajectory at most 6 steps deep, the steps valued by nothing
        return linear_agent(None, seed, max_nodes=12, max_depth=6, solver={"judge": judge}, critic={"mode": "none"})
    return SearchConfig(
        seed=seed,
        samples=2,
        solver={"judge": judge},
        selector=SelectorConfig(name="depth_uct"),
        budget=BudgetConfig(max_nodes=16, max_depth=6, enough_finished=2, max_expansions_per_node=2),
    )


async def direct(question: Question, model: ChatModel) -> tuple[str, Any]:
    messages = [Message(role="user", content=DIRECT_PROMPT.format(question=question.question))]
    (reply,) = await model.complete(messages, n=1, temperature=0.0, max_tokens=32, seed=0)
    return reply.text.strip().splitlines()[0] if reply.text.strip() else "", reply.usage


async def trial(source: QASource, question: Question, method: str, model: ChatModel, seed: int, root: Path) -> Trial:
    started = time.perf_counter()
    if method == "direct":
        answer, usage = await direct(question, model)
        return Trial(
            method,
            question.id,
            question.type,
            exact_match(answer, question.answers),
            f1_score(answer, question.answers),
            usage.prompt_tokens,
            usage.cached_tokens,
            usage.total_tokens,
            time.perf_counter() - started,
        )
    worlds = qa_worlds(source.corpus_of(question.id), question.id, 1, index=source.index_of(question.id))
    folder = root / f"{method}-{question.id}-{seed}"
    outcome = await run_search(
        task=worlds[0].task, worlds=worlds, model=model, config=method_config(method, seed), run_dir=folder
    )
    tree = RunDir(folder).load_tree()
    usage = tree.total_usage()
    answer = outcome.patch
    result = Trial(
        method,
        question.id,
        question.type,
        exact_match(answer, question.answers) if answer else 0.0,
        f1_score(answer, question.answers) if answer else 0.0,
        usage.prompt_tokens,
        usage.cached_tokens,
        usage.total_tokens,
        time.perf_counter() - started,
    )
    if outcome.final_node is not None:  # the verdicts along the chosen trajectory, scored against the gold
        steps = tree.path(outcome.final_node).steps
        judged = [(observation, verdict) for _, observation, verdict in search_judgements(steps) if verdict]
        if judged:
            right = exact_match(answer, question.answers) == 1.0 if answer else False
            result.verdicts = len(judged)
            result.kept = sum(1 for _, verdict in judged if verdict.keep)  # type: ignore[union-attr]
            result.judge_reward = judge_reward(judged, question.answers, right).total
    return result


def table(trials: list[Trial], methods: list[str]) -> str:
    head = f"{'method':<14}{'EM':>8}{'F1':>7}{'prompt tok/q':>14}{'cached':>8}{'tok/q':>8}{'verdicts':>10}"
    lines = [head + f"{'kept':>6}{'judge r':>9}{'s/q':>7}"]
    for method in methods:
        rows = [t for t in trials if t.method == method]
        if not rows:
            continue
        solved = sum(t.em for t in rows)
        prompt = statistics.mean(t.prompt_tokens for t in rows)
        cached = sum(t.cached_tokens for t in rows) / max(sum(t.prompt_tokens for t in rows), 1)
        verdicts = sum(t.verdicts for t in rows)
        kept = sum(t.kept for t in rows)
        reward = statistics.mean(t.judge_reward for t in rows) if verdicts else 0.0
        lines.append(
            f"{method:<14}{f'{solved:g}/{len(rows)}':>8}{statistics.mean(t.f1 for t in rows):>7.2f}{prompt:>14.0f}"
            f"{cached:>8.0%}{statistics.mean(t.tokens for t in rows):>8.0f}{verdicts:>10}{kept:>6}{reward:>9.2f}"
            f"{statistics.mean(t.seconds for t in rows):>7.1f}"
        )
    return "\n".join(lines)


def pick(source: QASource, count: int) -> list[Question]:
    """Bridge and comparison questions alternately, in corpus order."""
    bridge = [q for q in source.questions if q.type == "bridge"]
    comparison = [q for q in source.questions if q.type != "bridge"]
    chosen: list[Question] = []
    while len(chosen) < count and (bridge or comparison):
        for pool in (bridge, comparison):
            if pool and len(chosen) < count:
                chosen.append(pool.pop(0))
    return chosen


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--corpus-seed", type=int, default=0)
    parser.add_argument(
        "--data", default=None, help="synthetic[:SEED], corpus:PATH, file:PATH (HotpotQA format) or hf:NAME[@SPLIT]"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the searches")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", type=Path, default=None, help="write every trial here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        sys.exit(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    data = args.data or f"synthetic:{args.corpus_seed}"
    try:
        source = open_source(data)
    except UserError as exc:
        sys.exit(f"error: {exc}")
    questions = pick(source, args.questions)
    model = load_model(args.model)
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.keep) if args.keep else Path(scratch)
        for question in questions:
            for method in methods:
                result = await trial(source, question, method, model, args.seed, root)
                trials.append(result)
                print(
                    f"  {method:<13} {question.id} {question.type:<10} EM={result.em:g} F1={result.f1:.2f} "
                    f"tokens={result.tokens:>6} verdicts={result.verdicts} wall={result.seconds:5.1f}s",
                    flush=True,
                )
                if args.json:
                    args.json.write_text(json.dumps([asdict(t) for t in trials], indent=1))
    await model.aclose()
    print(f"\nmodel {model.name}; {len(questions)} questions of {data}; EM = exact match")
    print(table(trials, methods))
    print(
        f"rerun: python benchmarks/qa.py --questions {args.questions} --data {data} "
        f"--seed {args.seed} --model {args.model} --methods {args.methods}"
    )


if __name__ == "__main__":
    asyncio.run(main())
