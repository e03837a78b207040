"""The main job: solve a SWE-bench instance with a search, then grade the chosen patch."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from trellis.envs.code.workspace import add_worktree
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox.host import BwrapSandbox, LocalSandbox, Mount
from trellis.envs.swebench.environment import ENV_MOUNT, SWEEnvironment, test_command
from trellis.envs.swebench.harness import InstanceReport, evaluate
from trellis.envs.swebench.instance import Prediction, SWEInstance, write_predictions
from trellis.models.base import ChatModel
from trellis.run import SearchOutcome, run_search
from trellis.search.config import SearchConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "swe"


def repository_files(env: SWEEnvironment, limit: int = 60) -> list[str]:
    result = subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(env.repo_dir), "ls-files"], capture_output=True, text=True
    )
    return result.stdout.splitlines()[:limit]


def swe_task(instance: SWEInstance, files: list[str] | None = None) -> str:
    listing = ""
    if files:
        listing = "\n\nFiles in the repository:\n" + "\n".join(files)
    return (
        f"Resolve this issue in the repository {instance.repo}. The repository is your working directory: "
        f"use paths relative to it.\n\n{instance.problem_statement.strip()}{listing}\n\n"
        f"Change the source code, not the tests. `run_tests` runs: {test_command(instance)}. "
        f"Call finish once the change is made."
    )


def make_worlds(env: SWEEnvironment, run_dir: Path, count: int) -> list[CodeWorld]:
    worlds = []
    for slot in range(count):
        folder = add_worktree(env.repo_dir, run_dir / "worktrees" / f"w{slot}", env.instance.base_commit)
        if env.kind == "local":
            sandbox: Any = LocalSandbox(folder)
        else:
            sandbox = BwrapSandbox(folder, mounts=[Mount(source=env.env_dir, target=ENV_MOUNT, writable=False)])
        worlds.append(
            CodeWorld(
                sandbox,
                task=swe_task(env.instance, repository_files(env)),
                base=env.instance.base_commit,
                test_command=test_command(env.instance),
                hidden_paths=env.instance.test_files,
                test_env=env.run_env(),
                test_timeout=600,
            )
        )
    return worlds


class SolveResult(BaseModel):
    outcome: SearchOutcome
    report: InstanceReport | None


async def solve(
    env: SWEEnvironment,
    model: ChatModel,
    config: SearchConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    grade: bool = True,
    model_name: str = "trellis",
    listeners: tuple[Any, ...] = (),
    on_context: Any = None,
    critic_model: ChatModel | None = None,
) -> SolveResult:
    """Search for a patch on a prepared environment, write the run folder, grade the chosen patch."""
    instance = env.instance
    worlds = make_worlds(env, run_dir, config.parallel)
    outcome = await run_search(
        task=worlds[0].task,
        worlds=worlds,
        model=model,
        config=config,
        run_dir=run_dir,
        resume=resume,
        info={"instance_id": instance.instance_id, "model": model.name},
        listeners=listeners,
        on_context=on_context,
        critic_model=critic_model,
    )
    write_predictions(
        run_dir / "predictions.jsonl",
        [Prediction(instance_id=instance.instance_id, model_name_or_path=model_name, model_patch=outcome.patch)],
    )
    report = None
    if grade and (instance.FAIL_TO_PASS or instance.PASS_TO_PASS):
        report = await evaluate(env, outcome.patch, name=model_name)
        (run_dir / "report.json").write_text(report.model_dump_json(indent=1))
    return SolveResult(outcome=outcome, report=report)
