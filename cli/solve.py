"""The main job: solve a SWE-bench instance with a search, then grade the chosen patch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from trellis.agents.prompts import completion_prompt, repair_prompt
from trellis.envs.code.container import ContainerWorkspace
from trellis.envs.code.localise import Unit, in_class, localise_units, render, source_of
from trellis.envs.code.reproduce import IssueCheck, issue_checks
from trellis.envs.code.specify import specification
from trellis.envs.code.workspace import GitError, GitWorkspace, add_worktree, run_git
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox.docker import DockerSandbox
from trellis.envs.swebench.container import WORKDIR, ContainerEnvironment
from trellis.envs.swebench.environment import SWEEnvironment, test_command
from trellis.envs.swebench.harness import InstanceReport, evaluate, evaluate_in_container
from trellis.envs.swebench.instance import Prediction, SWEInstance, write_predictions
from trellis.envs.swebench.worlds import instance_world, world_on
from trellis.search.config import SearchConfig
from trellis.search.run import RunDir, SearchOutcome, run_search

from trellis.errors import UserError
from trellis.models.base import ChatModel
from trellis.tree import Tree
from trellis.world import Opening

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "swe"


async def repository_files(env: SWEEnvironment, limit: int = 60) -> list[str]:
    # through the workspace's host-side git: nothing in the folder is read as configuration
    return (await GitWorkspace(env.repo_dir, env.instance.base_commit).files())[:limit]


def swe_task(
    instance: SWEInstance, files: list[str] | None = None, context: str = "", checks: Sequence[IssueCheck] = ()
) -> str:
    """The task statement: the issue, the repository's files, and the code the issue concerns
    (found by `localise` before the first step, so a small model starts where the change goes)."""
    listing = ""
    if files:
        listing = "\n\nFiles in the repository:\n" + "\n".join(files)
    found = f"\n\nCode the issue concerns:\n\n{context}" if context else ""
    if checks:
        calls = ", ".join(f"`{c.expression}`" for c in checks)
        found += f"\n\nAfter each change, the issue's examples ({calls}) are run and you see what they return."
    return (
        f"Resolve this issue in the repository {instance.repo}. The repository is your working directory: "
        f"use paths relative to it.\n\n{instance.problem_statement.strip()}{listing}{found}\n\n"
        f"Change the source code, not the tests. `run_tests` runs: {test_command(instance)}. "
        f"Finish once the change is made."
    )


async def instance_task(env: SWEEnvironment, found: Sequence[Unit], checks: Sequence[IssueCheck]) -> str:
    """The task statement of a prepared environment's instance (its files read through host git)."""
    return swe_task(env.instance, await repository_files(env), render(list(found)), checks)


def repair_opening(
    instance: SWEInstance, found: Sequence[Unit], checks: Sequence[IssueCheck] = (), root: Path | None = None
) -> Opening | None:
    """The search's focused first step for the best-localised unit (None when localisation found no
    Python code): where it is a short function whose call the issue says should return a value, its
    stub to complete, with that call as a doctest example (`specification`: a small model writes a
    function from its docstring far better than it repairs one); else the issue and the unit's code
    (a method under its class's line), to be fixed. `root`: the repository at the base commit, whose
    imports the stub shows."""
    unit = next((u for u in found if u.path.endswith(".py")), None)
    if unit is None:
        return None
    module = (source_of(root, unit.path) if root is not None else None) or ""
    stub = specification(unit, checks, module)
    if stub is not None:
        return Opening(prompt=completion_prompt(stub), path=unit.path)
    code = in_class(unit, module)  # a method under its class's line: the model answers in the class
    return Opening(prompt=repair_prompt(instance.problem_statement, unit.path, code), path=unit.path)


