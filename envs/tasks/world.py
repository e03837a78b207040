"""Function-level code tasks as worlds: the agent edits `solution.py`; hidden tests give the reward."""

from __future__ import annotations

import tempfile
from pathlib import Path

from trellis.envs.code.testlog import PASSING, parse_pytest_log
from trellis.envs.code.workspace import init_repository
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox.host import HostSandbox
from trellis.envs.tasks.catalog import TASKS, CodeTask

from trellis.errors import UserError
from trellis.world import Reward

HIDDEN_TEST = "_hidden_test.py"
TASK_TOOLS = ["view_file", "write_file", "replace", "shell", "run_tests", "finish", "reject"]


def get_task(task_id: str) -> CodeTask:
    for task in TASKS:
        if task.id == task_id:
            return task
    raise UserError(f"unknown code task {task_id!r}; known: {', '.join(t.id for t in TASKS)}")


def task_statement(task: CodeTask) -> str:
    return (
        f"Implement `{task.entry_point}` in solution.py so that it does what its docstring says.\n\n"
        f"solution.py now holds:\n```python\n{task.prompt}```\n"
        "Write the complete new solution.py with write_file, check it (for example with shell: "
        "python -c 'from solution import ...'), then call finish."
    )


def make_task_repository(task: CodeTask, root: str | Path | None = None) -> Path:
    """A fresh git repository holding the task's starting `solution.py`."""
    folder = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix=f"trellis-task-{task.id}-"))
    init_repository(folder, {"solution.py": task.prompt}, message=f"task {task.id}")
    return folder


class CodeTaskWorld(CodeWorld):
    """A code task in a sandbox; `reward()` runs the hidden tests (1.0 when all pass)."""

    def __init__(self, task: CodeTask, sandbox: HostSandbox, *, test_timeout: float = 60.0) -> None:
        super().__init__(
            sandbox,
            task=task_statement(task),
            test_command="python -m pytest -rA -q -p no:cacheprovider",
            test_timeout=test_timeout,
            hidden_paths=[HIDDEN_TEST],
            tools=TASK_TOOLS,
            # plain pytest is all the hidden tests need; plugins of this Python would cost seconds per run
            test_env={"PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        )
        self.code_task = task

    async def reward(self) -> Reward:
        await self.sandbox.write_file(HIDDEN_TEST, self.code_task.tests)
        try:
            result = await self.run(
                f"python -m pytest -rA -q -p no:cacheprovider {HIDDEN_TEST}", timeout=self.test_timeout
            )
        finally:
            self.sandbox.host_path(HIDDEN_TEST).unlink(missing_ok=True)
        statuses = parse_pytest_log(result.stdout)
        passed = sum(1 for status in statuses.values() if status in PASSING)
        resolved = bool(statuses) and passed == len(statuses) and result.ok
        return Reward(
            value=1.0 if resolved else 0.0,
            resolved=resolved,
            details={"tests": statuses, "passed": passed, "total": len(statuses), "timed_out": result.timed_out},
            summary=f"{passed}/{len(statuses)} hidden tests pass" + (" (timed out)" if result.timed_out else ""),
        )
