"""Trees for the revision tests, grown by hand in a real code-task world (bwrap).

Every node's step is really acted out in the world and its state is the world's snapshot, as in a
search; rewards are set by hand (they stand for the critic's values).
"""

from __future__ import annotations

from pathlib import Path

from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.world import TASK_TOOLS, CodeTaskWorld, get_task, make_task_repository
from trellis.search.run import RunDir

from trellis.models import CompletionRequest, ScriptedModel
from trellis.store import TreeStore
from trellis.tree import Action, Node, Step, Tree

TASK = get_task("reverse_string")
WRONG = TASK.prompt + "    return None\n"
VIEW = Action(tool="view_file", args={"path": "solution.py"}, thought="Look at the file first.")
WRITE_WRONG = Action(tool="write_file", args={"path": "solution.py", "content": WRONG}, thought="A quick stub.")
WRITE_RIGHT = Action(tool="write_file", args={"path": "solution.py", "content": TASK.solution}, thought="Slice it.")
FINISH = Action(tool="finish", thought="Done.")
REJECT = Action(tool="reject", args={"reason": "this cannot work"}, thought="Give up.")


async def grow(world: CodeTaskWorld, tree: Tree, parent: str, index: int, action: Action, reward: float) -> Node:
    """Act out `action` at `parent`'s state and add the child the search would have added."""
    await world.restore(tree.get(parent).state_id or "")
    observation = await world.step(action)
    terminal = observation.terminal
    return tree.add_child(
        parent,
        index,
        Step(action=action, observation=observation),
        state_id=await world.snapshot(),
        reward=reward,
        terminal=bool(terminal),
        terminal_reason=str(terminal or ""),
    )


async def reverse_string_tree(folder: Path) -> Tree:
    """root ─ 0.0 view ─┬ 0.0.0 write a stub ── 0.0.0.0 finish   (fails the hidden tests; valued 0.7)
               └ 0.0.1 write s[::-1] ── 0.0.1.0 finish  (passes them; valued 0.6)
    0.1 write a stub ── 0.1.0 reject                    (valued 0.0)
    """
    world = CodeTaskWorld(TASK, BwrapSandbox(make_task_repository(TASK, folder)))
    try:
        await world.reset()
        tree = Tree.new(
            state_id=await world.snapshot(),
            task=world.task,
            tools=TASK_TOOLS,
            config={"solver": {"action_format": "markdown"}},
        )
        await grow(world, tree, "0", 0, VIEW, 0.5)
        await grow(world, tree, "0.0", 0, WRITE_WRONG, 0.6)
        await grow(world, tree, "0.0.0", 0, FINISH, 0.7)
        await grow(world, tree, "0.0", 1, WRITE_RIGHT, 0.5)
        await grow(world, tree, "0.0.1", 0, FINISH, 0.6)
        await grow(world, tree, "0", 1, WRITE_WRONG, 0.2)
        await grow(world, tree, "0.1", 0, REJECT, 0.0)
    finally:
        await world.sandbox.close()
    return tree


def save_run(tree: Tree, folder: Path) -> RunDir:
    """A run folder holding `tree`, as a search leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    with TreeStore(folder / "tree.db") as store:
        store.save_tree(tree)
    return RunDir(folder)


def stub_locator_model() -> ScriptedModel:
    """A first-error model that says No to the step that writes the stub, Yes to every other step
    (`python:revision_trees:stub_locator_model` as a model spec)."""

    def respond(request: CompletionRequest, i: int) -> str:
        judged = request.messages[-1].content.split("The step to judge")[1]
        return "No" if "return None" in judged or "A quick stub" in judged else "Yes"

    return ScriptedModel(respond)
