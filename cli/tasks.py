"""`trellis tasks`: the search on function-level code tasks (the shipped catalog, or one of your own),
graded by their hidden tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from trellis.cli.checks import output_folder
from trellis.cli.config import AddressOpt, ExecutorOpt, RetriesOpt, search_options
from trellis.envs.tasks.catalog import CodeTask
from trellis.search.config import SearchConfig, linear_agent, token_budget_mcts

from trellis.errors import UserError

app = typer.Typer(help="Function-level code tasks: search, then grade by the hidden tests.", no_args_is_help=True)
console = Console()

TASK_DEFAULTS = token_budget_mcts(8000).model_dump(mode="json")
"""MCTS within 8,000 model tokens, as the search benchmark runs it."""
TASK_STRATEGIES = {"linear": linear_agent(8000).model_dump(mode="json")}
"""`--strategy linear`: the benchmark's linear agent, within 8,000 model tokens."""
CatalogOpt = Annotated[
    Path | None,
    typer.Option(
        help="A task catalog of your own: a folder per task, or a .jsonl file of HumanEval-format records; "
        "default: the shipped tasks."
    ),
]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model spec (see `trellis models`).")]


@app.command("list")
def list_tasks(catalog: CatalogOpt = None) -> None:
    """The tasks: id, level of difficulty, the function to write and its docstring's first line."""
    from trellis.cli.task_batch import catalog_tasks

    table = Table(title="code tasks")
    for column in ("id", "level", "function", "what it does"):
        table.add_column(column)
    for task in catalog_tasks(catalog):
        doc = task.prompt.split('"""')[1].strip().splitlines()[0] if '"""' in task.prompt else ""
        table.add_row(task.id, str(task.level), task.entry_point, escape(doc))
    console.print(table)


@app.command()
@search_options(TASK_DEFAULTS, TASK_STRATEGIES)
def solve(
    task_id: Annotated[str, typer.Argument(help="The task's id (see `trellis tasks list`).")],
    model: ModelOpt = "embedded",
    run: Annotated[Path | None, typer.Option(help="The task's folder; default runs/tasks/<task id>.")] = None,
    catalog: CatalogOpt = None,
    *,
    settings: SearchConfig,
) -> None:
    """Search one task (its repository, run folder and result in one folder), then grade the chosen
    answer by the hidden tests. Run it again on the same folder to resume an interrupted search."""
    from trellis.cli.task_batch import TaskJob, TaskRow, find_task, solve_task
    from trellis.search.run import RunDir

    from trellis.models import load_model
    from trellis.render import TreeView, summary

    find_task(task_id, catalog)
    folder = run or Path("runs") / "tasks" / task_id
    output_folder(folder, "--run")
    chat = load_model(model)
    job = TaskJob(task_id=task_id, run_dir=folder.resolve(), settings=settings, model=model, catalog=catalog)

    async def main() -> TaskRow:
        try:
            return await solve_task(job, chat)
        finally:
            await chat.aclose()

    row = asyncio.run(main())
    if row.error:
        raise UserError(f"{task_id}: {row.error}")
    runs = RunDir(folder / "run")
    if runs.exists():
        tree = runs.load_tree()
        console.print(TreeView(tree, top=4))
        console.print(summary(tree, runs.read_info()))
    verdict = "[green]solved[/]" if row.solved else "[red]not solved[/]"
    console.print(f"{task_id}: {verdict} ({row.hidden}; {row.state})", highlight=False)


@app.command()
@search_options(TASK_DEFAULTS, TASK_STRATEGIES)
def batch(
    tasks: Annotated[str, typer.Option(help="Tasks: `all`, a count (the first N), or ids a,b,c.")] = "all",
    model: ModelOpt = "embedded",
    runs: Annotated[Path, typer.Option(help="Folder of the tasks' folders, one per task.")] = Path("runs/tasks"),
    catalog: CatalogOpt = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    retries: RetriesOpt = 3,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Ray: tasks searched at once (default: as the cluster's CPUs allow).")
    ] = None,
    *,
    settings: SearchConfig,
) -> None:
    """Search many tasks and grade each by its hidden tests; write results.jsonl and a table. Graded
    tasks are read back and interrupted ones resumed when the command runs again. With --executor ray,
    each task is a Ray task that builds its own model on its worker."""
    from trellis.cli.jobs import check_executor, run_batch
    from trellis.cli.task_batch import TaskJob, TaskRow, catalog_tasks, solve_task, task_failed, task_remote

    from trellis.models import load_model

    check_executor(executor, address, workers)
    every = catalog_tasks(catalog)
    chosen = _choose(tasks, every)
    output_folder(runs, "--runs")
    chat = load_model(model)  # a bad model spec is reported before anything runs
    jobs = [
        TaskJob(
            task_id=task.id,
            run_dir=(runs / task.id).resolve(),
            settings=settings,
            model=model,
            catalog=catalog.resolve() if catalog else None,
        )
        for task in chosen
    ]

    def done(row: TaskRow) -> None:
        mark = "[red]failed[/]" if row.error else ("[green]solved[/]" if row.solved else "not solved")
        console.print(f"{row.id}: {mark} {escape(row.error or row.hidden)}", highlight=False)

    rows = run_batch(
        jobs,
        executor=executor,
        chat=chat,
        local=solve_task,
        remote=task_remote,
        failed=task_failed,
        address=address,
        retries=retries,
        workers=workers,
        on_done=done,
    )
    order = {job.task_id: n for n, job in enumerate(jobs)}
    rows.sort(key=lambda row: order.get(row.id, len(order)))
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "results.jsonl").write_text("".join(row.model_dump_json() + "\n" for row in rows))
    table = Table(title="code tasks")
    for column in ("task", "level", "run", "solved", "tokens", "nodes"):
        table.add_column(column)
    for row in rows:
        solved = "-" if row.error else ("[green]yes[/]" if row.solved else "[red]no[/]")
        state = "[red]failed[/]" if row.error else row.state
        table.add_row(row.id, str(row.level), state, solved, str(row.tokens), str(row.nodes))
    console.print(table)
    graded = [row for row in rows if not row.error]
    solved_count = sum(row.solved for row in graded)
    console.print(f"solved {solved_count}/{len(graded)}; results: {runs / 'results.jsonl'}")
    if len(graded) < len(rows):
        console.print(f"{len(rows) - len(graded)} tasks failed; fix the cause and run the same command again")
        raise typer.Exit(1)


def _choose(text: str, every: list[CodeTask]) -> list[CodeTask]:
    text = text.strip()
    if text == "all":
        return every
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= len(every):
            raise UserError(f"--tasks {text}: the catalog has {len(every)} tasks; give 1 to {len(every)}")
        return every[:count]
    wanted = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))  # each once
    known = {task.id: task for task in every}
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        raise UserError(f"--tasks {text}: unknown {', '.join(unknown) or 'nothing given'}; see `trellis tasks list`")
    return [known[name] for name in wanted]
