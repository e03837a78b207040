"""A search run on disk: the tree store, LangGraph checkpoints, the event log and the outcome.

RUN/run.json          what was searched, with which configuration, in which environment
RUN/tree.db           every node, written as it is made (SQLite, WAL), and the time spent so far
RUN/checkpoints.db    the graph's checkpoints (resume)
RUN/events.jsonl      one line per node created, evaluated and backed up
RUN/decision.json     the discriminator's choice and its debate transcript
RUN/final.patch       the chosen patch
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import BaseModel, ValidationError
from trellis.agents.critic import Critic
from trellis.agents.discriminator import Discriminator
from trellis.agents.judge import Judge
from trellis.agents.reflection import Reflector
from trellis.agents.solver import Solver
from trellis.search import engine
from trellis.search.config import SearchConfig
from trellis.search.engine import SearchContext, WorldPool, default_path, system_prompt
from trellis.search.graph import build_search_graph, recursion_limit

from trellis.errors import UserError
from trellis.models.base import ChatModel
from trellis.store import TreeStore
from trellis.tree import FinalChoice, Tree, Usage
from trellis.world import Opening, World


class SearchOutcome(BaseModel):
    run_dir: str
    final_node: str | None
    patch: str
    stop_reason: str
    nodes: int
    usage: Usage
    resumed: bool = False


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def tree_db(self) -> Path:
        return self.path / "tree.db"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints.db"

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def info(self) -> Path:
        return self.path / "run.json"

    def exists(self) -> bool:
        """Whether the folder holds a run (its tree store)."""
        return self.tree_db.is_file()

    def check(self) -> None:
        """Raise UserError unless this is a run folder whose tree store can be read; writes nothing."""
        if self.path.is_file():
            raise UserError(f"{self.path} is a file; give the run folder (the one that holds tree.db)")
        if not self.path.exists():
            raise UserError(f"there is no run folder {self.path}; give the folder a run wrote")
        if not self.exists():
            raise UserError(f"{self.path} is not a run folder (it holds no tree.db); give the folder a run wrote")

    def load_tree(self) -> Tree:
        """The run's tree, read without writing anything; a damaged store is a UserError."""
        self.check()
        with TreeStore(self.tree_db, readonly=True) as store:
            store.check()
            return store.load_tree()

    def read_info(self) -> dict[str, Any]:
        if not self.info.exists():
            return {}
        try:
            info = json.loads(self.info.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.info} cannot be read ({exc}); the run's tree is in {self.tree_db}") from exc
        if not isinstance(info, dict):
            raise UserError(f"{self.info} is damaged (not a JSON object); the run's tree is in {self.tree_db}")
        return info

    def saved_config(self, tree: Tree) -> SearchConfig:
        """The configuration the run started with (a resumed run keeps it)."""
        saved = dict(tree.meta.get("config", {}))
        # settings added since a run began take the value that reproduces how it ran
        saved.setdefault("focused_repair", False)
        saved.setdefault("partial_credit", 0.0)
        try:
            return SearchConfig.model_validate(saved)
        except ValidationError as exc:
            raise UserError(f"the configuration stored in {self.tree_db} is not valid here: {exc}") from exc


class _EventLog:
    def __init__(self, path: Path, listeners: Sequence[Callable[[dict[str, Any]], None]]) -> None:
        self.file = path.open("a", encoding="utf-8")
        self.listeners = list(listeners)

    def __call__(self, event: dict[str, Any]) -> None:
        self.file.write(json.dumps(event, default=str) + "\n")
        self.file.flush()
        for listener in self.listeners:
            listener(event)

    def close(self) -> None:
        self.file.close()


