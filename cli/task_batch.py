"""Function-level code tasks through the command line: the job of one task, the same wherever it runs.

`solve_task` is what `trellis tasks solve` and every batch executor (`trellis.cli.jobs.run_batch`)
run per task: a task whose run folder holds a graded result is read back, an interrupted run resumed
(in its own repository, where its states are), otherwise a fresh repository is made and searched; the
chosen answer is then graded by the hidden tests, which the search never sees. `task_remote` is that
job as a Ray task, with a model of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from trellis.envs.tasks.catalog import TASKS, CodeTask, load_tasks
from trellis.search.config import SearchConfig

from trellis.errors import UserError
from trellis.models.base import ChatModel

RESULT = "result.json"


class TaskJob(BaseModel):
    """Everything one task's job needs; plain data, so it can be sent to another process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str
    run_dir: Path
    """The task's folder: `repo/` (its repository), `run/` (the search's run folder), `result.json`."""
    settings: SearchConfig
    model: str
    catalog: Path | None = None
    """A task catalog of one's own (`load_tasks`); default: the shipped tasks."""


class TaskRow(BaseModel):
    """What became of one task: its grade by the hidden tests, or the error."""

    model_config = ConfigDict(extra="forbid")

    id: str
    level: int = 0
    state: str = ""
    """searched, resumed, done earlier or failed."""
    solved: bool = False
    hidden: str = ""
    """The hidden tests' summary, e.g. "3/3 hidden tests pass"."""
    tokens: int = 0
    nodes: int = 0
    seconds: float = 0.0
    stop: str = ""
    error: str = ""


def catalog_tasks(catalog: Path | None) -> list[CodeTask]:
    return load_tasks(catalog) if catalog is not None else list(TASKS)


def find_task(task_id: str, catalog: Path | None = None) -> CodeTask:
    tasks = catalog_tasks(catalog)
    for task in tasks:
        if task.id == task_id:
            return task
    raise UserError(f"no task {task_id!r} in the catalog; `trellis tasks list` shows the {len(tasks)} there are")


async def solve_task(job: TaskJob, chat: ChatModel) -> TaskRow:
    """Search, resume or read back one task, then grade its answer; a failure is a row, never raised."""
    from trellis.agents.prompts import completion_prompt
    from trellis.envs.sandbox import BwrapSandbox
    from trellis.envs.tasks.world import SOLUTION, CodeTaskWorld, fresh_task_repository
    from trellis.search.run import RunDir, run_search

    from trellis.world import Opening

    result = job.run_dir / RESULT
    try:
        task = find_task(job.task_id, job.catalog)
        folder, repo = RunDir(job.run_dir / "run"), job.run_dir / "repo"
        resumed = folder.exists()
        if resumed and (ran := folder.load_tree().meta.get("instance_id")) != task.id:
            raise UserError(
                f"{job.run_dir} holds a run of task {ran!r}, not {task.id!r}; give the task a folder of its own"
            )
        if result.is_file():
            return TaskRow.model_validate({**json.loads(result.read_text()), "state": "done earlier"})
        config = job.settings
        if resumed:
            if not repo.is_dir():
                raise UserError(f"{folder.path} holds a run but its repository {repo} is gone; remove {job.run_dir}")
            config = folder.saved_config(folder.load_tree())
        else:
            fresh_task_repository(task, repo)
        sandbox = BwrapSandbox(repo)
        try:
            world = CodeTaskWorld(task, sandbox)
            opening = Opening(prompt=completion_prompt(task.prompt), path=SOLUTION) if config.opening else None
            outcome = await run_search(
                task=world.task,
                worlds=[world],
                model=chat,
                config=config,
                run_dir=folder.path,
                resume=resumed,
                opening=opening,
                info={"instance_id": task.id, "model": chat.name},
            )
            tree = folder.load_tree()
            final = tree.nodes.get(outcome.final_node) if outcome.final_node else None
            solved, hidden = False, "no answer chosen"
            if final is not None and final.state_id:
                reward = await world.grade(final.state_id)
                solved, hidden = reward.resolved, reward.summary
        finally:
            await sandbox.close()
    except Exception as exc:  # one task's failure is reported; the others go on
        return TaskRow(id=job.task_id, state="failed", error=f"{type(exc).__name__}: {exc}")
    usage = tree.total_usage()
    row = TaskRow(
        id=task.id,
        level=task.level,
        state="resumed" if resumed else "searched",
        solved=solved,
        hidden=hidden,
        tokens=usage.total_tokens,
        nodes=len(tree),
        seconds=round(usage.seconds, 1),
        stop=outcome.stop_reason,
    )
    partial = result.with_suffix(".partial")
    partial.write_text(row.model_dump_json(indent=1) + "\n")
    partial.replace(result)  # whole or not at all
    return row


def task_failed(job: TaskJob, why: str) -> TaskRow:
    return TaskRow(id=job.task_id, state="failed", error=why)


def task_remote(job: TaskJob) -> TaskRow:
    """One task as a Ray task: a model of its own, built from the job's spec on the worker."""
    import asyncio

    from trellis.cli.jobs import with_own_model

    return asyncio.run(with_own_model(job.model, lambda chat: solve_task(job, chat), lambda why: task_failed(job, why)))
