"""`trellis qa ...`: question answering by search over a passage corpus (the synthetic multi-hop one by
default; `--data` names another, see `trellis.envs.qa.sources`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from trellis.cli.checks import output_folder
from trellis.cli.config import AddressOpt, ExecutorOpt, RetriesOpt, search_options
from trellis.envs.qa.sources import open_source
from trellis.search.config import SearchConfig, linear_agent

from trellis.errors import UserError

app = typer.Typer(help="Question answering by search: a passage corpus, BM25, search and answer.", no_args_is_help=True)
console = Console()

# Where the questions come from; shared by `qa solve` and `qa batch` (see `data_spec`).
CorpusSeedOpt = Annotated[int, typer.Option("--corpus-seed", help="Seed of the synthetic corpus.")]
DataOpt = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Questions and passages: synthetic[:SEED] (default), corpus:PATH, file:PATH (HotpotQA-format "
        "JSON or JSON Lines, each question over its own paragraphs) or hf:NAME[@SPLIT] (online).",
    ),
]

# Small enough for the embedded model on two cores: a question takes two searches and an answer.
QA_DEFAULTS = {
    "samples": 2,
    "budget": {"max_nodes": 16, "max_depth": 6, "enough_finished": 2, "max_expansions_per_node": 2},
}
QA_STRATEGIES = {
    "linear": linear_agent(None, max_nodes=12, max_depth=6, critic={"mode": "none"}).model_dump(mode="json")
}
"""`--strategy linear`: one trajectory of at most 12 steps, as the QA benchmark runs it."""


@app.command()
@search_options(QA_DEFAULTS, QA_STRATEGIES)
def solve(
    question: Annotated[str, typer.Argument(help="A question of the corpus: its position (0, 1, ...) or id (q0003).")],
    corpus_seed: CorpusSeedOpt = 0,
    data: DataOpt = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (see `trellis models`).")] = "embedded",
    run: Annotated[
        Path | None, typer.Option(help="Run folder; default runs/qa-<corpus seed or data name>-<question id>.")
    ] = None,
    top_k: Annotated[int, typer.Option(help="Passages each search returns.")] = 3,
    max_turns: Annotated[int, typer.Option(help="Searches before only answer is allowed.")] = 4,
    *,
    settings: SearchConfig,
) -> None:
    """Search for the answer to one question; print the tree, the summary, and EM/F1.

    The gold answer is used only to score the chosen answer at the end, never during the search."""
    from trellis.envs.qa import exact_match, f1_score, qa_worlds
    from trellis.search.run import RunDir, run_search

    from trellis.models import load_model
    from trellis.render import TreeView, summary

    source = open_source(data_spec(data, corpus_seed))
    key: int | str = int(question) if question.isdigit() else question
    asked = source.question(key)
    corpus = source.corpus_of(asked.id)
    run_dir = run or Path("runs") / f"qa-{source.name}-{asked.id}"
    if RunDir(run_dir).exists():
        raise UserError(f"{run_dir} already holds a run; give another --run")
    output_folder(run_dir, "--run")
    worlds = qa_worlds(
        corpus, asked.id, settings.parallel, index=source.index_of(asked.id), top_k=top_k, max_turns=max_turns
    )
    chat = load_model(model)

    async def main() -> object:
        try:
            with console.status("searching…"):
                return await run_search(
                    task=worlds[0].task,
                    worlds=worlds,
                    model=chat,
                    config=settings,
                    run_dir=run_dir,
                    info={
                        "instance_id": asked.id,
                        "corpus": corpus.name,
                        "data": source.spec,
                        "question": asked.question,
                        "top_k": top_k,
                        "max_turns": max_turns,
                    },
                )
        finally:
            await chat.aclose()

    outcome = asyncio.run(main())
    tree = RunDir(run_dir).load_tree()
    console.print(TreeView(tree, top=4))
    console.print(summary(tree, RunDir(run_dir).read_info()))
    answer = str(getattr(outcome, "patch", "") or "")
    console.print(f"question: {escape(asked.question)}", highlight=False)
    if answer:
        em, f1 = exact_match(answer, asked.answers), f1_score(answer, asked.answers)
        console.print(f"answer: {escape(answer)}  gold: {escape(asked.answers[0])}  EM {em:g}  F1 {f1:.2f}")
    else:
        console.print(f"[yellow]no answer was given[/]  gold: {escape(asked.answers[0])}  EM 0  F1 0.00")
    console.print(f"stopped: {getattr(outcome, 'stop_reason', '')}")
    console.print(f"run folder: {run_dir}  (trellis tree show {run_dir})")


@app.command()
@search_options(QA_DEFAULTS, QA_STRATEGIES)
def batch(
    questions: Annotated[
        str, typer.Option(help="Questions: a count (the first N), a range 0-9, or ids/positions q0003,5.")
    ] = "10",
    corpus_seed: CorpusSeedOpt = 0,
    data: DataOpt = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (see `trellis models`).")] = "embedded",
    runs: Annotated[Path, typer.Option(help="Folder of the run folders, one per question.")] = Path("runs/qa-batch"),
    top_k: Annotated[int, typer.Option(help="Passages each search returns.")] = 3,
    max_turns: Annotated[int, typer.Option(help="Searches before only answer is allowed.")] = 4,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    retries: RetriesOpt = 3,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Ray: questions searched at once (default: as the cluster's CPUs allow).")
    ] = None,
    *,
    settings: SearchConfig,
) -> None:
    """Search several questions; print each answer and the exact-match and F1 averages, and
    write answers.jsonl. A question whose run folder holds a finished run is not searched again, and an
    interrupted one is resumed (rerun the command after a stop to go on). With --executor ray, each
    question is a Ray task that builds its own model on its worker."""
    import json

    from trellis.cli.jobs import check_executor, run_batch
    from trellis.cli.qa_batch import QAJob, QARow, answer_one, qa_failed, qa_remote

    from trellis.models import load_model

    check_executor(executor, address, workers)
    spec = data_spec(data, corpus_seed)
    source = open_source(spec)
    keys = _questions(questions, len(source.questions))
    asked = list({q.id: q for q in (source.question(key) for key in keys)}.values())  # each question once
    output_folder(runs, "--runs")
    chat = load_model(model)  # a bad model spec is reported before anything runs
    jobs = [
        QAJob(
            question_id=question.id,
            data=spec,
            run_dir=(runs / question.id).resolve(),
            settings=settings,
            model=model,
            top_k=top_k,
            max_turns=max_turns,
        )
        for question in asked
    ]

    def done(row: QARow) -> None:
        if row.error:
            console.print(f"[red]{row.id} failed:[/] {escape(row.error)}", highlight=False)
            return
        console.print(
            f"{row.id} EM {row.em:g} F1 {row.f1:.2f}  answer: {escape(row.answer or '-')}  gold: {escape(row.gold)}",
            highlight=False,
        )

    rows = run_batch(
        jobs,
        executor=executor,
        chat=chat,
        local=answer_one,
        remote=qa_remote,
        failed=qa_failed,
        address=address,
        retries=retries,
        workers=workers,
        on_done=done,
    )
    order = {job.question_id: n for n, job in enumerate(jobs)}
    rows.sort(key=lambda row: order.get(row.id, len(order)))
    answered = [row for row in rows if not row.error]
    runs.mkdir(parents=True, exist_ok=True)
    fields = {"id", "type", "answer", "gold", "em", "f1", "prompt_tokens", "tokens"}
    (runs / "answers.jsonl").write_text("".join(json.dumps(row.model_dump(include=fields)) + "\n" for row in answered))
    count = len(answered)
    if count:
        em_total = sum(row.em for row in answered)
        f1_mean = sum(row.f1 for row in answered) / count
        prompt = sum(row.prompt_tokens for row in answered) / count
        console.print(
            f"{count} questions: EM {em_total:g}/{count} ({em_total / count:.0%}), F1 {f1_mean:.2f}, "
            f"{prompt:.0f} prompt tokens per question; answers: {runs / 'answers.jsonl'}"
        )
    failed = len(rows) - count
    if failed:
        console.print(f"{failed} of {len(rows)} questions failed; fix the cause and run the same command again")
        raise typer.Exit(1)


def data_spec(data: str | None, corpus_seed: int) -> str:
    """The `--data` spec, `--corpus-seed N` being short for `--data synthetic:N`."""
    if data is None:
        return f"synthetic:{corpus_seed}"
    if corpus_seed != 0:
        raise UserError("--corpus-seed is short for --data synthetic:SEED: give one of them, not both")
    return data


def _questions(text: str, total: int) -> list[int | str]:
    """Positions or ids from `--questions`: `N` (the first N), `A-B` (positions A to B), or a comma list."""
    text = text.strip()
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= total:
            raise UserError(f"--questions {text}: the corpus has {total} questions; give 1 to {total}")
        return list(range(count))
    first, dash, last = text.partition("-")
    if dash and first.isdigit() and last.isdigit():
        if not int(first) <= int(last) < total:
            raise UserError(f"--questions {text}: give a range within 0-{total - 1}, low to high")
        return list(range(int(first), int(last) + 1))
    keys: list[int | str] = [int(k) if k.strip().isdigit() else k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise UserError("--questions is empty; give a count, a range such as 0-9, or ids such as q0003,q0007")
    return keys
