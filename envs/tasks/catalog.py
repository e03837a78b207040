"""Function-level code tasks written for trellis, in five levels of difficulty.

The tasks are data: `tasks.yaml`, shipped next to this module, holds for each task a prompt (the
signature and a docstring with doctest examples, the file the agent starts from), hidden pytest
tests, and a reference solution used to check the task itself. `TASKS` is read from it once, when
this module is first imported.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trellis.errors import UserError

CATALOG_FILE = "tasks.yaml"


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
    """The tasks in a catalog file (by default the shipped `tasks.yaml`), in file order.

    Raises `UserError` naming the file and the entry when the file cannot be read or is damaged.
    """
    if path is None:
        shipped = resources.files(__package__ or "trellis.envs.tasks").joinpath(CATALOG_FILE)
        where, fix = str(shipped), "reinstall trellis to restore it"
    else:
        shipped = None
        where, fix = str(path), "fix the file"
    try:
        text = shipped.read_text(encoding="utf-8") if shipped is not None else Path(where).read_text(encoding="utf-8")
        entries = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"the code task catalog {where} cannot be read ({exc}); {fix}") from exc
    if not isinstance(entries, list) or not entries:
        raise UserError(f"the code task catalog {where} is damaged: it should be a non-empty list of tasks; {fix}")
    tasks = []
    for number, entry in enumerate(entries, 1):
        try:
            task = CodeTask.model_validate(entry)
        except ValidationError as exc:
            name = entry.get("id") if isinstance(entry, dict) else None
            label = f"task {number} ({name})" if isinstance(name, str) else f"task {number}"
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the entry'}: {e['msg']}" for e in exc.errors())
            raise UserError(f"the code task catalog {where} is damaged: {label}: {problems}; {fix}") from exc
        # a block literal ends in one newline; blank lines around the code are not part of it
        code = {field: getattr(task, field).strip() + "\n" for field in ("prompt", "tests", "solution")}
        tasks.append(task.model_copy(update=code))
    repeated = sorted(task_id for task_id, count in Counter(task.id for task in tasks).items() if count > 1)
    if repeated:
        raise UserError(f"the code task catalog {where} is damaged: repeated ids {', '.join(repeated)}; {fix}")
    return tasks


TASKS: list[CodeTask] = load_tasks()
