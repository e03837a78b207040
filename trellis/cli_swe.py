"""`trellis swe ...`: SWE-bench environments and grading."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from trellis.errors import UserError

app = typer.Typer(help="SWE-bench: prepare instance environments, grade predictions.", no_args_is_help=True)
console = Console()

InstancesOpt = Annotated[Path, typer.Option("--instances", "-i", help="Instances file (.json, .jsonl, .parquet).")]
ReposOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--repos",
        help="Folder of clones, mirrors or bundles (owner+name, owner__name, name, name.bundle); "
        "default: the instances file's folder.",
    ),
]
LocksOpt = Annotated[
    Path | None,
    typer.Option(
        "--locks", help="Folder of pinned requirements, <instance_id>.txt; default: locks/ beside the instances."
    ),
]
SandboxOpt = Annotated[
    str,
    typer.Option(
        "--sandbox",
        help="bwrap (isolated, default), local (no isolation), or docker (eval only: the "
        "official SWE-bench images through DOCKER_HOST).",
    ),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Build without network: pins must be satisfied by this Python's packages.")
]


def _defaults(instances: Path, repos: list[Path] | None, locks: Path | None) -> tuple[list[Path], Path | None]:
    """Repositories and locks default to the instances file's folder and its `locks/`."""
    folder = instances.resolve().parent
    default_locks = folder / "locks"
    return (repos or [folder]), (locks or (default_locks if default_locks.is_dir() else None))


def _source(instance: object, repo: str | None, repos: list[Path] | None) -> str:
    from trellis.envs.swebench.environment import find_repository

    if repo:
        return repo
    name = instance.repo  # type: ignore[attr-defined]
    found = find_repository(name, list(repos or []))
    return found or f"https://github.com/{name}.git"


def _lock(instance_id: str, locks: Path | None) -> Path | None:
    if locks is None:
        return None
    path = locks / f"{instance_id}.txt"
    return path if path.exists() else None


async def _prepare_all(
    instances: list,
    repo: str | None,
    repos: list[Path] | None,
    locks: Path | None,
    sandbox: str,
    force: bool,
    offline: bool,
) -> list:
    from trellis.envs.swebench.environment import SWEEnvironment

    envs = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        overall = progress.add_task("preparing", total=len(instances))
        for instance in instances:
            env = SWEEnvironment(instance, sandbox=sandbox)

            def say(message: str, _id: str = instance.instance_id) -> None:
                progress.update(overall, description=f"{_id}: {message}")

            await env.prepare(
                _source(instance, repo, repos),
                _lock(instance.instance_id, locks),
                progress=say,
                force=force,
                offline=offline,
            )
            envs.append(env)
            progress.advance(overall)
    return envs


@app.command()
def prepare(
    instance_ids: Annotated[list[str], typer.Argument(help="Instance ids to prepare.")],
    instances: InstancesOpt,
    repo: Annotated[str | None, typer.Option(help="Repository path or URL (one instance).")] = None,
    repos: ReposOpt = None,
    locks: LocksOpt = None,
    sandbox: SandboxOpt = "bwrap",
    force: Annotated[bool, typer.Option(help="Rebuild even when already prepared.")] = False,
    offline: OfflineOpt = False,
) -> None:
    """Build each instance's environment: repository at its base commit, venv, pins, editable install."""
    from trellis.envs.swebench.instance import load_instances, select

    chosen = select(load_instances(instances), instance_ids)
    repos, locks = _defaults(instances, repos, locks)
    envs = asyncio.run(_prepare_all(chosen, repo, repos, locks, sandbox, force, offline))
    for env in envs:
        console.print(f"[green]ready[/] {env.instance.instance_id}: {env.root}")


@app.command("eval")
def evaluate(
    predictions: Annotated[str, typer.Option("--predictions", "-p", help="Predictions JSONL, or `gold` or `empty`.")],
    instances: InstancesOpt,
    repos: ReposOpt = None,
    locks: LocksOpt = None,
    sandbox: SandboxOpt = "bwrap",
    report: Annotated[Path | None, typer.Option(help="Where to write the report JSON.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds allowed for each instance's tests.")] = 1800,
    offline: OfflineOpt = False,
) -> None:
    """Grade predictions as the SWE-bench harness does; print a summary table and write a report."""
    from trellis.envs.swebench.harness import empty_predictions, gold_predictions, write_report
    from trellis.envs.swebench.harness import evaluate as grade_one
    from trellis.envs.swebench.instance import load_instances, read_predictions

    everything = load_instances(instances)
    by_id = {i.instance_id: i for i in everything}
    if predictions == "gold":
        preds = gold_predictions(everything)
    elif predictions == "empty":
        preds = empty_predictions(everything)
    else:
        preds = read_predictions(predictions)
    unknown = [p.instance_id for p in preds if p.instance_id not in by_id]
    if unknown:
        raise UserError(f"predictions for instances not in {instances}: {unknown[:5]}")
    chosen = [by_id[p.instance_id] for p in preds]
    repos, locks = _defaults(instances, repos, locks)

    async def run() -> list:
        if sandbox == "docker":  # the official images already hold each repository and its environment
            from trellis.envs.swebench.harness import evaluate_in_container

            out = []
            for instance, pred in zip(chosen, preds, strict=True):
                with console.status(f"grading {pred.instance_id} in its official image…"):
                    out.append(await evaluate_in_container(instance, pred.model_patch, timeout=timeout))
            return out
        envs = await _prepare_all(chosen, None, repos, locks, sandbox, False, offline)
        reports = []
        for env, pred in zip(envs, preds, strict=True):
            with console.status(f"grading {pred.instance_id}…"):
                reports.append(await grade_one(env, pred.model_patch, name=pred.model_name_or_path, timeout=timeout))
        return reports

    reports = asyncio.run(run())
    table = Table(title=f"SWE-bench evaluation: {predictions}")
    table.add_column("instance", no_wrap=True)
    for column in ("applied", "FAIL_TO_PASS", "PASS_TO_PASS", "resolved", "seconds"):
        table.add_column(column)
    for r in reports:
        f2p, p2p = r.tests_status.get("FAIL_TO_PASS"), r.tests_status.get("PASS_TO_PASS")
        table.add_row(
            r.instance_id,
            "yes" if r.patch_successfully_applied else "[red]no[/]",
            f"{len(f2p.success)}/{len(f2p.success) + len(f2p.failure)}" if f2p else "-",
            f"{len(p2p.success)}/{len(p2p.success) + len(p2p.failure)}" if p2p else "-",
            "[green]yes[/]" if r.resolved else "[red]no[/]",
            f"{r.seconds:.1f}",
        )
    console.print(table)
    resolved = sum(r.resolved for r in reports)
    console.print(f"resolved {resolved} of {len(reports)}")
    name = Path(predictions).stem if predictions not in ("gold", "empty") else predictions
    out = report or Path(f"{name}.report.json")
    write_report(out, reports, len(reports))
    console.print(f"report: {out}")
    for r in reports:
        if r.error:
            console.print(f"[yellow]{r.instance_id}: {r.error}[/]", highlight=False)
