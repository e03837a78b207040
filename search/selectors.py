"""Choosing which nodes to expand next.

Selection walks down from the root, at each node taking the child with the best score among those
whose subtree still holds an open node, and stops at the first open node. Scores come from one of:

- `uct`: Q + C * sqrt(ln N / n), unvisited children first;
- `depth_uct` (SWE-Search): UCT + alpha * e^(-beta (d - 1)) - gamma * sqrt(d);
- `puct`: Q + C * P * sqrt(N) / (1 + n), P = how often the solver proposed the action (sample counts);
- `hgm` (Huxley-Goedel Machine): a Thompson sample of Beta(1 + successes, 1 + failures) over the
  child's clade (itself and its descendants);
- a selector of your own: a class with `score` and `widen` (subclass `UCT` and override `score`),
  named `package.module:ClassName` in the configuration or registered with `register_selector`.

Q is the mean backed-up value in [0, 1]. For parallel expansion each pick adds a virtual loss (a
visit worth 0) along its path, so the next pick of the same batch goes elsewhere.
"""

from __future__ import annotations

import importlib
import math
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol, cast, runtime_checkable

from trellis.search.config import BudgetConfig, SelectorConfig

from trellis.errors import UserError
from trellis.tree import Node, NodeId, Tree


def expansions(node: Node) -> int:
    return len(node.expansions)


def repairable(node: Node, budget: BudgetConfig) -> bool:
    """A finished answer that passes every visible check but crashed on probe inputs (`meta["crashes"]`),
    which a repair may fix (`BudgetConfig.crash_free`)."""
    return budget.crash_free and node.terminal_reason == "finished" and bool(node.meta.get("crashes"))


def is_open(node: Node, budget: BudgetConfig, *, patient: bool = False) -> bool:
    """Can this node be expanded (again)?

    Progressive widening holds a node back until it has `widen_after` visits per expansion so far;
    `patient=True` asks whether the budget allows another expansion at all, visits aside (the walk
    widens such a node when nothing below it is open, so widening never closes a tree for good). A
    node whose answer was submitted and passed every check (`meta["submitted"]`) is closed: another
    expansion could only submit it again. A finished answer that crashed on probe inputs stays open
    for repairs (`BudgetConfig.crash_free`).
    """
    return (
        (not node.terminal or repairable(node, budget))
        and node.duplicate_of is None
        and node.depth < budget.max_depth
        and expansions(node) < budget.max_expansions_per_node
        and "submitted" not in node.meta
        and (patient or expansions(node) == 0 or node.visits >= budget.widen_after * expansions(node))
    )


def passes(node: Node) -> bool:
    """Whether the node's answer passes every visible check the world ran on it, without crashing on
    probe inputs: what a search of a checked task is after."""
    return node.meta.get("hard") == 1.0 and not node.meta.get("crashes")


def arm_yield(nodes: list[Node], cost: float | None = None) -> tuple[float, float]:
    """The expected share of samples that pass (`passes`), one in two as the prior (Beta(1, 1)), and
    the model tokens a sample has cost (`cost` where `nodes` is empty)."""
    samples = sum(max(n.count, 1) for n in nodes)
    wins = sum(max(n.count, 1) for n in nodes if passes(n))
    tokens = sum(n.usage.total_tokens for n in nodes)
    return (1 + wins) / (2 + samples), (tokens / samples if samples else cost or 1.0)


def prefer_fresh(tree: Tree, budget: BudgetConfig | None = None) -> bool:
    """Whether a fresh sample at the root promises more passing answers per model token than a repair
    below it, going by what each has yielded in this tree so far (`arm_yield`; a repair not yet
    tried is priced like a fresh sample). A small model's repairs mostly rewrite the failing code
    without fixing it: once they stop paying, the budget turns to fresh samples; where they work,
    they keep it. Near the end of a token budget (less left than half of what a round of fresh
    samples has cost), the smaller repairs go first, so a last round does not overshoot the budget."""
    fresh = tree.children(tree.root_id)
    if budget is not None and budget.max_tokens is not None and tree.root.expansions:
        round_cost = sum(n.usage.total_tokens for n in fresh) / len(tree.root.expansions)
        if budget.max_tokens - tree.total_usage().total_tokens < round_cost / 2:
            return False
    repairs = [n for n in tree if n.depth >= 2]
    fresh_rate, fresh_cost = arm_yield(fresh)
    repair_rate, repair_cost = arm_yield(repairs, cost=fresh_cost)
    return fresh_rate / max(fresh_cost, 1.0) >= repair_rate / max(repair_cost, 1.0)


