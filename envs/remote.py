"""Worlds on other machines: each a Ray actor holding a real world, its sandbox and its workspace.

`ray_worlds(build, count)` starts `count` actors (each on whichever machine of the cluster Ray places
it, one CPU each) and returns a `RemoteWorld` per actor, which the search uses like any world: the
tree, selection and store stay with the driver, while acting, snapshots and checks run on the
actors, so `--parallel K` can exceed one machine's cores. `build` is a picklable callable that makes
the world on the actor's machine (`build()`, awaited when it is a coroutine function).

States: a snapshot's id names the same files everywhere, but its objects live in the repository of
the actor that made it. Before another actor restores it, the proxy moves the objects over, as a git
pack of what the state holds beyond the base commit (`GitWorkspace.export_state` and
`import_state`): data between two workspaces of trellis, never a command. Worlds of one pool share
one record of which actor holds which state. (ReSeek's judge rewards, which a world computes from
what it knows of the gold answers, are not asked of worlds on Ray.)

This module imports Ray when `ray_worlds` runs; nothing else in trellis imports it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trellis.errors import UserError
from trellis.tools import ToolSpec
from trellis.tree import Action, Observation, StateId
from trellis.world import Behaviour, Probed, Reward, World

START_TIMEOUT = 900.0
"""Seconds the actors may take to build their worlds (preparing an environment included)."""

WorldBuilder = Callable[[], Any]
"""Makes the world on the actor's machine: returns a `World`, or an awaitable of one."""


class WorldHost:
    """The actor: one world, built where the actor runs. Every call is the world's own."""

    def __init__(self, build: WorldBuilder) -> None:
        self._build = build
        self.world: Any = None

    async def start(self) -> dict[str, Any]:
        """Build the world; what the driver's proxy needs to know of it."""
        made = self._build()
        self.world = await made if inspect.isawaitable(made) else made
        if not isinstance(self.world, World):
            raise TypeError(f"{self._build!r} made {type(self.world).__name__}, which is not a World")
        world = self.world
        return {
            "tools": list(world.tools),
            "task": getattr(world, "task", None),
            "default_path": getattr(world, "default_path", None),
            "system_prompt": getattr(world, "system_prompt", None),
            "checks_complete": bool(getattr(world, "checks_complete", False)),
            "transfers": hasattr(getattr(world, "workspace", None), "export_state"),
        }

    async def reset(self) -> Observation:
        return await self.world.reset()

    async def step(self, action: Action) -> Observation:
        return await self.world.step(action)

    async def snapshot(self) -> StateId:
        return await self.world.snapshot()

    async def restore(self, state: StateId) -> None:
        await self.world.restore(state)

    async def reward(self) -> Reward | None:
        return await self.world.reward()

    async def behaviour(self, state: StateId) -> Behaviour | None:
        """How the answer in `state` behaves on the world's probes; None where it has none."""
        if not isinstance(self.world, Probed):
            return None
        return await self.world.behaviour(state)

    async def patch(self, state: StateId | None = None) -> str:
        return await self.world.patch(state)

    async def export_state(self, state: StateId) -> bytes:
        return await self.world.workspace.export_state(state)

    async def import_state(self, pack: bytes) -> None:
        await self.world.workspace.import_state(pack)

    async def has_state(self, state: StateId) -> bool:
        return await self.world.workspace.has_state(state)


@dataclass
class StateLedger:
    """Which actors of a pool hold which states (the driver's record; the repositories are the truth)."""

    holders: dict[StateId, list[Any]] = field(default_factory=dict)
    transfers: int = 0
    """States moved from one actor to another so far."""
    home: Any = None
    """A workspace with the driver (`GitWorkspace` of the same base), where every new state is copied
    as it is made: the run's states then outlive the actors, so a resumed run (new actors, an empty
    ledger) and the tree views find them."""
    homed: set[StateId] = field(default_factory=set)

    def add(self, state: StateId, handle: Any) -> None:
        held = self.holders.setdefault(state, [])
        if not any(h is handle for h in held):
            held.append(handle)

    def holds(self, state: StateId, handle: Any) -> bool:
        return any(h is handle for h in self.holders.get(state, []))