async def make_worlds(
    env: SWEEnvironment, run_dir: Path, count: int, found: Sequence[Unit] = (), checks: Sequence[IssueCheck] = ()
) -> list[CodeWorld]:
    """`count` worlds on worktrees of the environment's repository; `found` is the localised code shown
    in the task, `checks` the issue's calls run after each edit."""
    task = await instance_task(env, found, checks)
    worlds = []
    for slot in range(count):
        folder = await asyncio.to_thread(
            add_worktree, env.repo_dir, run_dir / "worktrees" / f"w{slot}", env.instance.base_commit
        )
        worlds.append(world_on(env, folder, task, found, checks))
    return worlds


def container_worlds(
    env: ContainerEnvironment,
    boxes: Sequence[DockerSandbox],
    run_dir: Path,
    code: Path,
    found: Sequence[Unit] = (),
    checks: Sequence[IssueCheck] = (),
) -> list[CodeWorld]:
    """A world in each started container of the instance's image; `code` is the base's files on the
    host (for the task's listing). Every world keeps its states as packs in `run_dir/states`."""
    from trellis.envs.code.files import walk

    files = sorted(path.relative_to(code).as_posix() for path in walk(code, code))[:60]
    task = swe_task(env.instance, files, render(list(found)), checks)
    world = instance_world(env.instance, found, checks)
    return [CodeWorld(box, task=task, test_env=env.run_env(), packs=run_dir / "states", **world) for box in boxes]


async def keep_base(workspace: ContainerWorkspace, states: Path) -> None:
    """The base tree's objects as a pack beside the states' (`base.pack`, and its id in `BASE`), so the
    run folder alone shows every state's patch (`trellis tree browse`), the containers long gone."""
    if (states / "BASE").is_file():
        return
    states.mkdir(parents=True, exist_ok=True)
    await workspace.opened()
    for name, data in (("base.pack", await workspace.export_tree()), ("BASE", (workspace.base_tree + "\n").encode())):
        partial = states / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(states / name)  # BASE last: it says the base pack is whole


def check_run_states(env: SWEEnvironment | ContainerEnvironment, run_dir: Path, tree: Tree) -> None:
    """Raise UserError unless every state of the run in `run_dir` can be restored: in the
    environment's git objects, or (in containers) as packs in the run folder."""
    if not isinstance(env, ContainerEnvironment):
        check_states(env, tree)
        return
    states = sorted({node.state_id for node in tree if node.state_id})
    missing = [state for state in states if not (run_dir / "states" / f"{state}.pack").is_file()]
    if missing:
        raise UserError(
            f"{len(missing)} of the run's {len(states)} states have no pack in {run_dir / 'states'} (removed, or "
            "the run was made without them); the run cannot continue; start a new run in another folder (--run NEW)"
        )


@dataclass(frozen=True)
class RemoteWorldBuilder:
    """Builds one of a search's worlds on the machine of the Ray actor that holds it: the instance's
    environment (prepared there, or found in that machine's cache), a worktree at the base commit,
    and the code world on it. Plain data, sent to the actor."""

    instance: SWEInstance
    source: str
    lock: Path | None
    sandbox: str
    offline: bool
    folder: Path
    task: str
    found: tuple[Unit, ...] = ()
    checks: tuple[IssueCheck, ...] = ()
    resume_root: Path | None = None
    """A resumed run's environment, as it recorded it: used as it is, never prepared again (its
    object store holds the run's states)."""

    async def __call__(self) -> CodeWorld:
        if self.resume_root is not None:
            env = SWEEnvironment(self.instance, self.resume_root, sandbox=self.sandbox)
            if not env.ready:
                raise UserError(
                    f"the run's environment {self.resume_root} is not on this machine; a run whose worlds "
                    "were on Ray resumes on machines that hold its environment"
                )
        else:
            env = SWEEnvironment(self.instance, sandbox=self.sandbox)
            async with env.preparation_held():
                await env.prepare(self.source, self.lock, offline=self.offline)
        folder = await asyncio.to_thread(add_worktree, env.repo_dir, self.folder, self.instance.base_commit)
        return world_on(env, folder, self.task, self.found, self.checks)


@dataclass(frozen=True)
class OnRay:
    """Where a search's worlds live when they are Ray actors: what each actor needs to build its own."""

    source: str
    """The instance's repository (a path every machine sees, or a URL)."""
    lock: Path | None = None
    offline: bool = False


