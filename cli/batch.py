"""A batch of SWE-bench instances: the job of one instance, the same wherever it runs.

`solve_one` is what every executor runs per instance: skip an instance whose run folder already
holds predictions, resume one whose run folder holds an interrupted run (in the environment it
recorded), otherwise prepare the environment and search. The local executor (`run_local`) runs it
in asyncio tasks that share one model; the Ray executor (`trellis.cli.ray_batch`) runs it in a Ray task
per instance, on whichever machine the task lands (`run_job` builds the model there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from trellis.envs.swebench.harness import InstanceReport
from trellis.envs.swebench.instance import Prediction, SWEInstance
from trellis.search.config import SearchConfig

from trellis.errors import UserError
from trellis.models.base import ChatModel


class BatchJob(BaseModel):
    """Everything one instance's job needs; plain data, so it can be sent to another process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance: SWEInstance
    run_dir: Path
    """The instance's run folder (absolute: a Ray worker's working folder is not the driver's)."""
    settings: SearchConfig
    model: str
    """The model spec; an executor that runs jobs elsewhere builds the model from it there."""
    sandbox: str = "bwrap"
    repos: tuple[Path, ...] = ()
    """Folders searched for the instance's repository (a URL on GitHub when none holds it)."""
    locks: Path | None = None
    offline: bool = False
    image: str | None = None
    """With the docker sandbox: the instance's image (default: its official SWE-bench image)."""


class BatchRow(BaseModel):
    """What became of one instance: its state, its grade, its predictions, or the error."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    state: str
    """solved, resumed, done earlier or failed."""
    report: InstanceReport | None = None
    error: str = ""
    predictions: list[Prediction] = []


def repository_source(instance: SWEInstance, repos: Sequence[Path], repo: str | None = None) -> str:
    """Where to clone the instance's repository from: `repo`, a folder in `repos` that holds it, or GitHub."""
    from trellis.envs.swebench.environment import find_repository

    if repo:
        return repo
    found = find_repository(instance.repo, list(repos))
    return found or f"https://github.com/{instance.repo}.git"


def lock_file(instance_id: str, locks: Path | None) -> Path | None:
    """The instance's pinned requirements in `locks`, where there are some."""
    if locks is None:
        return None
    path = locks / f"{instance_id}.txt"
    return path if path.exists() else None


async def solve_one(job: BatchJob, chat: ChatModel, critic: ChatModel) -> BatchRow:
    """Solve, resume or skip one instance; a failure is returned as a row, never raised."""
    from trellis.cli.solve import resume_environment
    from trellis.cli.solve import solve as solve_instance
    from trellis.envs.swebench.container import ContainerEnvironment
    from trellis.envs.swebench.environment import SWEEnvironment
    from trellis.envs.swebench.instance import read_predictions
    from trellis.search.run import RunDir

    from trellis.models.pool import affinity

    instance = job.instance
    instance_id = instance.instance_id
    run_dir = job.run_dir
    predictions = run_dir / "predictions.jsonl"
    report = None
    if predictions.exists():
        state = "done earlier"
    else:
        resumed = RunDir(run_dir).exists()
        state = "resumed" if resumed else "solved"
        try:
            env: SWEEnvironment | ContainerEnvironment
            if resumed:  # never rebuild the environment an interrupted run's states live in
                env = resume_environment(instance, run_dir, job.sandbox)
            elif job.sandbox == "docker":  # the image is the environment
                env = ContainerEnvironment(instance, job.image).check()
            else:
                env = SWEEnvironment(instance, sandbox=job.sandbox)
                source = repository_source(instance, job.repos)
                await env.prepare(source, lock_file(instance_id, job.locks), offline=job.offline)
            with affinity(instance_id):  # a pool of model servers keeps one tree on one server
                result = await solve_instance(
                    env, chat, job.settings, run_dir, resume=resumed, model_name=chat.name, critic_model=critic
                )
        except Exception as exc:  # one instance's failure is reported; the others go on
            return BatchRow(instance_id=instance_id, state="failed", error=f"{type(exc).__name__}: {exc}")
        report = result.report
    try:
        found = read_predictions(predictions)
    except UserError as exc:
        return BatchRow(instance_id=instance_id, state="failed", report=report, error=str(exc))
    return BatchRow(instance_id=instance_id, state=state, report=report, predictions=found)


def critic_model(spec: str, solver: ChatModel) -> ChatModel:
    """A second in-process model for the critic, so the two roles keep their own prefix caches."""
    from trellis.models import load_model

    return load_model(spec) if spec.split(":")[0] in ("embedded", "gguf") else solver


async def run_job(job: BatchJob) -> BatchRow:
    """One instance's job with a model of its own, built from the job's spec (in a worker process)."""
    from trellis.models import load_model

    try:
        chat = load_model(job.model)
    except Exception as exc:
        return BatchRow(instance_id=job.instance.instance_id, state="failed", error=f"{type(exc).__name__}: {exc}")
    critic = critic_model(job.model, chat)
    try:
        return await solve_one(job, chat, critic)
    finally:
        await chat.aclose()
        if critic is not chat:
            await critic.aclose()


async def run_local(
    jobs: Sequence[BatchJob],
    chat: ChatModel,
    critic: ChatModel,
    workers: int,
    on_done: Callable[[BatchRow], None] = lambda row: None,
) -> list[BatchRow]:
    """Every job in this process, `workers` at a time, sharing one model; rows in the order they finish."""
    gate = asyncio.Semaphore(workers)
    rows: list[BatchRow] = []

    async def one(job: BatchJob) -> None:
        async with gate:
            row = await solve_one(job, chat, critic)
        rows.append(row)
        on_done(row)

    await asyncio.gather(*(one(job) for job in jobs))
    return rows
