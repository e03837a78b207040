"""`trellis qa ...`: question answering by search over the synthetic multi-hop corpus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from trellis.cli.checks import output_folder
from trellis.cli.config import search_options
from trellis.search.config import SearchConfig

from trellis.errors import UserError

app = typer.Typer(help="Question answering by search: a passage corpus, BM25, search and answer.", no_args_is_help=True)
console = Console()

# Small enough for the embedded model on two cores: a question takes two searches and an answer.
QA_DEFAULTS = {
    "samples": 2,
    "budget": {"max_nodes": 16, "max_depth": 6, "enough_finished": 2, "max_expansions_per_node": 2},
}


@app.command()
@search_options(QA_DEFAULTS)
def solve(
    question: Annotated[str, typer.Argument(help="A question of the corpus: its position (0, 1, ...) or id (q0003).")],
    corpus_seed: Annotated[int, typer.Option("--corpus-seed", help="Seed of the synthetic corpus.")] = 0,
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (see `trellis models`).")] = "embedded",
    run: Annotated[Path | None, typer.Option(help="Run folder; default runs/qa-<corpus seed>-<question id>.")] = None,
    top_k: Annotated[int, typer.Option(help="Passages each search returns.")] = 3,
    max_turns: Annotated[int, typer.Option(help="Searches before only answer is allowed.")] = 4,
    *,
    settings: SearchConfig,
) -> None:
    """Search for the answer to one synthetic question; print the tree, the summary, and EM/F1.

    The gold answer is used only to score the chosen answer at the end, never during the search."""
    from trellis.envs.qa import SyntheticConfig, exact_match, f1_score, generate_corpus, qa_worlds
    from trellis.search.run import RunDir, run_search

    from trellis.models import load_model
    from trellis.render import TreeView, summary

    corpus = generate_corpus(SyntheticConfig(seed=corpus_seed))
    key: int | str = int(question) if question.isdigit() else question
    asked = corpus.question(key)
    run_dir = run or Path("runs") / f"qa-{corpus_seed}-{asked.id}"
    if RunDir(run_dir).exists():
        raise UserError(f"{run_dir} already holds a run; give another --run")
    output_folder(run_dir, "--run")
    worlds = qa_worlds(corpus, asked.id, settings.parallel, top_k=top_k, max_turns=max_turns)
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
                    info={"instance_id": asked.id, "corpus": corpus.name, "question": asked.question},
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
@search_options(QA_DEFAULTS)
def batch(
    questions: Annotated[
        str, typer.Option(help="Questions: a count (the first N), a range 0-9, or ids/positions q0003,5.")
    ] = "10",
    corpus_seed: Annotated[int, typer.Option("--corpus-seed", help="Seed of the synthetic corpus.")] = 0,
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (see `trellis models`).")] = "embedded",
    runs: Annotated[Path, typer.Option(help="Folder of the run folders, one per question.")] = Path("runs/qa-batch"),
    top_k: Annotated[int, typer.Option(help="Passages each search returns.")] = 3,
    max_turns: Annotated[int, typer.Option(help="Searches before only answer is allowed.")] = 4,
    *,
    settings: SearchConfig,
) -> None:
    """Search several synthetic questions with one model; print each answer and the exact-match and F1
    averages, and write answers.jsonl. A question whose run folder holds a finished run is not
    searched again (rerun the command after a stop to go on)."""
    import json

    from trellis.envs.qa import PassageIndex, SyntheticConfig, exact_match, f1_score, generate_corpus, qa_worlds
    from trellis.search.run import RunDir, run_search

    from trellis.models import load_model

    corpus = generate_corpus(SyntheticConfig(seed=corpus_seed))
    chosen = _questions(questions, len(corpus.questions))
    asked = [corpus.question(key) for key in chosen]
    output_folder(runs, "--runs")
    index = PassageIndex(corpus.passages)
    chat = load_model(model)
    rows: list[dict[str, object]] = []

    async def main() -> None:
        try:
            for question in asked:
                run_dir = runs / question.id
                folder = RunDir(run_dir)
                tree = folder.load_tree() if folder.exists() else None
                if tree is None or tree.final is None:
                    worlds = qa_worlds(
                        corpus, question.id, settings.parallel, index=index, top_k=top_k, max_turns=max_turns
                    )
                    await run_search(
                        task=worlds[0].task,
                        worlds=worlds,
                        model=chat,
                        config=settings,
                        run_dir=run_dir,
                        resume=tree is not None,
                        info={"instance_id": question.id, "corpus": corpus.name, "question": question.question},
                    )
                    tree = folder.load_tree()
                answer = tree.final.patch if tree.final else ""
                em = exact_match(answer, question.answers) if answer else 0.0
                f1 = f1_score(answer, question.answers) if answer else 0.0
                tokens = tree.total_usage()
                rows.append(
                    {
                        "id": question.id,
                        "type": question.type,
                        "answer": answer,
                        "gold": question.answers[0],
                        "em": em,
                        "f1": round(f1, 4),
                        "prompt_tokens": tokens.prompt_tokens,
                        "tokens": tokens.total_tokens,
                    }
                )
                console.print(
                    f"{question.id} EM {em:g} F1 {f1:.2f}  answer: {escape(answer or '-')}  "
                    f"gold: {escape(question.answers[0])}",
                    highlight=False,
                )
        finally:
            await chat.aclose()

    asyncio.run(main())
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "answers.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    count = len(rows)
    em_total = sum(float(str(r["em"])) for r in rows)
    f1_mean = sum(float(str(r["f1"])) for r in rows) / count
    prompt = sum(int(str(r["prompt_tokens"])) for r in rows) / count
    console.print(
        f"{count} questions: EM {em_total:g}/{count} ({em_total / count:.0%}), F1 {f1_mean:.2f}, "
        f"{prompt:.0f} prompt tokens per question; answers: {runs / 'answers.jsonl'}"
    )


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
