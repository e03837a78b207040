"""`trellis swe ...`: SWE-bench environments and grading."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from trellis.cli.checks import input_folder, output_file, output_folder
from trellis.cli.config import EXECUTORS, AddressOpt, ExecutorOpt, RetriesOpt, search_options
from trellis.cli.service import Sources
from trellis.envs.swebench.instance import SWEInstance
from trellis.search.config import SearchConfig, linear_agent

from trellis.errors import UserError
from trellis.models.base import ChatModel

if TYPE_CHECKING:
    from trellis.cli.batch import BatchJob, BatchRow

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
        help="bwrap (isolated, default), local (no isolation), or docker (the instance's official "
        "SWE-bench image, or --image, through DOCKER_HOST: a container per world).",
    ),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Build without network: pins must be satisfied by this Python's packages.")
]


SANDBOXES = ("bwrap", "local", "docker")


def _check_sandbox(sandbox: str, allowed: tuple[str, ...] = SANDBOXES) -> None:
    if sandbox not in allowed:
        raise UserError(f"unknown --sandbox {sandbox!r}; use one of {', '.join(allowed)}")


def _check_sources(repos: list[Path] | None, locks: Path | None) -> None:
    for folder in repos or []:
        input_folder(folder, "--repos")
    if locks is not None:
        input_folder(locks, "--locks")


def _load(instances: Path) -> list[SWEInstance]:
    from trellis.envs.swebench.instance import load_instances

    return load_instances(instances)


def _progress() -> Progress:
    """The progress bar of a command over many instances: what it is at, a bar, a count, the time."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )


def _prepare_all(
    instances: list[SWEInstance], sources: Sources, sandbox: str, *, force: bool = False, offline: bool = False
) -> list:
    """`service.prepare_all` with a progress bar."""
    from trellis.cli.service import prepare_all

    with _progress() as progress:
        overall = progress.add_task("preparing", total=len(instances))
        return asyncio.run(
            prepare_all(
                instances,
                sources,
                sandbox=sandbox,
                force=force,
                offline=offline,
                say=lambda message: progress.update(overall, description=message),
                done=lambda env: progress.advance(overall),
            )
        )


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
    """Build each instance's environment: repository at its base commit, venv, pins, editable install.

    With --sandbox docker the environment is the instance's image: each is pulled when it is not here."""
    from trellis.envs.swebench.instance import select

    _check_sandbox(sandbox)
    _check_sources(repos, locks)
    chosen = select(_load(instances), instance_ids)
    if sandbox == "docker":  # the image is the environment: nothing to build here, only to find
        from trellis.envs.swebench.container import ContainerEnvironment

        missing = []
        for instance in chosen:
            env = ContainerEnvironment(instance)
            try:
                env.check()
                console.print(f"[green]ready[/] {instance.instance_id}: {env.image}")
            except UserError as exc:
                missing.append(instance.instance_id)
                console.print(f"[red]missing[/] {instance.instance_id}: {exc}", highlight=False)
        if missing:
            raise typer.Exit(1)
        return
    if repo is not None:
        if len(chosen) > 1:
            raise UserError("--repo is the repository of one instance; give one instance id, or use --repos FOLDER")
        if "://" not in repo and not repo.startswith("git@") and not Path(repo).exists():
            raise UserError(f"--repo {repo} does not exist; give a clone, a bundle or a URL")
    sources = replace(Sources.beside(instances, repos, locks), repo=repo)
    envs = _prepare_all(chosen, sources, sandbox, force=force, offline=offline)
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
    timeout: Annotated[float, typer.Option(help="Seconds allowed for each instance's tests (more than 0).")] = 1800,
    offline: OfflineOpt = False,
) -> None:
    """Grade predictions as the SWE-bench harness does; print a summary table and write a report."""
    from trellis.cli.service import grade_all
    from trellis.envs.swebench.harness import empty_predictions, gold_predictions, write_report
    from trellis.envs.swebench.instance import read_predictions, unique_predictions

    _check_sandbox(sandbox, SANDBOXES)
    if not timeout > 0:
        raise UserError(f"--timeout {timeout:g}: give the seconds each instance's tests may take, more than 0")
    _check_sources(repos, locks)
    name = Path(predictions).stem if predictions not in ("gold", "empty") else predictions
    out = output_file(report or Path(f"{name}.report.json"), "--report")
    everything = _load(instances)
    by_id = {i.instance_id: i for i in everything}
    if predictions == "gold":
        preds = gold_predictions(everything)
    elif predictions == "empty":
        preds = empty_predictions(everything)
    else:
        preds, twice = unique_predictions(read_predictions(predictions))
        if twice:
            console.print(
                f"[yellow]warning:[/] {predictions} holds more than one prediction for {', '.join(twice[:5])}"
                f"{' and more' if len(twice) > 5 else ''}; each is graded once, with its last prediction",
                highlight=False,
            )
    if not preds:
        raise UserError(f"{predictions} holds no predictions; give a JSONL file with one prediction per line")
    unknown = [p.instance_id for p in preds if p.instance_id not in by_id]
    if unknown:
        raise UserError(f"predictions for instances not in {instances}: {unknown[:5]}")
    chosen = [by_id[p.instance_id] for p in preds]
    sources = Sources.beside(instances, repos, locks)
    with console.status("grading…") as status:
        reports = asyncio.run(
            grade_all(chosen, preds, sources, sandbox=sandbox, timeout=timeout, offline=offline, say=status.update)
        )

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
    out.parent.mkdir(parents=True, exist_ok=True)
    write_report(out, reports, len(reports))
    console.print(f"report: {out}")
    for r in reports:
        if r.error:
            console.print(f"[yellow]{r.instance_id}: {r.error}[/]", highlight=False)


