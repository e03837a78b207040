"""`trellis swe batch --executor ray` (and `qa batch`): one Ray task per instance, anywhere on a Ray cluster.

Each task runs `trellis.cli.batch.run_job` on a worker: it builds the model from its spec, prepares the
instance's environment and sandbox there, searches and grades, exactly as the local executor does per
instance. When a worker dies, Ray runs the task again (`retries` times); the run folder then holds the
interrupted run, so the task resumes it from its checkpoint rather than starting over.

What the workers must see: the output folder (run folders are written and resumed there; the driver
reads nothing from it, every result comes back with the task), the instances' repositories and locks
at the paths the driver was given, and, for a retry to resume on another machine, the environment
cache ($TRELLIS_CACHE_DIR: a run's states are git objects of its environment). On one machine all of
that holds; on a cluster, put them on a shared file system, or keep the default cache per machine and
rerun the batch for an instance whose retry landed where its environment is not (it is reported).

This module imports Ray; it is imported only when `--executor ray` is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ray
from ray.exceptions import RayError, RayTaskError
from trellis.cli.batch import BatchJob, BatchRow, run_job

from trellis.errors import UserError

J = TypeVar("J")
R = TypeVar("R")


def _solve_remote(job: BatchJob) -> BatchRow:
    import asyncio

    return asyncio.run(run_job(job))


def connect(address: str | None) -> bool:
    """Join the Ray cluster at `address` (`auto`: the one `ray start` began on this machine; HOST:PORT),
    else at $RAY_ADDRESS (set by `ray job submit`), else start a Ray runtime in this process, never
    joining a cluster unasked; returns whether this call started or joined one (to shut down after).
    A runtime this process already holds is used as it is."""
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    options: dict[str, Any] = {"logging_level": "WARNING"}
    if target == "local":
        options["include_dashboard"] = False
    try:
        ray.init(address=target, **options)
    except ConnectionError as exc:
        raise UserError(
            f"no Ray cluster at {target}: {exc}; start one (`ray start --head`) and give its address, "
            "or leave --address out to run on this machine"
        ) from exc
    return True


def run_tasks_on_ray(
    jobs: Sequence[J],
    work: Callable[[J], R],
    failed: Callable[[J, str], R],
    *,
    address: str | None = None,
    retries: int = 3,
    max_in_flight: int | None = None,
    on_done: Callable[[R], None] = lambda row: None,
) -> list[R]:
    """Run `work(job)` for every job as a Ray task (at most `max_in_flight` at once; None: as many as the
    cluster's CPUs hold); results in the order the tasks finish. A task whose worker died `retries + 1`
    times gives `failed(job, why)`."""
    started = connect(address)
    remote = ray.remote(work).options(num_cpus=1, max_retries=retries, retry_exceptions=False)
    waiting = list(jobs)
    pending: dict[Any, J] = {}
    rows: list[R] = []
    try:
        while waiting or pending:
            while waiting and (max_in_flight is None or len(pending) < max_in_flight):
                job = waiting.pop(0)
                pending[remote.remote(job)] = job
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    row: R = ray.get(ref)
                except RayError as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
                    # an error raised by the job itself is not retried; a worker that died was, `retries` times
                    how = (
                        "its Ray task raised"
                        if isinstance(exc, RayTaskError)
                        else f"its worker died {retries + 1} times"
                    )
                    row = failed(job, f"{how} ({type(exc).__name__}: {first}); run the batch again to resume it")
                rows.append(row)
                on_done(row)
    finally:
        for ref in pending:  # interrupted: the tasks are cancelled, their run folders resume next time
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
    return rows


def run_on_ray(
    jobs: Sequence[BatchJob],
    *,
    address: str | None = None,
    retries: int = 3,
    max_in_flight: int | None = None,
    on_done: Callable[[BatchRow], None] = lambda row: None,
) -> list[BatchRow]:
    """Every SWE-bench instance as a Ray task (see `run_tasks_on_ray`); a task that failed for good is a
    failed row, and running the batch again resumes it."""

    def failed(job: BatchJob, why: str) -> BatchRow:
        return BatchRow(instance_id=job.instance.instance_id, state="failed", error=why)

    return run_tasks_on_ray(
        jobs, _solve_remote, failed, address=address, retries=retries, max_in_flight=max_in_flight, on_done=on_done
    )
