"""Fresh worlds for the trees of finished runs: to replay splices and to run ground-truth checks.

A code world's states are git trees, content-addressed: a fresh repository with the task's starting
files has the same start state as the run had, and replaying the same actions makes the same states
again. So a run's tree can be checked and spliced long after its own workspace is gone.

`code_task_world` recognises the shipped code tasks (by the `code_task` id a run records, or by the
task statement itself) and builds a world offering the task tools plus `revert`. `qa_world` does the
same for question-answering runs (`trellis qa`): a QA state is what was searched and answered, so the
same searches reach the same state in a fresh world over the same data. `swe_world` does it for
SWE-bench runs (`trellis swe solve`): a fresh worktree of the environment the run worked in, which
must still be prepared, graded by the instance's hidden tests. `any_world` tries all three. Other
worlds plug in through `WorldFactory`.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from pydantic import ValidationError
from trellis.envs.code.tools import CODE_TOOLS
from trellis.envs.code.workspace import GitError, add_worktree
from trellis.envs.qa.sources import open_source
from trellis.envs.qa.world import QAWorld
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.swebench.environment import SWEEnvironment
from trellis.envs.swebench.instance import SWEInstance
from trellis.envs.swebench.worlds import GradedWorld
from trellis.envs.tasks.catalog import TASKS, CodeTask
from trellis.envs.tasks.world import REVISION_TOOLS, CodeTaskWorld, make_task_repository, task_statement

from trellis.errors import UserError
from trellis.tree import NodeId, StateId, Tree
from trellis.world import World

WorldFactory = Callable[[Tree], AbstractAsyncContextManager[World | None]]
"""Given a run's tree, a context that yields a fresh world for its task (None: no world for it)."""


def find_code_task(tree: Tree) -> tuple[CodeTask, bool] | None:
    """The shipped code task a tree was searched on, and whether its examples were visible."""
    task_id = tree.meta.get("code_task")
    statement = tree.meta.get("task")
    for task in TASKS:
        if task_id is not None and task.id != task_id:
            continue
        for visible in (True, False):
            if statement == task_statement(task, checked=visible):
                return task, visible
    return None


@asynccontextmanager
async def code_task_world(tree: Tree) -> AsyncIterator[World | None]:
    """A fresh world for a code-task tree (with `revert`), in a temporary folder removed afterwards."""
    found = find_code_task(tree)
    if found is None:
        yield None
        return
    task, visible = found
    with tempfile.TemporaryDirectory(prefix=f"trellis-revise-{task.id}-") as folder:
        repo = make_task_repository(task, Path(folder) / "repo")
        sandbox = BwrapSandbox(repo)
        try:
            yield CodeTaskWorld(task, sandbox, visible_examples=visible, tools=REVISION_TOOLS)
        finally:
            await sandbox.close()


@asynccontextmanager
async def qa_world(tree: Tree) -> AsyncIterator[World | None]:
    """A fresh QA world (with `revert`) for a tree `trellis qa` searched: its data spec and question id
    are in the tree's metadata, and its search settings are those whose task statement the tree holds.
    None when the tree is not a QA run's or its data cannot be opened here."""
    spec, question = tree.meta.get("data"), tree.meta.get("instance_id")
    if not isinstance(spec, str) or not isinstance(question, str):
        yield None
        return
    try:
        source = open_source(spec)
        corpus, index = source.corpus_of(question), source.index_of(question)
    except UserError:  # the data is not on this machine (a file moved, no network for hf:)
        yield None
        return
    statement = tree.meta.get("task")
    recorded = [(tree.meta.get("top_k"), tree.meta.get("max_turns"))]
    # runs made before the settings were recorded: the ones whose task statement the tree holds
    for top_k, max_turns in recorded + [(k, t) for k in range(1, 11) for t in range(11)]:
        if not isinstance(top_k, int) or not isinstance(max_turns, int):
            continue
        world = QAWorld(corpus, question, index=index, top_k=top_k, max_turns=max_turns, revert=True)
        if world.task == statement:
            yield world
            return
    yield None