# The main job's defaults: small enough for the embedded model on two cores to finish in minutes.
SOLVE_DEFAULTS = {
    "samples": 2,
    "root_samples": 4,  # the repair opening: short prompts, the most diverse samples of a search
    "budget": {"max_nodes": 20, "max_depth": 8, "enough_finished": 2, "max_expansions_per_node": 3},
}
SOLVE_STRATEGIES = {"linear": linear_agent(8000).model_dump(mode="json")}
"""`--strategy linear`: one agent trajectory within 8,000 model tokens, as the search benchmark runs it."""

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model spec (see `trellis models`).")]


WorldsOpt = Annotated[
    str,
    typer.Option(
        "--worlds",
        help="local (worktrees on this machine) or ray (a Ray actor per --parallel world, anywhere on the "
        "cluster: the run folder and repositories must be on paths every machine sees; needs the ray extra).",
    ),
]


def _critic_model(spec: str, solver: ChatModel) -> ChatModel:
    from trellis.cli.batch import critic_model

    return critic_model(spec, solver)


def _find_instance(instance_id: str, instances: Path | None) -> tuple[SWEInstance, Path]:
    from trellis.cli.solve import EXAMPLES
    from trellis.envs.swebench.instance import select

    path = instances or EXAMPLES / "instances.jsonl"
    if not path.exists():
        raise UserError(f"no instances file {path}; pass --instances FILE")
    return select(_load(path), [instance_id])[0], path


def _run_folder(instance_id: str, run: Path | None, resume: Path | None) -> Path:
    """The run folder to write (checked to be new and writable) or to resume (checked to hold a
    readable run of this instance); nothing is created or changed."""
    from trellis.search.run import RunDir

    if run is not None and resume is not None and run.resolve() != resume.resolve():
        raise UserError("give either --run (a new run) or --resume (an earlier run's folder), not both")
    if resume is not None:
        RunDir(resume).load_tree()  # a missing folder, a folder without a run, a damaged tree.db
        return resume
    run_dir = run or Path("runs") / instance_id
    if RunDir(run_dir).exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, or give another --run")
    return output_folder(run_dir, "--run")


def _warn_reference_value(settings: SearchConfig) -> None:
    """`judge_value` mixes a reward computed from the instance's reference patch into the values: fine
    for searches that make training data, not for a solve rate."""
    if settings.judge_value:
        console.print(
            "[yellow]judge_value=true: values mix in the judge's reward, which is computed from the "
            "instance's reference patch; use this run for training data, not to measure a solve rate[/]"
        )


