"""`trellis revise` and `trellis train ...`: revision data from runs (Agent-R) and LoRA fine-tuning."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from trellis.cli.checks import output_folder

from trellis.errors import UserError

app = typer.Typer(help="Fine-tune models on data from search trees.", no_args_is_help=True)
console = Console()


def _new_folder(path: Path, what: str, marker: str) -> Path:
    """`path` is writable and does not already hold `marker` (a finished output is never overwritten)."""
    output_folder(path, what)
    if (path / marker).exists():
        raise UserError(f"{what} {path} already holds {marker}; choose another folder")
    return path


def revise(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (each holds tree.db).")],
    out: Annotated[Path, typer.Option("--out", help="Dataset folder to write.")],
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="A good leaf's value must exceed this.")] = 0.5,
    beta: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="A good leaf must beat the bad one's value by more than this.")
    ] = 0.2,
    max_pairs: Annotated[int, typer.Option("--max-pairs", min=1, help="Most pairs from one tree.")] = 4,
    model: Annotated[
        str, typer.Option("--model", "-m", help="The model that finds each bad path's first error.")
    ] = "embedded",
    locate: Annotated[
        bool, typer.Option("--locate/--no-locate", help="Find first errors (off: keep whole bad paths).")
    ] = True,
    ground_truth: Annotated[
        bool,
        typer.Option("--ground-truth/--no-ground-truth", help="Label leaves by the world's check where it has one."),
    ] = True,
    seed: Annotated[int, typer.Option(help="Chooses the revision phrasings.")] = 0,
) -> None:
    """Splice revision trajectories from runs' trees: good/bad pairs, first error, revert, good path.

    Every splice is replayed in a fresh world and kept only when it reaches the good leaf's state.
    Writes revisions.jsonl (chat with per-message train flags), preferences.jsonl (chosen/rejected),
    summary.json and, with the datasets package, the same as Hugging Face datasets under hf/.
    """
    from trellis.agents.first_error import FirstErrorLocator
    from trellis.search.run import RunDir
    from trellis.train.export import REVISIONS, write_dataset
    from trellis.train.pairs import PairConfig
    from trellis.train.revise import ReviseConfig, ReviseResult, TreeReport, revise_runs

    from trellis.models import load_model

    for folder in runs:
        RunDir(folder).check()  # a folder that is not a run is reported before anything runs
    _new_folder(out, "dataset folder", REVISIONS)
    config = ReviseConfig(
        pairs=PairConfig(alpha=alpha, beta=beta, max_pairs=max_pairs),
        locate=locate,
        ground_truth=ground_truth,
        seed=seed,
    )
    chat_model = load_model(model) if locate else None
    table = Table(title="revision trajectories")
    for column in ("run", "leaves", "labels", "pairs", "verified", "dropped"):
        table.add_column(column)

    def shown(report: TreeReport) -> None:
        labels = ", ".join(f"{k} {v}" for k, v in report.labels.items()) or "-"
        dropped = ", ".join(f"{k}: {v}" for k, v in report.dropped.items()) or "-"
        table.add_row(escape(report.run), str(report.leaves), labels, str(report.pairs), str(report.verified), dropped)

    async def run() -> ReviseResult:
        locator = FirstErrorLocator(chat_model, config.first_error) if chat_model is not None else None
        try:
            with console.status(f"revising {len(runs)} run(s)…"):
                return await revise_runs(runs, locator=locator, config=config, on_run=shown)
        finally:
            if chat_model is not None:
                await chat_model.aclose()

    result = asyncio.run(run())
    summary = result.summary(config)
    write_dataset(out, result.revisions, result.preferences, summary)
    console.print(table)
    console.print(
        f"{summary['revisions']} revision trajectories ({summary['pairs']} pairs, {summary['verified']} replayed "
        f"to the good leaf), {summary['preferences']} preference pairs -> {escape(str(out))}",
        highlight=False,
    )


@app.command()
def sft(
    data: Annotated[Path, typer.Option("--data", help="A dataset folder from `trellis revise`, or a JSONL file.")],
    out: Annotated[Path, typer.Option("--out", help="Adapter folder to write.")],
    base: Annotated[
        str, typer.Option("--base", help="embedded[:NAME], gguf:/path/model.gguf or a Hugging Face folder.")
    ] = "embedded",
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    lora_alpha: Annotated[int, typer.Option("--lora-alpha", min=1, help="LoRA alpha (scale alpha/rank).")] = 16,
    learning_rate: Annotated[float, typer.Option("--lr", min=0.0, help="Learning rate.")] = 2e-4,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the data.")] = 1,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Stop after this many steps.")] = None,
    max_length: Annotated[int, typer.Option("--max-length", min=8, help="Cut examples to this many tokens.")] = 2048,
    seed: Annotated[int, typer.Option(help="Shuffling and initialisation seed.")] = 0,
) -> None:
    """LoRA fine-tuning on the dataset's chats, loss only on messages flagged `train`.

    Saves the adapter in PEFT's format (vLLM's --lora-modules loads it) and, for Qwen2 bases, as
    adapter.gguf, which llama.cpp applies over the quantised base: --model embedded+lora:OUT/adapter.gguf.
    Progress is kept in OUT/checkpoint.pt every 10 steps: the same command run again after a stop goes
    on from there.
    """
    from trellis.train.export import load_conversations
    from trellis.train.sft import (
        CHECKPOINT_FILE,
        TRAIN_FILE,
        SFTConfig,
        base_source,
        load_base,
        require_train_extra,
        save_adapter,
    )

    require_train_extra()
    conversations = load_conversations(data)
    if not conversations:
        raise UserError(f"{data} holds no examples; revise more runs (or lower --alpha/--beta) first")
    base_source(base)  # a bad base is reported before the data is tokenised
    _new_folder(out, "adapter folder", TRAIN_FILE)
    config = SFTConfig(
        rank=rank,
        lora_alpha=lora_alpha,
        learning_rate=learning_rate,
        epochs=epochs,
        max_steps=max_steps,
        max_length=max_length,
        seed=seed,
    )
    from trellis.train.sft import train_lora

    with console.status(f"loading {base}…"):
        model, tokenizer = load_base(base)
    with console.status("training…") as status:
        adapted, report = train_lora(
            model,
            tokenizer,
            conversations,
            config,
            on_step=lambda step, loss: status.update(f"training: step {step}, loss {loss:.4f}"),
            checkpoint=out / CHECKPOINT_FILE,
            identity=base,
        )
    report = save_adapter(adapted, out, report.model_copy(update={"base": base}))
    (out / CHECKPOINT_FILE).unlink(missing_ok=True)  # the adapter is whole: nothing left to go on from
    console.print(
        f"{report.steps} steps on {report.examples} examples ({report.trained_tokens} trained tokens, "
        f"{report.skipped} skipped), loss {report.losses[0]:.4f} -> {report.losses[-1]:.4f}, {report.seconds:.1f} s",
        highlight=False,
    )
    console.print(f"PEFT adapter: {escape(report.adapter)}", highlight=False)
    if report.gguf_adapter:
        spec = f"{base}+lora:{report.gguf_adapter}" if base.startswith(("embedded", "gguf:")) else None
        console.print(f"GGUF adapter: {escape(report.gguf_adapter)}", highlight=False)
        if spec:
            console.print(f"use it: --model {escape(spec)}", highlight=False)
    else:
        console.print(f"no GGUF adapter: {escape(report.gguf_note)}", highlight=False)


def agent_r(
    train: Annotated[
        str,
        typer.Option(
            "--train", help="Training tasks: ids (a,b), level:L[-L2][:N] or split:train[:N] (see the command's help)."
        ),
    ],
    eval_tasks: Annotated[
        str, typer.Option("--eval", help="Held-out tasks, in the same syntax (split:eval[:N] for the fixed split).")
    ],
    iterations: Annotated[int, typer.Option("--iterations", min=1, help="Search-revise-train rounds.")],
    out: Annotated[Path, typer.Option("--out", help="The loop's folder (rerun the same command to resume).")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Search model: embedded[:NAME], gguf:PATH or openai:URL#MODEL (vLLM).")
    ] = "embedded",
    base: Annotated[
        str | None,
        typer.Option("--base", help="What the adapter trains on (default: the search model's GGUF; a HF folder)."),
    ] = None,
    budget: Annotated[int, typer.Option(min=1, help="Model tokens per search (one task, one seed).")] = 8000,
    seeds: Annotated[int, typer.Option(min=1, help="Searches per task.")] = 1,
    restart: Annotated[
        bool,
        typer.Option(
            "--from-base/--continue",
            help="Train each iteration's adapter fresh on the base with all data so far, or continue the last one.",
        ),
    ] = False,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    learning_rate: Annotated[float, typer.Option("--lr", min=0.0, help="Learning rate.")] = 2e-4,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over each iteration's data.")] = 1,
    max_length: Annotated[int, typer.Option("--max-length", min=8, help="Cut examples to this many tokens.")] = 4096,
    alpha: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Pairs: a good leaf's value must exceed this (see revise).")
    ] = 0.5,
    beta: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Pairs: a good leaf must beat the bad one's value by more.")
    ] = 0.2,
    max_pairs: Annotated[int, typer.Option("--max-pairs", min=1, help="Most pairs from one tree.")] = 4,
    locate: Annotated[
        bool, typer.Option("--locate/--no-locate", help="Find first errors (off: keep whole bad paths).")
    ] = True,
) -> None:
    """Agent-R's loop: search the training tasks, revise, train a LoRA adapter, reload, evaluate; repeat.

    Iteration 0 evaluates the starting model on the held-out tasks. Each iteration searches every
    training task with MCTS (UCT, c = 0.25, the revert tool offered), splices revision trajectories
    labelled by the hidden tests, trains an adapter (continuing the previous one unless --from-base)
    and evaluates base + adapter on the held-out tasks. Every stage is kept under --out/iter-N/; run
    the same command again to resume after a kill.

    Task selections: ids (reverse_string,is_palindrome); level:2 or level:1-3 (every task of those
    levels); split:train or split:eval (two tasks of each level held out: 25 train, 10 eval). A count
    after one more colon keeps the first N, spread over the levels: level:1-3:5, split:eval:1.
    """
    from trellis.train.adapters import default_base
    from trellis.train.loop import AgentRLoop, LoopConfig, iteration_table
    from trellis.train.pairs import PairConfig
    from trellis.train.revise import ReviseConfig
    from trellis.train.selection import disjoint, select_tasks
    from trellis.train.sft import SFTConfig, base_source, require_train_extra

    train_list = select_tasks(train, "--train")
    eval_list = select_tasks(eval_tasks, "--eval")
    disjoint(train_list, eval_list)
    trained_on = default_base(model, base)
    base_source(trained_on)  # a bad base is reported before an hour of searching
    require_train_extra()
    output_folder(out, "loop folder")
    config = LoopConfig(
        train=[t.id for t in train_list],
        eval=[t.id for t in eval_list],
        model=model,
        base=trained_on,
        budget=budget,
        seeds=seeds,
        continue_training=not restart,
        sft=SFTConfig(
            rank=rank, lora_alpha=2 * rank, learning_rate=learning_rate, epochs=epochs, max_length=max_length
        ),
        revise=ReviseConfig(pairs=PairConfig(alpha=alpha, beta=beta, max_pairs=max_pairs), locate=locate),
    )
    loop = AgentRLoop(config, out, progress=lambda line: console.print(f"[dim]{escape(line)}[/]", highlight=False))
    records = asyncio.run(loop.run(iterations))
    console.print(iteration_table(records))
    console.print(
        f"every stage's outputs: {escape(str(out))}/iter-N/; the table as JSON: results.json", highlight=False
    )