async def ray_worlds_for(
    env: SWEEnvironment,
    run_dir: Path,
    count: int,
    on: OnRay,
    found: Sequence[Unit] = (),
    checks: Sequence[IssueCheck] = (),
    *,
    resume: bool = False,
) -> list[Any]:
    """`count` worlds as Ray actors (see `trellis.envs.remote`), each on a worktree of its own machine's
    environment in `run_dir/worktrees` (so the run folder must be on a path every machine sees)."""
    from trellis.envs.remote import ray_worlds_async

    task = await instance_task(env, found, checks)
    builders = [
        RemoteWorldBuilder(
            instance=env.instance,
            source=on.source,
            lock=on.lock,
            sandbox=env.kind,
            offline=on.offline,
            folder=(run_dir / "worktrees" / f"r{slot}").resolve(),
            task=task,
            found=tuple(found),
            checks=tuple(checks),
            resume_root=env.root if resume else None,
        )
        for slot in range(count)
    ]
    # every state an actor makes is copied into this machine's environment too, where a resume, the
    # check of a resumed run's states and the tree browser's diffs look for it
    return await ray_worlds_async(builders, home=GitWorkspace(env.repo_dir, env.instance.base_commit))


def environment_record(env: SWEEnvironment) -> dict[str, Any]:
    """What a run records of its environment. The run's states are git trees in that environment's
    object store, so a resume works in the same environment and never rebuilds it."""
    marker = env.root / "ready.json"
    return {
        "root": str(env.root),
        "sandbox": env.kind,
        "ready": json.loads(marker.read_text()) if marker.exists() else None,
    }


def resume_environment(
    instance: SWEInstance, run_dir: Path, sandbox: str = "bwrap"
) -> SWEEnvironment | ContainerEnvironment:
    """The environment the run in `run_dir` worked in, checked to still hold every state of its
    tree; raises UserError (before anything is written) when the run cannot be resumed.

    `sandbox` is used only for runs that recorded no environment (made by older versions)."""
    folder = RunDir(run_dir)
    tree = folder.load_tree()
    ran = tree.meta.get("instance_id")
    if ran is None:
        raise UserError(f"{run_dir} holds a search run but not a SWE-bench one; resume it with the code that made it")
    if ran != instance.instance_id:
        raise UserError(f"{run_dir} is a run of {ran}, not of {instance.instance_id}; resume it as {ran}")
    record = tree.meta.get("environment") or folder.read_info().get("environment")
    if isinstance(record, dict) and record.get("sandbox") == "docker":
        container = ContainerEnvironment(
            instance, str(record.get("image") or ""), workdir=str(record.get("workdir") or WORKDIR)
        )
        check_run_states(container, run_dir, tree)
        return container
    if isinstance(record, dict) and record.get("root"):
        env = SWEEnvironment(instance, Path(str(record["root"])), sandbox=str(record.get("sandbox") or sandbox))
    else:
        env = SWEEnvironment(instance, sandbox=sandbox)
    check_states(env, tree)
    return env


def check_states(env: SWEEnvironment, tree: Tree) -> None:
    """Raise UserError unless `env` is prepared and its git objects hold every state of `tree`."""
    advice = "the run cannot continue there; start a new run in another folder (--run NEW_FOLDER)"
    if not env.ready:
        raise UserError(f"the environment this run worked in, {env.root}, is gone or was never finished; {advice}")
    states = sorted({node.state_id for node in tree if node.state_id})
    if not states:
        return
    if not env.git_dir.is_dir():
        raise UserError(f"the environment {env.root} has no git directory {env.git_dir} (an older layout); {advice}")
    try:
        out = run_git(env.git_dir, None, "cat-file", "--batch-check", stdin=("\n".join(states) + "\n").encode())
    except GitError as exc:
        raise UserError(f"cannot read the git objects of {env.root}: {exc}; {advice}") from exc
    missing = [line.split()[0] for line in out.decode().splitlines() if line.endswith(" missing")]
    if missing:
        raise UserError(
            f"{len(missing)} of the run's {len(states)} states are no longer in {env.git_dir} (the environment "
            f"was rebuilt or removed after the run began); {advice}"
        )