def swe_environment(tree: Tree) -> SWEEnvironment | None:
    """The prepared environment a `trellis swe solve` tree was searched in, with the instance the run
    recorded. None for other trees, runs that did not record their instance, environments removed or
    rebuilt since (another base commit or venv than the run's), runs in containers, and runs in the
    `local` sandbox: replaying runs the recorded commands again, and only bubblewrap confines them."""
    record, recorded = tree.meta.get("environment"), tree.meta.get("instance")
    if not isinstance(record, dict) or not isinstance(recorded, dict) or not record.get("root"):
        return None
    if record.get("sandbox") != "bwrap":
        return None
    try:
        instance = SWEInstance.model_validate(recorded)
        env = SWEEnvironment(instance, Path(str(record["root"])), sandbox="bwrap")
        stamp = json.loads((env.root / "ready.json").read_text()) if env.ready else None
    except (ValidationError, OSError, ValueError, UserError):
        return None
    if instance.instance_id != tree.meta.get("instance_id", instance.instance_id) or stamp != record.get("ready"):
        return None
    return env


@asynccontextmanager
async def swe_world(tree: Tree) -> AsyncIterator[World | None]:
    """A fresh world (with `revert`) for a SWE-bench run's tree, on a temporary worktree of the
    environment it worked in, with the run's tools and default path; its `reward()` grades a state
    with the instance's hidden tests. None where `swe_environment` finds none or the worktree cannot
    be made."""
    env = swe_environment(tree)
    if env is None:
        yield None
        return
    tools = [name for name in tree.meta.get("tools") or CODE_TOOLS if name in CODE_TOOLS and name != "revert"]
    default_path = tree.meta.get("default_path")
    with tempfile.TemporaryDirectory(prefix=f"trellis-revise-{env.instance.instance_id}-") as folder:
        try:
            worktree = await asyncio.to_thread(
                add_worktree, env.repo_dir, Path(folder) / "repo", env.instance.base_commit
            )
        except (UserError, GitError, OSError):  # the environment's repository is damaged or gone
            yield None
            return
        world = GradedWorld(
            env,
            worktree,
            str(tree.meta.get("task") or ""),
            default_path=default_path if isinstance(default_path, str) else None,
            tools=[*tools, "revert"],
        )
        try:
            yield world
        finally:
            await world.sandbox.close()


@asynccontextmanager
async def any_world(tree: Tree) -> AsyncIterator[World | None]:
    """A code task's world, a QA run's or a SWE-bench run's, whichever the tree was searched in
    (None: none of them)."""
    async with code_task_world(tree) as world:
        if world is not None:
            yield world
            return
    async with qa_world(tree) as world:
        if world is not None:
            yield world
            return
    async with swe_world(tree) as world:
        yield world


async def rebuild_states(world: World, tree: Tree, targets: list[NodeId]) -> dict[NodeId, StateId]:
    """Act out the paths to `targets` in `world` (each node once, from its parent's state) and
    return the state each node reached; a node whose state differs from the tree's is left out,
    and so is everything below it."""
    await world.reset()
    reached: dict[NodeId, StateId] = {tree.root_id: await world.snapshot()}
    if reached[tree.root_id] != tree.root.state_id:
        return {}
    needed = sorted({node.id for target in targets for node in tree.ancestors(target)}, key=lambda i: (i.count("."), i))
    for node_id in needed:
        node = tree.get(node_id)
        if node.parent_id is None or node.parent_id not in reached:
            continue
        await world.restore(reached[node.parent_id])
        if node.action is not None:
            await world.step(node.action)
        state = await world.snapshot()
        if state == node.state_id:
            reached[node.id] = state
    return reached


async def hidden_checks(world: World, tree: Tree, leaves: list[NodeId]) -> dict[NodeId, float]:
    """The world's checked reward at each finished leaf it can reach again (a code task's hidden tests)."""
    reached = await rebuild_states(world, tree, leaves)
    checks: dict[NodeId, float] = {}
    for leaf in leaves:
        if leaf not in reached:
            continue
        await world.restore(reached[leaf])
        reward = await world.reward()
        if reward is not None:
            checks[leaf] = reward.value
    return checks
