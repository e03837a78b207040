"""Agent-R on the shipped code tasks: one full iteration (search, revise, train, reload, evaluate).

The fixed split by level (`split:train`, 25 tasks, and `split:eval`, 10 tasks: two of each level held
out) is searched with MCTS (UCT, c = 0.25, the revert tool offered, the focused opening); revision
trajectories labelled by the hidden tests train a LoRA adapter, and the base plus adapter is evaluated
on the held-out tasks against the base alone (iteration 0). Solved = the final answer passes the
hidden tests. Everything is kept in --out; rerunning the same command resumes a killed run.

Run:  python benchmarks/agent_r.py --out runs/agent-r [--train split:train] [--eval split:eval]
                                   [--iterations 1] [--budget 8000] [--seeds 1] [--model embedded] [--base SPEC]
      python benchmarks/agent_r.py --out /tmp/agent-r-smoke --train split:train:2 --eval split:eval:1 --budget 1500
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
from pathlib import Path

from rich.console import Console
from trellis.train.adapters import default_base
from trellis.train.loop import AgentRLoop, LoopConfig, iteration_table
from trellis.train.pairs import PairConfig
from trellis.train.revise import ReviseConfig
from trellis.train.selection import disjoint, select_tasks
from trellis.train.sft import SFTConfig, base_source, require_train_extra

from trellis.errors import UserError

GPU_MODEL = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
"""The embedded model's own weights in Hugging Face form: the same model, served by vLLM on a GPU."""
LOCAL_COPY = "~/models/Qwen2.5-Coder-0.5B-Instruct"
"""Where the GPU variant keeps those weights: vLLM serves them and torch trains the adapter on them."""


def gpu_commands(args: argparse.Namespace) -> str:
    """The same loop on a GPU machine: vLLM serves the search (adapters loaded at run time), torch trains."""
    serve = (
        f"VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve {GPU_MODEL} --host 127.0.0.1 --port 8000 "
        "--enable-prefix-caching --enable-lora --max-lora-rank 64 &"
    )
    run = (
        f"python benchmarks/agent_r.py --out {shlex.quote(str(args.out))}-gpu --train {args.train} --eval {args.eval} "
        f"--iterations {args.iterations} --budget {args.budget} --seeds {args.seeds} "
        f"--alpha {args.alpha:g} --beta {args.beta:g} --max-pairs {args.max_pairs} "
        f"--model openai:http://127.0.0.1:8000/v1#{GPU_MODEL} --base {LOCAL_COPY}"
    )
    return f"huggingface-cli download {GPU_MODEL} --local-dir {LOCAL_COPY}\n{serve}\n{run}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the loop's folder (rerun to resume)")
    parser.add_argument("--train", default="split:train", help="training tasks (see `trellis agent-r --help`)")
    parser.add_argument("--eval", default="split:eval", help="held-out tasks")
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--budget", type=int, default=8000, help="model tokens per search")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--model", default="embedded", help="search model spec")
    parser.add_argument("--base", default=None, help="what the adapter trains on (default: the search model)")
    parser.add_argument("--alpha", type=float, default=0.5, help="pairs: a good leaf's value must exceed this")
    parser.add_argument("--beta", type=float, default=0.2, help="pairs: the good leaf's lead over the bad one")
    parser.add_argument("--max-pairs", type=int, default=4, help="most pairs from one tree")
    args = parser.parse_args()

    # task selections such as split:train:2 are not emoji codes; a log file gets the table's full width
    console = Console(emoji=False, width=None if sys.stdout.isatty() else 160)
    try:
        train, held = select_tasks(args.train, "--train"), select_tasks(args.eval, "--eval")
        disjoint(train, held)
        base = default_base(args.model, args.base)
        base_source(base)
        require_train_extra()
    except UserError as exc:
        sys.exit(f"error: {exc}")
    config = LoopConfig(
        train=[t.id for t in train],
        eval=[t.id for t in held],
        model=args.model,
        base=base,
        budget=args.budget,
        seeds=args.seeds,
        sft=SFTConfig(max_length=4096),
        revise=ReviseConfig(pairs=PairConfig(alpha=args.alpha, beta=args.beta, max_pairs=args.max_pairs)),
    )
    started = time.perf_counter()
    loop = AgentRLoop(config, args.out, progress=lambda line: console.print(line, highlight=False, markup=False))
    records = asyncio.run(loop.run(args.iterations))
    seconds = time.perf_counter() - started
    console.print(iteration_table(records))
    console.print(
        f"{len(train)} training and {len(held)} held-out tasks x {args.seeds} seeds, {args.budget} tokens per search; "
        f"{seconds:.0f} s in this run (stages done before were skipped; their times are in the table)",
        highlight=False,
    )
    options = (
        f"--train {args.train} --eval {args.eval} --iterations {args.iterations} --budget {args.budget} "
        f"--seeds {args.seeds} --model {shlex.quote(args.model)} "
        f"--alpha {args.alpha:g} --beta {args.beta:g} --max-pairs {args.max_pairs}"
        + (f" --base {shlex.quote(args.base)}" if args.base else "")
        + f" --out {shlex.quote(str(args.out))}"
    )

    def shown(text: str) -> None:
        console.print(text, highlight=False, markup=False, soft_wrap=True)

    shown(f"rerun (resumes; finished stages are read back): python benchmarks/agent_r.py {options}")
    shown(f"the same loop with the CLI: trellis agent-r {options}")
    shown(f"on a GPU:\n{gpu_commands(args)}")


if __name__ == "__main__":
    main()