class SolveResult(BaseModel):
    outcome: SearchOutcome
    report: InstanceReport | None


async def solve(
    env: SWEEnvironment | ContainerEnvironment,
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
    on_ray: OnRay | None = None,
) -> SolveResult:
    """Search for a patch on a prepared environment (or in containers of an image), write the run
    folder, grade the chosen patch.

    With `resume`, the run in `run_dir` continues with its own configuration, in `env`, which must
    be the environment it recorded (see `resume_environment`). With `on_ray`, the search's worlds
    are Ray actors (this process must have joined a Ray runtime), one per `config.parallel`."""
    instance = env.instance
    if resume:
        folder = RunDir(run_dir)
        tree = folder.load_tree()
        check_run_states(env, run_dir, tree)
        config = folder.saved_config(tree)  # the number of worktrees is the run's own
    checks = issue_checks(instance.problem_statement)
    boxes: list[DockerSandbox] = []
    try:
        if isinstance(env, ContainerEnvironment):
            env.check()
            env.remove_leftovers(run_dir)
            code = await env.base_files(run_dir)
            found = localise_units(code, instance.problem_statement)
            opening = repair_opening(instance, found, checks, code)
            boxes = [env.sandbox(run_dir) for _ in range(config.parallel)]
            started = await asyncio.gather(*(box.start() for box in boxes), return_exceptions=True)
            failed = next((error for error in started if isinstance(error, BaseException)), None)
            if failed is not None:  # every box is closed below, the ones that did start too
                raise failed
            worlds: list[Any] = container_worlds(env, boxes, run_dir, code, found, checks)
            await keep_base(worlds[0].workspace, run_dir / "states")
        else:
            # the environment's own checkout is where grading applies patches: one killed in the middle
            # leaves a patch there, so it is put back at the base before the issue's code is read from it
            base = GitWorkspace(env.repo_dir, instance.base_commit)
            async with env.checkout_held():  # not while a grading elsewhere has a patch applied there
                await base.restore(base.base_tree)
                found = localise_units(env.repo_dir, instance.problem_statement)
                opening = repair_opening(instance, found, checks, env.repo_dir)
            if on_ray is not None:
                worlds = await ray_worlds_for(env, run_dir, config.parallel, on_ray, found, checks, resume=resume)
            else:
                worlds = await make_worlds(env, run_dir, config.parallel, found, checks)
        record = env.record() if isinstance(env, ContainerEnvironment) else environment_record(env)
        outcome = await run_search(
            task=worlds[0].task,
            worlds=worlds,
            model=model,
            config=config,
            run_dir=run_dir,
            resume=resume,
            # the whole instance too: what `trellis revise` rebuilds the world from and grades leaves by
            info={
                "instance_id": instance.instance_id,
                "instance": instance.model_dump(mode="json"),
                "model": model.name,
                "environment": record,
            },
            listeners=listeners,
            on_context=on_context,
            critic_model=critic_model,
            opening=opening if config.opening else None,
        )
    finally:
        await asyncio.gather(*(box.close() for box in boxes))
    write_predictions(
        run_dir / "predictions.jsonl",
        [Prediction(instance_id=instance.instance_id, model_name_or_path=model_name, model_patch=outcome.patch)],
    )
    report = None
    if grade and (instance.FAIL_TO_PASS or instance.PASS_TO_PASS):
        if isinstance(env, ContainerEnvironment):
            report = await evaluate_in_container(
                instance,
                outcome.patch,
                image=env.image,
                setup=env.setup,
                client=env.client,
                log_dir=run_dir / "grading",
            )
        else:
            report = await evaluate(env, outcome.patch, name=model_name)
        (run_dir / "report.json").write_text(report.model_dump_json(indent=1))
    return SolveResult(outcome=outcome, report=report)
