"""Batches of jobs of any kind (code tasks, questions), run here one after another with one model, or
as Ray tasks that build their own model on their workers. The kinds supply what one job does; this
module supplies where it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from trellis.cli.config import EXECUTORS

from trellis.errors import UserError
from trellis.models.base import ChatModel

J = TypeVar("J")
R = TypeVar("R")


def check_executor(executor: str, address: str | None, workers: int | None) -> None:
    if executor not in EXECUTORS:
        raise UserError(f"unknown --executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if executor != "ray" and (address is not None or workers is not None):
        raise UserError("--address and --workers are for Ray; give them with --executor ray")


async def with_own_model(spec: str, run: Callable[[ChatModel], Awaitable[R]], failed: Callable[[str], R]) -> R:
    """`run` with a model of its own, built from `spec` (in a worker process) and closed after."""
    from trellis.models import load_model

    try:
        chat = load_model(spec)
    except Exception as exc:
        return failed(f"{type(exc).__name__}: {exc}")
    try:
        return await run(chat)
    finally:
        await chat.aclose()


def run_batch(
    jobs: Sequence[J],
    *,
    executor: str,
    chat: ChatModel,
    local: Callable[[J, ChatModel], Awaitable[R]],
    remote: Callable[[J], R],
    failed: Callable[[J, str], R],
    address: str | None = None,
    retries: int = 3,
    workers: int | None = None,
    on_done: Callable[[R], None] = lambda row: None,
) -> list[R]:
    """Every job: `local(job, chat)` one after another here, or `remote(job)` as a Ray task each (a
    module-level function, which builds its own model; `chat` is only closed then). A job whose Ray
    task failed for good gives `failed(job, why)`. Results in the order the jobs finish."""
    if executor == "ray":
        asyncio.run(chat.aclose())
        try:
            from trellis.cli.ray_batch import run_tasks_on_ray
        except ImportError as exc:
            raise UserError(f"--executor ray needs Ray ({exc}); install it with: pip install 'trellis[ray]'") from exc
        return run_tasks_on_ray(
            jobs, remote, failed, address=address, retries=retries, max_in_flight=workers, on_done=on_done
        )

    async def main() -> list[R]:
        rows = []
        try:
            for job in jobs:
                row = await local(job, chat)
                rows.append(row)
                on_done(row)
        finally:
            await chat.aclose()
        return rows

    return asyncio.run(main())