class RemoteWorld:
    """A world whose calls run in a Ray actor (`WorldHost`); a `World` to the search."""

    def __init__(self, handle: Any, description: dict[str, Any], ledger: StateLedger) -> None:
        self.handle = handle
        self.ledger = ledger
        self.tools: list[ToolSpec] = description["tools"]
        self.default_path: str | None = description.get("default_path")
        self.system_prompt: str | None = description.get("system_prompt")
        self.checks_complete = bool(description.get("checks_complete"))
        self._task: str | None = description.get("task")
        self._transfers = bool(description.get("transfers"))

    @property
    def task(self) -> str:
        if self._task is None:
            raise UserError("this world states no task; give the search its task yourself")
        return self._task

    async def reset(self) -> Observation:
        observation: Observation = await self.handle.reset.remote()
        self.ledger.add(await self.handle.snapshot.remote(), self.handle)
        return observation

    async def step(self, action: Action) -> Observation:
        if action.tool == "revert" and self._transfers:  # a state named by (a prefix of) its id
            named = str(action.args.get("state", "")).strip().strip("`'\"").lower()
            known = [s for s in self.ledger.holders if len(named) >= 4 and s.startswith(named)]
            if len(known) == 1 and not self.ledger.holds(known[0], self.handle):
                await self._fetch(known[0])
        return await self.handle.step.remote(action)

    async def snapshot(self) -> StateId:
        state: StateId = await self.handle.snapshot.remote()
        self.ledger.add(state, self.handle)
        home = self.ledger.home
        if home is not None and self._transfers and state not in self.ledger.homed:
            if not await home.has_state(state):
                await home.import_state(await self.handle.export_state.remote(state))
            self.ledger.homed.add(state)
        return state

    async def restore(self, state: StateId) -> None:
        if self._transfers and not self.ledger.holds(state, self.handle):
            await self._fetch(state)
        await self.handle.restore.remote(state)
        self.ledger.add(state, self.handle)

    async def _fetch(self, state: StateId) -> None:
        """Bring `state`'s objects from an actor that holds them, unless this one has them already."""
        if await self.handle.has_state.remote(state):
            return
        owners = self.ledger.holders.get(state, [])
        home = self.ledger.home
        if not owners and home is not None and await home.has_state(state):  # a state of the run before a resume
            await self.handle.import_state.remote(await home.export_state(state))
            self.ledger.transfers += 1
            return
        if not owners:
            raise UserError(
                f"no world of this search holds state {state[:12]}, so it cannot be restored here; a run whose "
                "worlds were on Ray resumes on the machines that hold its states"
            )
        pack: bytes = await owners[0].export_state.remote(state)
        await self.handle.import_state.remote(pack)
        self.ledger.transfers += 1

    async def reward(self) -> Reward | None:
        return await self.handle.reward.remote()

    async def behaviour(self, state: StateId) -> Behaviour | None:
        await self.restore(state)  # brought from the actor that holds it, where need be
        return await self.handle.behaviour.remote(state)

    async def patch(self, state: StateId | None = None) -> str:
        if state is not None and self._transfers and not self.ledger.holds(state, self.handle):
            await self._fetch(state)
        return await self.handle.patch.remote(state)


def ray_worlds(
    build: WorldBuilder | Sequence[WorldBuilder], count: int | None = None, *, home: Any = None
) -> list[RemoteWorld]:
    """Start an actor per world (one builder for all, or one per world) in the Ray runtime this
    process has joined (`ray.init` first: `trellis.cli.ray_batch.connect`), build the worlds there,
    and return their proxies, which share one state ledger. `home`: a workspace with this process
    that keeps a copy of every state (see `StateLedger.home`)."""
    import ray

    if not ray.is_initialized():
        raise UserError("Ray is not running in this process; call ray.init() (or connect) first")
    builders = list(build) if isinstance(build, Sequence) else [build] * (count or 1)
    if count is not None and len(builders) != count:
        raise ValueError(f"{len(builders)} builders for {count} worlds")
    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus < len(builders):
        raise UserError(
            f"{len(builders)} worlds on Ray need a CPU each, and the cluster has {cpus:g}; "
            "lower --parallel or add machines"
        )
    host: Any = ray.remote(WorldHost).options(num_cpus=1)
    handles: list[Any] = [host.remote(b) for b in builders]
    try:
        descriptions = ray.get([h.start.remote() for h in handles], timeout=START_TIMEOUT)
    except ray.exceptions.GetTimeoutError:
        for handle in handles:
            ray.kill(handle)
        raise UserError(f"the worlds' actors did not start within {START_TIMEOUT:g} s (is the cluster busy?)") from None
    ledger = StateLedger(home=home)
    return [RemoteWorld(h, d, ledger) for h, d in zip(handles, descriptions, strict=True)]


def close_worlds(worlds: Sequence[RemoteWorld]) -> None:
    """Stop the worlds' actors (their CPUs go back to the cluster; the states they made stay in the
    ledger's home, where one was given). A driver that exits stops its actors anyway."""
    import ray

    for world in worlds:
        ray.kill(world.handle)


async def ray_worlds_async(
    build: WorldBuilder | Sequence[WorldBuilder], count: int | None = None, *, home: Any = None
) -> list[RemoteWorld]:
    """`ray_worlds` from a running event loop (the actors start while the loop goes on)."""
    return await asyncio.to_thread(lambda: ray_worlds(build, count, home=home))