@app.command()
@search_options(SOLVE_DEFAULTS, SOLVE_STRATEGIES)
def solve(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(help="Instance id (in --instances, or a shipped example).")],
    instances: Annotated[
        Path | None,
        typer.Option("--instances", "-i", help="Instances file; default: the shipped examples/swe/instances.jsonl."),
    ] = None,
    model: ModelOpt = "embedded",
    run: Annotated[Path | None, typer.Option(help="Run folder; default runs/<instance_id>.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder.")] = None,
    repos: ReposOpt = None,
    locks: LocksOpt = None,
    sandbox: SandboxOpt = "bwrap",
    offline: OfflineOpt = False,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Draw the tree while it grows (in a terminal only).")
    ] = True,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Open the tree browser on the run; the search runs in its own process and goes on if the "
            "browser is closed.",
        ),
    ] = False,
    grade: Annotated[bool, typer.Option("--grade/--no-grade", help="Grade the chosen patch.")] = True,
    record: Annotated[Path | None, typer.Option(help="Record every model call into this replay cassette.")] = None,
    worlds: WorldsOpt = "local",
    address: AddressOpt = None,
    image: Annotated[
        str | None,
        typer.Option(help="With --sandbox docker: the image (default: the instance's official SWE-bench image)."),
    ] = None,
    *,
    settings: SearchConfig,
) -> None:
    """Solve one instance: prepare it, search with a live tree, write the run folder, grade the patch.

    With --resume, the run continues in the environment it recorded (never rebuilt: its states live
    there), with the settings it started with and the time it had left."""
    from trellis.cli.solve import resume_environment
    from trellis.cli.solve import solve as solve_instance
    from trellis.envs.swebench.container import ContainerEnvironment
    from trellis.envs.swebench.environment import SWEEnvironment
    from trellis.search.run import RunDir

    from trellis.models import load_model
    from trellis.render import LiveTree, TreeView, summary

    _check_sandbox(sandbox)
    _check_sources(repos, locks)
    _warn_reference_value(settings)
    if worlds not in EXECUTORS:
        raise UserError(f"unknown --worlds {worlds!r}; use one of {', '.join(EXECUTORS)}")
    if worlds != "ray" and address is not None:
        raise UserError("--address names a Ray cluster; give it with --worlds ray")
    if sandbox == "docker" and worlds == "ray":
        raise UserError(
            "--worlds ray builds worlds in bwrap or local sandboxes; with --sandbox docker, the "
            "containers run on this machine's engine (--parallel K starts K of them)"
        )
    if image is not None and sandbox != "docker":
        raise UserError("--image names the container image of --sandbox docker; give both, or neither")
    if record is not None:
        output_file(record, "--record")
    instance, path = _find_instance(instance_id, instances)
    sources = Sources.beside(path, repos, locks)
    if watch and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("--watch opens the tree browser, which needs a terminal; without one, leave --watch out")
    run_dir = _run_folder(instance_id, run, resume)
    if watch:
        _watch(run_dir, _solve_args(ctx, run_dir, fresh=resume is None))
        return
    if resume is not None:
        env = resume_environment(instance, run_dir, sandbox)
        saved = RunDir(run_dir).saved_config(RunDir(run_dir).load_tree())
        if saved != settings:
            console.print("[dim]a resumed run keeps the settings it started with; new settings are ignored[/]")
        if env.kind != sandbox:
            console.print(f"[dim]the run continues in its own {env.kind} sandbox[/]", highlight=False)
    elif sandbox == "docker":
        env = ContainerEnvironment(instance, image).check()  # a missing image is reported before the model loads
    else:
        env = SWEEnvironment(instance, sandbox=sandbox)
    chat: ChatModel = load_model(model)  # a bad model spec is reported before anything is prepared
    critic = _critic_model(model, chat)
    if record is not None:
        from trellis.models import ReplayModel

        recorded_chat = ReplayModel.record(chat, record)
        critic = recorded_chat if critic is chat else ReplayModel.record(critic, record)
        chat = recorded_chat
    on_ray = None
    if worlds == "ray":
        from trellis.cli.ray_batch import connect
        from trellis.cli.solve import OnRay

        connect(address)  # the runtime lives as long as this command
        on_ray = OnRay(source=sources.source(instance), lock=sources.lock(instance_id), offline=offline)

    async def main() -> object:
        holder: dict[str, object] = {}
        try:
            if resume is None and isinstance(env, SWEEnvironment):  # never rebuilt for a resumed run
                with console.status(f"preparing {instance_id}…") as status:
                    await env.prepare(
                        sources.source(instance),
                        sources.lock(instance_id),
                        progress=lambda m: status.update(f"{instance_id}: {m}"),
                        offline=offline,
                    )
            # Frames are for a terminal; a log or a pipe gets the final tree and summary once, below.
            if live and console.is_terminal and not console.is_dumb_terminal:
                from rich.live import Live

                with Live(console=console, auto_refresh=False, vertical_overflow="crop") as screen:
                    view = LiveTree(screen, lambda: getattr(holder.get("ctx"), "tree", None), title=instance_id)
                    return await solve_instance(
                        env,
                        chat,
                        settings,
                        run_dir,
                        resume=resume is not None,
                        grade=grade,
                        model_name=chat.name,
                        listeners=(view,),
                        critic_model=critic,
                        on_context=lambda ctx: holder.update(ctx=ctx),
                        on_ray=on_ray,
                    )
            with console.status("searching…"):
                return await solve_instance(
                    env,
                    chat,
                    settings,
                    run_dir,
                    resume=resume is not None,
                    grade=grade,
                    model_name=chat.name,
                    critic_model=critic,
                    on_ray=on_ray,
                )
        finally:
            await chat.aclose()
            if critic is not chat:
                await critic.aclose()

    result = asyncio.run(main())
    folder = RunDir(run_dir)
    tree = folder.load_tree()
    info = folder.read_info()
    report = result.report  # type: ignore[attr-defined]
    if report is not None:
        info["resolved"] = report.resolved
    console.print(TreeView(tree, top=4))
    console.print(summary(tree, info))
    outcome = result.outcome  # type: ignore[attr-defined]
    console.print(f"stopped: {outcome.stop_reason}")
    if outcome.patch:
        console.print(f"patch ({len(outcome.patch.splitlines())} lines): {run_dir / 'final.patch'}")
    else:
        console.print("[yellow]no patch was produced[/]")
    if report is not None:
        verdict = "[green]resolved[/]" if report.resolved else "[red]not resolved[/]"
        f2p = report.tests_status.get("FAIL_TO_PASS")
        detail = f" (FAIL_TO_PASS {len(f2p.success)}/{len(f2p.success) + len(f2p.failure)})" if f2p else ""
        console.print(f"graded: {verdict}{detail}; report: {run_dir / 'report.json'}")
    console.print(f"run folder: {run_dir}  (trellis tree show {run_dir})")