class Stats:
    """Visits and values with the batch's virtual losses added: what a selector scores with."""

    def __init__(self, tree: Tree, virtual: dict[NodeId, float]) -> None:
        self.tree = tree
        self.virtual = virtual

    def visits(self, node: Node) -> float:
        return node.visits + self.virtual.get(node.id, 0.0)

    def q(self, node: Node) -> float:
        visits = self.visits(node)
        return node.value_sum / visits if visits else 0.0


@runtime_checkable
class Selector(Protocol):
    """How the walk down the tree chooses: a score per child, and the score of expanding the node once
    more (progressive widening), compared with its best child's. Higher goes first."""

    def score(self, parent: Node, child: Node, stats: Stats, rng: random.Random) -> float: ...

    def widen(self, node: Node, children: list[Node], stats: Stats, rng: random.Random) -> float: ...


class UCT:
    """Q + C * sqrt(ln N / n), unvisited children first. Subclass it and override `score` (and, if
    you like, `widen`) for a selector of your own."""

    def __init__(self, config: SelectorConfig) -> None:
        self.config = config

    def score(self, parent: Node, child: Node, stats: Stats, rng: random.Random) -> float:
        n = stats.visits(child)
        if n == 0:
            return math.inf
        big_n = max(stats.visits(parent), 1.0)
        return stats.q(child) + self.config.exploration * math.sqrt(math.log(big_n) / n)

    def widen(self, node: Node, children: list[Node], stats: Stats, rng: random.Random) -> float:
        """The score of one more expansion of `node`, as if it were another child: what a fresh sample
        is expected to be worth (the node's own reward, 0.5 where it has none) plus an exploration
        term that shrinks with each expansion. A strong child beats it, so the search goes deeper;
        children that all look poor lose to it, so the node is sampled anew."""
        widened = expansions(node)
        prior = node.reward if node.reward is not None else 0.5
        return prior + self.config.exploration * math.sqrt(math.log(max(stats.visits(node), 1.0)) / (1 + widened))


class DepthUCT(UCT):
    """SWE-Search: UCT + alpha * e^(-beta (d - 1)) - gamma * sqrt(d)."""

    def score(self, parent: Node, child: Node, stats: Stats, rng: random.Random) -> float:
        config = self.config
        d = child.depth
        bonus = config.depth_alpha * math.exp(-config.depth_beta * (d - 1)) - config.depth_gamma * math.sqrt(d)
        return super().score(parent, child, stats, rng) + bonus


class PUCT(UCT):
    """Q + C * P * sqrt(N) / (1 + n), P = how often the solver proposed the action (sample counts)."""

    def score(self, parent: Node, child: Node, stats: Stats, rng: random.Random) -> float:
        siblings = stats.tree.children(parent.id)
        total = sum(max(s.count, 1) for s in siblings) or 1
        prior = max(child.count, 1) / total
        explore = self.config.exploration * prior * math.sqrt(max(stats.visits(parent), 1.0))
        return stats.q(child) + explore / (1 + stats.visits(child))


class HGM(UCT):
    """Huxley-Goedel Machine: a Thompson sample of Beta(1 + successes, 1 + failures) over the child's
    clade (itself and its descendants); widening samples over the children's outcomes, each earlier
    expansion counted as one more failure."""

    def __init__(self, config: SelectorConfig) -> None:
        super().__init__(config)
        self._clades: dict[NodeId, tuple[int, int]] = {}

    def _counts(self, tree: Tree, node: Node) -> tuple[int, int]:
        if node.id not in self._clades:
            wins = losses = 0
            for member in [node, *tree.descendants(node.id)]:
                if member.reward is None:
                    continue
                if member.reward >= self.config.success_threshold:
                    wins += 1
                else:
                    losses += 1
            self._clades[node.id] = (wins, losses)  # fresh numbers per node, never a shared list
        return self._clades[node.id]

    def score(self, parent: Node, child: Node, stats: Stats, rng: random.Random) -> float:
        wins, losses = self._counts(stats.tree, child)
        return rng.betavariate(1 + wins, 1 + losses)

    def widen(self, node: Node, children: list[Node], stats: Stats, rng: random.Random) -> float:
        evaluated = [c for c in children if c.reward is not None]
        wins = sum(1 for c in evaluated if (c.reward or 0.0) >= self.config.success_threshold)
        return rng.betavariate(1 + wins, 1 + len(evaluated) - wins + expansions(node))


