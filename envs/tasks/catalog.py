"""Function-level code tasks written for trellis, in five levels of difficulty.

The tasks are data: a folder per task under `shipped/` (next to this module, shipped as package
data), named `NN-<id>` so that the catalog keeps its order, holding

    task.yaml     id, level (1 easy to 5 hard), entry_point (the function the agent implements)
    prompt.py     the solution.py the agent starts from: the signature and a docstring whose
                  doctest examples are the visible tests (the docstring ends with a blank line
                  before the closing quotes, so the examples parse from the raw text too)
    tests.py      the hidden pytest tests, which import from `solution`; they check more than the
                  examples do, and only what the prompt states
    solution.py   a reference solution, which passes both the examples and the hidden tests

`TASKS` is read from there once, when this module is first imported; `load_tasks(folder)` reads a
catalog of your own laid out the same way. tests/envs/test_code_tasks.py checks every task.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trellis.errors import UserError

CATALOG_FOLDER = "shipped"
CODE_FILES = ("prompt", "tests", "solution")


class CodeTask(BaseModel):
    """One function-level task: implement `entry_point` in `solution.py` starting from `prompt`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    level: int = Field(ge=1, le=5)
    """1 (easy) to 5 (hard)."""
    entry_point: str
    """The function or class the hidden tests import from `solution`."""
    prompt: str
    """The starting `solution.py`: signature and docstring, whose doctest examples are the visible tests."""
    tests: str
    """Hidden pytest tests; the agent never sees them."""
    solution: str
    """A reference solution that passes the examples and the hidden tests."""


def load_tasks(path: str | Path | None = None) -> list[CodeTask]:
    """The tasks in a catalog folder (by default the shipped one), in the order of their folders' names.

    Raises `UserError` naming the catalog and the task when a file is missing, unreadable or wrong.
    """
    if path is None:
        root: Traversable = resources.files(__package__ or "trellis.envs.tasks").joinpath(CATALOG_FOLDER)
        fix = "reinstall trellis to restore it"
    else:
        root, fix = Path(path), "fix the catalog"
    where = str(root)
    if not root.is_dir():
        raise UserError(f"the code task catalog {where} cannot be read: it is not a folder of task folders; {fix}")
    folders = sorted((entry for entry in root.iterdir() if entry.is_dir()), key=lambda entry: entry.name)
    if not folders:
        raise UserError(f"the code task catalog {where} is damaged: it holds no task folders; {fix}")
    tasks = [_load_task(folder, where, fix) for folder in folders]
    repeated = sorted(task_id for task_id, count in Counter(task.id for task in tasks).items() if count > 1)
    if repeated:
        raise UserError(f"the code task catalog {where} is damaged: repeated ids {', '.join(repeated)}; {fix}")
    return tasks


def _load_task(folder: Traversable, where: str, fix: str) -> CodeTask:
    label = f"task {folder.name}"
    try:
        entry = yaml.safe_load(folder.joinpath("task.yaml").read_text(encoding="utf-8"))
        if not isinstance(entry, dict):
            raise UserError(f"the code task catalog {where} is damaged: {label}: task.yaml is not a mapping; {fix}")
        code = {name: folder.joinpath(f"{name}.py").read_text(encoding="utf-8") for name in CODE_FILES}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"the code task catalog {where} cannot be read: {label}: {exc}; {fix}") from exc
    try:
        task = CodeTask.model_validate({**entry, **code})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the entry'}: {e['msg']}" for e in exc.errors())
        raise UserError(f"the code task catalog {where} is damaged: {label}: {problems}; {fix}") from exc
    if not folder.name.endswith(f"-{task.id}") and folder.name != task.id:
        raise UserError(
            f"the code task catalog {where} is damaged: {label} holds task {task.id!r}; "
            f"name its folder NN-{task.id}; {fix}"
        )
    # blank lines around the code are not part of it
    return task.model_copy(update={name: getattr(task, name).strip() + "\n" for name in CODE_FILES})


TASKS: list[CodeTask] = load_tasks()
