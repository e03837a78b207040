"""From run folders to revision data: label leaves, pair them, find first errors, splice, replay, export.

For each run: the world is rebuilt fresh (see `worlds`); where it has a ground-truth check, every
finished leaf is checked and the check labels it; pairs are chosen (`pairs`); the first-error
locator cuts each bad segment; each splice is replayed, and those that do not reach their good
leaf's state are dropped and counted by reason. Preference pairs are taken from the same pairs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from trellis.agents.first_error import FirstErrorConfig, FirstErrorLocator
from trellis.envs.code.tools import CODE_TOOLS
from trellis.search.run import RunDir
from trellis.train.export import ChatFormat, preference_pair, revision_example
from trellis.train.pairs import PairConfig, find_pairs, label_leaves, terminal_leaves
from trellis.train.splice import ReplayError, make_splice, path_steps, replay
from trellis.train.worlds import WorldFactory, any_world, hidden_checks

from trellis.errors import UserError
from trellis.tools import ToolSpec
from trellis.tree import NodeId, Tree, Usage
from trellis.world import World

NO_WORLD = "no world to replay in"
NO_STATE = "a node on the splice has no world state"


class ReviseConfig(BaseModel):
    """How runs become revision data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pairs: PairConfig = Field(default_factory=PairConfig)
    first_error: FirstErrorConfig = Field(default_factory=FirstErrorConfig)
    locate: bool = True
    """Ask the model for each bad segment's first error; off: keep the whole bad segment."""
    ground_truth: bool = True
    """Label leaves with the world's check (hidden tests) where it has one, instead of their value."""
    seed: int = 0
    """Chooses the revision phrasings and seeds the locator's calls."""


class TreeReport(BaseModel):
    """What one run gave."""

    model_config = ConfigDict(extra="forbid")

    run: str
    leaves: int = 0
    """Terminal leaves with a label."""
    labels: dict[str, int] = Field(default_factory=dict)
    """How many leaves each source labelled (check, world reward, value)."""
    pairs: int = 0
    spliced: int = 0
    """Pairs made into a revision trajectory (a pair whose nodes lack a world state cannot be)."""
    verified: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)
    """Splices that did not replay, by reason."""


class ReviseResult(BaseModel):
    revisions: list[dict[str, Any]] = Field(default_factory=list)
    preferences: list[dict[str, Any]] = Field(default_factory=list)
    reports: list[TreeReport] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    """The first-error locator's model calls."""

    def summary(self, config: ReviseConfig) -> dict[str, Any]:
        dropped: Counter[str] = Counter()
        for report in self.reports:
            dropped.update(report.dropped)
        return {
            "runs": len(self.reports),
            "pairs": sum(r.pairs for r in self.reports),
            "spliced": sum(r.spliced for r in self.reports),
            "verified": sum(r.verified for r in self.reports),
            "dropped": dict(dropped),
            "revisions": len(self.revisions),
            "preferences": len(self.preferences),
            "locator_tokens": self.usage.total_tokens,
            "config": config.model_dump(mode="json"),
            "per_run": [r.model_dump(mode="json") for r in self.reports],
        }


def judge_total(tree: Tree, node: NodeId) -> float | None:
    """The instructive reward of the verdicts on the path to a finished leaf (ReSeek's process signal,
    `meta["judge_reward"]`), or None where nothing was judged or the world could not score it."""
    judged = tree.get(node).meta.get("judge_reward")
    return float(judged["total"]) if isinstance(judged, dict) and "total" in judged else None


def grading_checks(run: RunDir, tree: Tree) -> dict[NodeId, float]:
    """SWE-bench grading of the run's chosen patch (its `report.json`), as a check of the final node."""
    report = run.path / "report.json"
    final = tree.final.node if tree.final else None
    if final is None or final not in tree or not report.is_file():
        return {}
    try:
        resolved = json.loads(report.read_text(encoding="utf-8")).get("resolved")
    except (OSError, ValueError, AttributeError):
        return {}
    return {final: 1.0 if resolved else 0.0} if isinstance(resolved, bool) else {}


def _tools(tree: Tree, world: World | None) -> list[ToolSpec]:
    if world is not None:
        return list(world.tools)
    names = tree.meta.get("tools") or []
    return [CODE_TOOLS[name][0] for name in names if name in CODE_TOOLS]


async def revise_tree(
    tree: Tree,
    name: str,
    *,
    world: World | None,
    locator: FirstErrorLocator | None,
    config: ReviseConfig,
    checks: dict[NodeId, float] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], TreeReport, Usage]:
    """Revision examples and preference pairs from one tree, with what happened to each pair."""
    checks = dict(checks or {})
    if world is not None and config.ground_truth:
        finished = [leaf.id for leaf in terminal_leaves(tree) if leaf.terminal_reason == "finished"]
        checks.update(await hidden_checks(world, tree, finished))
    labels = label_leaves(tree, checks)
    report = TreeReport(run=name, leaves=len(labels), labels=dict(Counter(label.source for label in labels.values())))
    pairs = find_pairs(tree, labels, config.pairs)
    report.pairs = len(pairs)
    chat = ChatFormat.of(tree, _tools(tree, world), getattr(world, "default_path", None))
    task = chat.task
    revisions: list[dict[str, Any]] = []
    preferences = [
        preference_pair(
            tree,
            pair,
            chat,
            run=name,
            good_judge_reward=judge_total(tree, pair.good),
            bad_judge_reward=judge_total(tree, pair.bad),
        )
        for pair in pairs
    ]
    usage = Usage()
    dropped: Counter[str] = Counter()
    for number, pair in enumerate(pairs):
        first_error = None
        if locator is not None:
            first_error = await locator(
                task,
                path_steps(tree, tree.root_id, pair.ancestor),
                path_steps(tree, pair.ancestor, pair.bad),
                seed=config.seed * 1000 + number,
            )
            usage = usage + first_error.usage
        try:
            splice = make_splice(tree, pair, first_error, seed=config.seed)
        except ValueError:  # a node without a state: there is nothing to revert to or reach
            dropped[NO_STATE] += 1
            continue
        report.spliced += 1
        if world is None:
            dropped[NO_WORLD] += 1
            continue
        try:
            splice = await replay(world, splice)
        except ReplayError as exc:
            dropped[exc.reason] += 1
            continue
        revisions.append(revision_example(splice, chat, run=name, task=task, judge_reward=judge_total(tree, pair.good)))
    report.verified = len(revisions)
    report.dropped = dict(dropped)
    return revisions, preferences, report, usage


async def revise_runs(
    runs: Sequence[Path],
    *,
    locator: FirstErrorLocator | None,
    config: ReviseConfig | None = None,
    world_factory: WorldFactory = any_world,
    on_run: Callable[[TreeReport], None] | None = None,
) -> ReviseResult:
    """Revision data from every run folder in `runs` (each checked first: a bad folder is a UserError)."""
    config = config or ReviseConfig()
    folders = [RunDir(path) for path in runs]
    if not folders:
        raise UserError("give at least one run folder")
    trees = [(folder, folder.load_tree()) for folder in folders]  # every folder is checked before any work
    result = ReviseResult()
    for folder, tree in trees:
        async with world_factory(tree) as world:
            revisions, preferences, report, usage = await revise_tree(
                tree,
                str(folder.path),
                world=world,
                locator=locator,
                config=config,
                checks=grading_checks(folder, tree),
            )
        result.revisions += revisions
        result.preferences += preferences
        result.reports.append(report)
        result.usage = result.usage + usage
        if on_run is not None:
            on_run(report)
    return result
