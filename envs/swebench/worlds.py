"""An instance's code world on a worktree of its prepared environment, and the graded one.

`world_on` is the world a search works in (`trellis swe solve`); `GradedWorld` is the same world whose
`reward()` grades the current state with the instance's hidden tests (the SWE-bench harness), for
work that labels finished trajectories after the search, such as Agent-R's revision data. A search
never gets a graded world: its value would then rest on the hidden tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trellis.envs.code.localise import Unit
from trellis.envs.code.reproduce import IssueCheck, issue_checks
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox.host import BwrapSandbox, HostSandbox, LocalSandbox, Mount
from trellis.envs.swebench.environment import ENV_MOUNT, SWEEnvironment, test_command
from trellis.envs.swebench.harness import evaluate
from trellis.envs.swebench.instance import SWEInstance

from trellis.world import Reward


def instance_world(instance: SWEInstance, found: Sequence[Unit], checks: Sequence[IssueCheck]) -> dict[str, Any]:
    """What an instance's code world is, wherever it runs: `CodeWorld`'s settings."""
    return {
        "base": instance.base_commit,
        "test_command": test_command(instance),
        "hidden_paths": instance.test_files,
        "test_timeout": 600,
        "repo_name": instance.repo.rpartition("/")[2],
        "default_path": found[0].path if found else None,
        "issue_checks": checks,
        "nearby_tests": True,  # the repository's tests next to a change: what it broke is a failing check
        "gold_patch": instance.patch or None,  # for the judge's reward only; never in the workspace
    }


def environment_sandbox(env: SWEEnvironment, folder: Path) -> HostSandbox:
    """The sandbox of a worktree of the environment: the environment's venv mounted read-only."""
    if env.kind == "local":
        return LocalSandbox(folder)
    return BwrapSandbox(folder, mounts=[Mount(source=env.env_dir, target=ENV_MOUNT, writable=False)])


def world_on(
    env: SWEEnvironment,
    folder: Path,
    task: str,
    found: Sequence[Unit] = (),
    checks: Sequence[IssueCheck] = (),
    *,
    tools: Sequence[str] | None = None,
) -> CodeWorld:
    """The code world of the instance on `folder`, a worktree of the environment's repository."""
    settings = instance_world(env.instance, found, checks)
    return CodeWorld(environment_sandbox(env, folder), task=task, test_env=env.run_env(), tools=tools, **settings)


class GradedWorld(CodeWorld):
    """An instance's world, set up as `world_on` sets up a search's (the issue's checks after each
    change, the tests next to it), whose checked reward is the grade of its current patch: 1.0 when the
    instance's FAIL_TO_PASS and PASS_TO_PASS tests pass with it, else 0.0. Grading runs in the
    environment's own checkout (held meanwhile, back at the base commit afterwards); a patch is graded
    once per world."""

    def __init__(
        self,
        env: SWEEnvironment,
        folder: Path,
        task: str,
        *,
        default_path: str | None = None,
        tools: Sequence[str] | None = None,
    ) -> None:
        """`default_path`: where a code block without a path goes (the run's, as its tree recorded)."""
        settings = instance_world(env.instance, (), issue_checks(env.instance.problem_statement))
        settings["default_path"] = default_path
        super().__init__(environment_sandbox(env, folder), task=task, test_env=env.run_env(), tools=tools, **settings)
        self.env = env
        self._grades: dict[str, Reward] = {}

    async def reward(self) -> Reward | None:
        instance = self.env.instance
        if not (instance.FAIL_TO_PASS or instance.PASS_TO_PASS):
            return None  # nothing to grade with
        patch = await self.patch()
        if patch not in self._grades:
            report = await evaluate(self.env, patch, name="graded-world")
            summary = "resolved" if report.resolved else (report.error or "not resolved")
            self._grades[patch] = Reward(
                value=1.0 if report.resolved else 0.0,
                resolved=report.resolved,
                details={
                    "tests_status": {group: tests.model_dump() for group, tests in report.tests_status.items()},
                    "error_kind": report.error_kind,
                    "log": report.log_path,
                },
                summary=f"SWE-bench grading: {summary}",
            )
        return self._grades[patch]