SelectorFactory = Callable[[SelectorConfig], Selector]
SELECTORS: dict[str, SelectorFactory] = {"uct": UCT, "depth_uct": DepthUCT, "puct": PUCT, "hgm": HGM}
"""The selectors known by name; `register_selector` adds one."""


def register_selector(name: str, factory: SelectorFactory) -> None:
    """Make `factory` (a class taking the `SelectorConfig`, like `UCT`) usable as `selector.name=NAME`."""
    if not name or ":" in name:
        raise UserError(f"a selector name is a plain word, not {name!r} (module:Name is how code is named)")
    SELECTORS[name] = factory


def selector_factory(name: str) -> SelectorFactory:
    """The factory of a registered selector, or of `package.module:Name` (imported); UserError otherwise."""
    if name in SELECTORS:
        return SELECTORS[name]
    module_name, colon, attribute = name.partition(":")
    if not colon:
        raise UserError(
            f"unknown selector {name!r}; use one of {', '.join(sorted(SELECTORS))} or package.module:ClassName"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"selector {name!r}: cannot import {module_name} ({exc}); is it installed?") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise UserError(f"selector {name!r}: {module_name} has no class or function {attribute!r}")
    return cast(SelectorFactory, factory)


def make_selector(config: SelectorConfig) -> Selector:
    """The selector `config.name` names, built with `config`; UserError when it is not a Selector."""
    selector = selector_factory(config.name)(config)
    if not isinstance(selector, Selector):
        raise UserError(
            f"selector {config.name!r} has no score() and widen() methods; subclass trellis.search.selectors.UCT"
        )
    return selector


def select_nodes(
    tree: Tree,
    config: SelectorConfig,
    budget: BudgetConfig,
    rng: random.Random,
    *,
    k: int = 1,
    virtual_loss: float = 1.0,
    by_yield: bool = False,
) -> list[NodeId]:
    """Up to `k` distinct open nodes to expand; fewer (or none) when the tree has no more.

    `by_yield`: at the root, whether to widen it (a fresh sample) or walk down (a repair) goes by
    `prefer_fresh` instead of the selector's widening score (`SearchConfig.allocate_by_yield`).

    The walk only looks at the children along its way, so a selection costs O(depth x branching)
    rather than O(tree) (with `by_yield`, one pass over the tree more); a subtree found to hold no
    open node is remembered as dead for the rest of the call and the walk starts again from the root.
    """
    selector = make_selector(config)
    score = selector.score
    virtual: dict[NodeId, float] = defaultdict(float)
    stats = Stats(tree, virtual)
    chosen: list[NodeId] = []
    taken: set[NodeId] = set()
    busy: set[NodeId] = set()
    """Ancestors of this batch's picks."""
    dead: set[NodeId] = set()
    fresh: bool | None = None
    """`prefer_fresh`, worked out at the first visit to the root that needs it."""
    while len(chosen) < k and tree.root_id not in dead:
        node = tree.root
        while True:
            candidates = [c for c in tree.children(node.id) if c.id not in dead]
            # A fresh node is expanded; one expanded before is widened only when a new sample
            # promises more than descending into the best child does.
            if by_yield and node.id == tree.root_id and candidates:
                if fresh is None:  # the tree does not change during one call: weigh it once
                    fresh = prefer_fresh(tree, budget)
                widen = node.id not in taken and is_open(node, budget, patient=True) and fresh
            else:
                widen = (
                    node.id not in taken
                    and is_open(node, budget)
                    and (
                        not candidates
                        or selector.widen(node, candidates, stats, rng)
                        >= max(score(node, c, stats, rng) for c in candidates)
                    )
                )
            if widen:
                chosen.append(node.id)
                taken.add(node.id)
                busy.update(a.id for a in tree.ancestors(node.id))
                for ancestor in tree.ancestors(node.id):
                    virtual[ancestor.id] += virtual_loss
                break
            if not candidates:
                # Nothing open below (and nothing of this batch picked below): widen now if the
                # budget allows, so progressive widening never closes a tree for good.
                if node.id not in taken and node.id not in busy and is_open(node, budget, patient=True):
                    chosen.append(node.id)
                    taken.add(node.id)
                    busy.update(a.id for a in tree.ancestors(node.id))
                    for ancestor in tree.ancestors(node.id):
                        virtual[ancestor.id] += virtual_loss
                dead.add(node.id)  # never walk into it again in this call
                break
            parent = node
            node = max(candidates, key=lambda c: (score(parent, c, stats, rng), -c.index))
    return chosen
