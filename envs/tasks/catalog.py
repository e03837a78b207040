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
catalog of your own laid out the same way, and `load_tasks(file.jsonl)` one written as HumanEval's
records are (see `load_jsonl_tasks`). tests/envs/test_code_tasks.py checks every task.
"""

from __future__ import annotations

import gzip
import json
import re
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
    if isinstance(root, Path) and root.is_file() and root.name.endswith((".jsonl", ".jsonl.gz")):
        tasks = load_jsonl_tasks(root)
    elif not root.is_dir():
        raise UserError(
            f"the code task catalog {where} cannot be read: it is not a folder of task folders "
            f"nor a .jsonl (or .jsonl.gz) file of task records; {fix}"
        )
    else:
        folders = sorted((entry for entry in root.iterdir() if entry.is_dir()), key=lambda entry: entry.name)
        if not folders:
            raise UserError(f"the code task catalog {where} is damaged: it holds no task folders; {fix}")
        tasks = [_load_task(folder, where, fix) for folder in folders]
    repeated = sorted(task_id for task_id, count in Counter(task.id for task in tasks).items() if count > 1)
    if repeated:
        raise UserError(f"the code task catalog {where} is damaged: repeated ids {', '.join(repeated)}; {fix}")
    return tasks


def load_jsonl_tasks(path: Path) -> list[CodeTask]:
    """Tasks from a JSON Lines file (gzipped when its name ends in `.gz`), one record a line, as
    HumanEval writes them: `task_id`, `prompt` (the stub), `entry_point`, `test` (a
    `check(candidate)` function) and `canonical_solution` (the body the prompt ends before;
    optional). The hidden test runs `check` on the answer in a module that holds the prompt's code and
    then the answer's names, as HumanEval's harness runs prompt, answer and test in one namespace
    (the prompt's helpers are there even where the answer leaves them out). A record may give `tests`
    (pytest tests importing from `solution`) instead of `test`, `solution` (a whole reference file)
    instead of `canonical_solution`, and `level` (1 to 5; 3 when absent). Ids become folder names:
    `HumanEval/0` is `HumanEval_0`."""
    fix = "fix the catalog"
    try:
        raw = path.read_bytes()
        lines = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8").splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # gzip's errors are OSError or EOFError
        raise UserError(f"the code task catalog {path} cannot be read: {exc}; {fix}") from exc
    tasks: list[CodeTask] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        label = f"the code task catalog {path} is damaged: line {number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{label} is not JSON ({exc}); give one JSON object a line; {fix}") from exc
        if not isinstance(record, dict):
            raise UserError(f"{label} is not a JSON object; {fix}")
        tests, check = record.get("tests"), record.get("test")
        missing = [key for key in ("task_id", "prompt", "entry_point") if not isinstance(record.get(key), str)]
        if not isinstance(tests, str) and not isinstance(check, str):
            missing.append("test (or tests)")
        if missing:
            raise UserError(f"{label} lacks {', '.join(missing)} (each a string); {fix}")
        entry, prompt = record["entry_point"], record["prompt"]
        if not entry.isidentifier():
            raise UserError(f"{label}: entry_point {entry!r} is not a Python name; {fix}")
        if not isinstance(tests, str):
            if not re.search(r"^def check\(", str(check), re.M):
                raise UserError(f"{label}: its test defines no check(candidate) function; {fix}")
            tests = f"{prompt}\n\nfrom solution import *  # noqa: F403\nfrom solution import {entry}\n\n{check}\n\n"
            tests += f"def test_check():\n    check({entry})\n"
        solution = record.get("solution")
        if not isinstance(solution, str):
            body = record.get("canonical_solution")
            solution = prompt + (body if isinstance(body, str) else "")
        task_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", record["task_id"]).strip("._-") or f"task_{number}"
        try:
            task = CodeTask(
                id=task_id,
                level=record.get("level", 3),
                entry_point=entry,
                prompt=prompt,
                tests=tests,
                solution=solution,
            )
        except ValidationError as exc:
            raise UserError(f"{label}: {_problems(exc, 'the record')}; {fix}") from exc
        tasks.append(_trimmed(task))
    if not tasks:
        raise UserError(f"the code task catalog {path} is damaged: it holds no task records; {fix}")
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
        raise UserError(
            f"the code task catalog {where} is damaged: {label}: {_problems(exc, 'the entry')}; {fix}"
        ) from exc
    if not folder.name.endswith(f"-{task.id}") and folder.name != task.id:
        raise UserError(
            f"the code task catalog {where} is damaged: {label} holds task {task.id!r}; "
            f"name its folder NN-{task.id}; {fix}"
        )
    return _trimmed(task)


def _trimmed(task: CodeTask) -> CodeTask:
    """`task` without the blank lines around its code, which are not part of it."""
    return task.model_copy(update={name: getattr(task, name).strip() + "\n" for name in CODE_FILES})


def _problems(exc: ValidationError, whole: str) -> str:
    """What a validation error found, each problem named by its field (`whole` where it has none)."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in exc.errors())


TASKS: list[CodeTask] = load_tasks()