def _solve_args(ctx: typer.Context, run_dir: Path, *, fresh: bool) -> list[str]:
    """This `swe solve` command's arguments for the search's own process: the same settings, no live
    view and no browser, and the run folder named (a new run's default is this process's choice)."""
    args: list[str] = []
    for param in ctx.command.params:  # typer's own click classes: told apart by their kind, not their type
        value = ctx.params.get(param.name or "")
        if param.name in ("watch", "live", "run") or value is None:
            continue
        if param.param_type_name == "argument":
            args.insert(0, str(value))
        elif getattr(param, "is_flag", False):
            if param.secondary_opts:
                args.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                args.append(param.opts[0])
        elif param.multiple:
            for item in value:
                args += [param.opts[0], str(item)]
        else:
            args += [param.opts[0], str(value)]
    if fresh:
        args += ["--run", str(run_dir)]
    return ["swe", "solve", *args, "--no-live"]


def _watch(run_dir: Path, args: list[str]) -> None:
    """Run the search in its own process (output in RUN/solve.log) and browse the run while it grows.

    The search's process is in a session of its own: closing the browser, or the terminal, leaves it
    running, and every node it makes is stored as it is made."""
    from trellis.cli.browse import browse

    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "solve.log"
    env = {**os.environ, "COLUMNS": str(console.width)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "trellis.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    browse(run_dir, process=process, log=log_path)
    code = process.poll()
    if code is None:
        console.print(
            f"the search goes on in process {process.pid} (log: {log_path}); watch it again with "
            f"`trellis tree browse {run_dir}`; stop it with `kill {process.pid}` and continue it later with "
            f"--resume {run_dir}",
            highlight=False,
        )
        return
    console.print(log_path.read_text(encoding="utf-8", errors="replace"), end="", markup=False, highlight=False)
    if code != 0:
        raise typer.Exit(code if code > 0 else 1)


@app.command()
@search_options(SOLVE_DEFAULTS, SOLVE_STRATEGIES)
def batch(
    instances: InstancesOpt,
    ids: Annotated[list[str] | None, typer.Option("--id", help="Only these instances (repeatable).")] = None,
    runs: Annotated[
        Path, typer.Option(help="Folder of run folders, one per instance (with Ray: a folder every worker sees).")
    ] = Path("runs"),
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Instances solved at once (local default: 1; ray default: as the cluster's CPUs allow)."
        ),
    ] = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    retries: RetriesOpt = 3,
    model: ModelOpt = "embedded",
    repos: ReposOpt = None,
    locks: LocksOpt = None,
    sandbox: SandboxOpt = "bwrap",
    offline: OfflineOpt = False,
    image: Annotated[
        str | None,
        typer.Option(
            help="With --sandbox docker: the image of each instance, {instance_id} standing for its id "
            "(default: the official SWE-bench images)."
        ),
    ] = None,
    *,
    settings: SearchConfig,
) -> None:
    """Solve many instances; finished ones are skipped and interrupted ones resumed when run again.

    An instance that fails is reported in the summary (and the command exits with 1); the others go
    on. Running the same command again retries the failed ones. With --executor ray, each instance is
    a Ray task built and solved on a worker; a task whose worker dies runs again and resumes its run."""
    from trellis.cli.batch import BatchJob
    from trellis.envs.swebench.instance import Prediction, select, write_predictions

    from trellis.models import load_model

    _warn_reference_value(settings)
    if executor not in EXECUTORS:
        raise UserError(f"unknown --executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if executor != "ray" and address is not None:
        raise UserError("--address names a Ray cluster; give it with --executor ray")
    _check_sandbox(sandbox)
    _check_sources(repos, locks)
    output_folder(runs, "--runs")
    everything = _load(instances)
    chosen = select(everything, ids) if ids else everything
    sources = Sources.beside(instances, repos, locks)
    chat = load_model(model)  # a bad model spec is reported before anything is prepared
    jobs = [
        BatchJob(
            instance=instance,
            run_dir=(runs / instance.instance_id).resolve(),
            settings=settings,
            model=model,
            sandbox=sandbox,
            repos=tuple(path.resolve() for path in sources.repos),
            locks=sources.locks.resolve() if sources.locks is not None else None,
            offline=offline,
            image=image.replace("{instance_id}", instance.instance_id) if image else None,
        )
        for instance in chosen
    ]
    with _progress() as progress:
        where = "on Ray" if executor == "ray" else f"with {workers or 1} workers"
        bar = progress.add_task(f"solving {len(jobs)} instances {where}", total=len(jobs))

        def done(row: BatchRow) -> None:
            progress.update(bar, advance=1, description=f"{row.instance_id}: {row.state}")

        if executor == "ray":
            rows = _run_on_ray(jobs, address, retries, workers, done, chat)
        else:
            rows = asyncio.run(_run_here(jobs, chat, model, workers or 1, done))
    predictions: list[Prediction] = []
    by_id = {row.instance_id: row for row in rows}
    for instance in chosen:
        row = by_id.get(instance.instance_id)
        if row is not None:
            predictions.extend(row.predictions)
    write_predictions(runs / "predictions.jsonl", predictions)
    table = Table(title="batch")
    table.add_column("instance", no_wrap=True)
    table.add_column("run")
    table.add_column("resolved")
    for row in sorted(rows, key=lambda r: r.instance_id):
        report = row.report
        resolved = "-" if report is None else ("[green]yes[/]" if report.resolved else "[red]no[/]")
        table.add_row(row.instance_id, "[red]failed[/]" if row.error else row.state, resolved)
    console.print(table)
    console.print(f"predictions: {runs / 'predictions.jsonl'}")
    failed = [row for row in rows if row.error]
    for row in sorted(failed, key=lambda r: r.instance_id):
        console.print(f"[red]{row.instance_id} failed:[/] {escape(row.error)}", highlight=False)
    if failed:
        console.print(
            f"{len(failed)} of {len(chosen)} instances failed; fix the cause and run the same command again "
            "(finished instances are skipped, interrupted ones resumed)",
            highlight=False,
        )
        raise typer.Exit(1)


async def _run_here(
    jobs: list[BatchJob], chat: ChatModel, spec: str, workers: int, done: Callable[[BatchRow], None]
) -> list[BatchRow]:
    """The local executor: asyncio tasks in this process sharing one model (and one critic)."""
    from trellis.cli.batch import run_local

    critic = _critic_model(spec, chat)
    try:
        return await run_local(jobs, chat, critic, workers, done)
    finally:
        await chat.aclose()
        if critic is not chat:
            await critic.aclose()


def _run_on_ray(
    jobs: list[BatchJob],
    address: str | None,
    retries: int,
    workers: int | None,
    done: Callable[[BatchRow], None],
    chat: ChatModel,
) -> list[BatchRow]:
    """The Ray executor: each worker builds its own model from the spec; this process only checked it."""
    asyncio.run(chat.aclose())
    try:
        from trellis.cli.ray_batch import run_on_ray
    except ImportError as exc:
        raise UserError(f"--executor ray needs Ray ({exc}); install it with: pip install 'trellis[ray]'") from exc
    return run_on_ray(jobs, address=address, retries=retries, max_in_flight=workers, on_done=done)
