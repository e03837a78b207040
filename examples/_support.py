"""What the graph examples share: a code task in a sandbox, a search context, the command line, a report.

Not an example itself; each example imports it so that its own file holds only its graph.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from trellis.agents import Critic, Discriminator, Reflector, Solver
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.world import CodeTaskWorld, get_task, make_task_repository
from trellis.search.config import SearchConfig
from trellis.search.engine import SearchContext, WorldPool

from trellis.models.base import ChatModel
from trellis.render import TreeView, summary
from trellis.tree import NodeId, Tree


def command_line(doc: str | None, **defaults: Any) -> argparse.Namespace:
    """`--task` and `--model`, plus one option per keyword, of the default's type (`--rounds 4` for
    `rounds=4`; a flag for a boolean: `--no-verifier` for `no_verifier=False`)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="reverse_string", help="a shipped code task id")
    parser.add_argument("--model", default="embedded", help="embedded, or a model spec such as openai:NAME@URL")
    for name, value in defaults.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    return parser.parse_args()


def task_world(task_id: str, folder: Path | None = None) -> CodeTaskWorld:
    """The code task `task_id` in a fresh git repository under `folder` (a temporary one by default),
    run in a bubblewrap sandbox. A temporary folder is removed when the script exits."""
    task = get_task(task_id)
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix=f"trellis-{task_id}-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    root = folder / "repo"
    return CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, root)))


def search_context(
    world: CodeTaskWorld, model: ChatModel, config: SearchConfig, *, solver: Solver | None = None
) -> SearchContext:
    """Every role played by `model` in one world (the solver may be one of your own); the tree lives in
    memory (no run folder, so no resume). Each evaluated node is reported on the console as it comes."""
    console = Console(stderr=True)

    def progress(event: dict[str, Any]) -> None:
        if event["event"] == "node_evaluated":
            node = event["node"]
            console.print(f"node {node['id']}: {node['action']} -> value {node['reward'] or 0.0:.2f}")

    return SearchContext(
        task=world.task,
        tree=Tree.new(task=world.task),
        worlds=WorldPool([world]),
        solver=solver or Solver(model, config.solver),
        critic=Critic(model, config.critic),
        discriminator=Discriminator(model, config.discriminator),
        reflector=Reflector(model) if config.reflection else None,
        config=config,
        emit=progress,
    )


async def report(tree: Tree, world: CodeTaskWorld, chosen: NodeId | None, console: Console | None = None) -> bool:
    """Draw the tree, then run the hidden tests on the chosen node's files; whether they all pass."""
    console = console or Console()
    console.print(TreeView(tree))
    console.print(summary(tree))
    if chosen is None or tree.get(chosen).state_id is None:
        console.print("no solution was chosen")
        return False
    await world.restore(tree.get(chosen).state_id or "")
    reward = await world.reward()
    console.print(f"node {chosen}: hidden tests on the chosen solution: {reward.summary}")
    return reward.resolved