async def run_search(
    *,
    task: str,
    worlds: Sequence[World],
    model: ChatModel,
    config: SearchConfig,
    run_dir: str | Path,
    resume: bool = False,
    info: dict[str, Any] | None = None,
    critic_model: ChatModel | None = None,
    listeners: Sequence[Callable[[dict[str, Any]], None]] = (),
    on_context: Callable[[SearchContext], None] | None = None,
    opening: Opening | None = None,
) -> SearchOutcome:
    """Run (or resume) a search to its end; everything it makes is kept in `run_dir`.

    `opening`: a focused prompt for the root's expansions (kept with the run, so a resumed run uses
    its own)."""
    run = RunDir(run_dir)
    if resume:
        run.load_tree()  # a missing, empty or damaged run is reported before anything is written
    elif run.exists():
        raise UserError(f"{run.path} already holds a run; resume it with --resume or choose another run folder")
    run.path.mkdir(parents=True, exist_ok=True)
    store = TreeStore(run.tree_db)
    spent = 0.0
    try:
        if resume:
            tree = store.load_tree()
            config = run.saved_config(tree)  # a resumed run keeps the configuration it started with
            # the time budget continues where the run stopped
            spent = float(store.get_meta("elapsed_seconds", 0.0) or 0.0)
        else:
            tools = [spec.name for spec in worlds[0].tools] if worlds else []
            tree = Tree.new(task=task, config=config.model_dump(mode="json"), tools=tools, **(info or {}))
            if opening is not None:
                tree.meta["opening"] = opening.model_dump()
            # what the solver's prompts hold besides the trajectory, for prompts rebuilt later
            tree.meta["default_path"] = default_path(worlds[0]) if worlds else None
            tree.meta["system_prompt"] = system_prompt(worlds[0]) if worlds else None
            run.info.write_text(
                json.dumps(
                    {"task": task, "config": config.model_dump(mode="json"), **(info or {})}, indent=1, default=str
                )
            )
            store.save_tree(tree)  # last: a folder holds a run once its root is stored
        events = _EventLog(run.events, listeners)
        critic_llm = critic_model or model
        ctx = SearchContext(
            task=task,
            tree=tree,
            worlds=WorldPool(worlds),
            solver=Solver(model, config.solver),
            critic=Critic(critic_llm, config.critic),
            discriminator=Discriminator(critic_llm, config.discriminator),
            reflector=Reflector(critic_llm) if config.reflection else None,
            judge=Judge(critic_llm) if config.judge_agent else None,
            opening=Opening.model_validate(tree.meta["opening"]) if tree.meta.get("opening") else None,
            config=config,
            store=store,
            emit=events,
            started=time.monotonic() - spent,
        )
        if on_context is not None:
            on_context(ctx)
        try:
            async with AsyncSqliteSaver.from_conn_string(str(run.checkpoints)) as saver:
                app: Any = build_search_graph(ctx).compile(checkpointer=saver)
                settings: dict[str, Any] = {
                    "configurable": {"thread_id": "search"},
                    "recursion_limit": recursion_limit(ctx),
                }
                snapshot = await app.aget_state(settings)
                if snapshot.next:
                    state = await app.ainvoke(None, settings)
                elif snapshot.values.get("stop_reason"):
                    state = snapshot.values
                else:
                    # no checkpoint to go on from (a kill before the first was written): the tree
                    # says which iterations ran; their nodes are valued and backed up as the graph
                    # would have, and the search goes on with the next iteration, not a new first one
                    ran = [i for node in tree for i in node.expansions]
                    start = max(ran) + 1 if ran else 0
                    if start:
                        await engine.evaluate(ctx)
                        engine.backpropagate(ctx)
                    state = await app.ainvoke({"iteration": start, "created": 0}, settings)
        finally:
            events.close()
        final = tree.final or FinalChoice()
        if tree.decision is not None:
            (run.path / "decision.json").write_text(json.dumps(tree.decision, indent=1))
        patch = final.patch
        (run.path / "final.patch").write_text(patch)
        return SearchOutcome(
            run_dir=str(run.path),
            final_node=final.node,
            patch=patch,
            stop_reason=str(state.get("stop_reason", "")),
            nodes=len(tree),
            usage=tree.total_usage(),
            resumed=resume,
        )
    finally:
        store.close()
