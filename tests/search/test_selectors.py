from __future__ import annotations

import math
import random

import pytest
from trellis.search.config import BudgetConfig, SelectorConfig
from trellis.search.selectors import Stats, is_open, make_selector, prefer_fresh, select_nodes

from trellis.tree import Tree, Usage


def grown(values: dict[str, list[float]]) -> Tree:
    """Root expanded once into children 0.0, 0.1, ...; each child backed up with the given values."""
    tree = Tree.new()
    tree.root.expansions = [0]
    for index, child_values in enumerate(values.values()):
        child = tree.add_child("0", index)
        for value in child_values:
            tree.backpropagate(child.id, value)
    return tree


def score(name: str, tree: Tree, child: str, **config: float) -> float:
    selector = make_selector(SelectorConfig(name=name, **config))  # type: ignore[arg-type]
    return selector.score(tree.root, tree.get(child), Stats(tree, {}), random.Random(0))


def test_uct_formula_and_unvisited_first() -> None:
    tree = grown({"a": [1.0, 0.0], "b": [0.5], "c": []})
    n_parent = tree.root.visits
    assert score("uct", tree, "0.0") == pytest.approx(0.5 + math.sqrt(math.log(n_parent) / 2))
    assert score("uct", tree, "0.2") == math.inf
    assert select_nodes(tree, SelectorConfig(name="uct"), BudgetConfig(), random.Random(0)) == ["0.2"]


def test_depth_uct_adds_swe_search_terms() -> None:
    tree = grown({"a": [0.5]})
    plain = score("uct", tree, "0.0")
    cfg = {"depth_alpha": 0.2, "depth_beta": 1.0, "depth_gamma": 0.05}
    assert score("depth_uct", tree, "0.0", **cfg) == pytest.approx(plain + 0.2 * math.exp(0) - 0.05 * math.sqrt(1))
    # the bonus stays small next to the exploration term
    assert math.sqrt(math.log(2) / 1) > 0.2


def test_puct_prior_follows_sample_counts() -> None:
    tree = grown({"a": [0.5], "b": [0.5]})
    tree.get("0.0").count = 3
    assert score("puct", tree, "0.0") > score("puct", tree, "0.1")
    assert select_nodes(tree, SelectorConfig(name="puct"), BudgetConfig(), random.Random(0)) == ["0.0"]


def test_hgm_samples_from_the_clade() -> None:
    tree = grown({"a": [], "b": []})
    for i, reward in enumerate([0.9, 0.9, 0.8]):
        tree.add_child("0.0", i, reward=reward)
    for i, reward in enumerate([0.1, 0.2, 0.0]):
        tree.add_child("0.1", i, reward=reward)
    picks = [
        select_nodes(tree, SelectorConfig(name="hgm"), BudgetConfig(), random.Random(seed))[0] for seed in range(60)
    ]
    strong = sum(p.startswith("0.0") for p in picks)
    assert strong > 45  # Beta(4, 1) beats Beta(1, 4) most of the time
    assert picks == [
        select_nodes(tree, SelectorConfig(name="hgm"), BudgetConfig(), random.Random(seed))[0] for seed in range(60)
    ]


def test_virtual_loss_spreads_a_parallel_batch() -> None:
    tree = grown({"a": [0.9], "b": [0.8], "c": [0.7]})
    chosen = select_nodes(tree, SelectorConfig(name="uct"), BudgetConfig(), random.Random(0), k=3)
    assert sorted(chosen) == ["0.0", "0.1", "0.2"]
    assert len(set(chosen)) == 3


def test_closed_nodes_are_never_selected() -> None:
    tree = grown({"a": [0.9], "b": [0.1]})
    tree.get("0.0").terminal = True
    tree.get("0.1").duplicate_of = "0.0"
    budget = BudgetConfig()
    assert not is_open(tree.get("0.0"), budget) and not is_open(tree.get("0.1"), budget)
    assert select_nodes(tree, SelectorConfig(), budget, random.Random(0), k=2) == []
    deep = grown({"a": [0.5]})
    assert select_nodes(deep, SelectorConfig(), BudgetConfig(max_depth=1), random.Random(0)) == []
    # progressive widening: the root is expanded again only once it has been visited enough
    again = grown({"a": [0.5]})
    widening = BudgetConfig(max_expansions_per_node=2, widen_after=2)
    assert select_nodes(again, SelectorConfig(), widening, random.Random(0), k=2) == ["0.0"]
    again.backpropagate("0.0", 0.5)
    assert sorted(select_nodes(again, SelectorConfig(), widening, random.Random(0), k=2)) == ["0", "0.0"]


def test_widening_competes_with_the_best_child() -> None:
    widening = BudgetConfig(max_expansions_per_node=3, widen_after=1)
    uct = SelectorConfig(name="uct")
    strong = grown({"a": [1.0] * 4})
    assert select_nodes(strong, uct, widening, random.Random(0)) == ["0.0"]  # a good child: go deeper
    weak = grown({"a": [0.0] * 4})
    assert select_nodes(weak, uct, widening, random.Random(0)) == ["0"]  # only poor children: sample anew


def test_a_dead_end_never_closes_the_tree() -> None:
    # the root's only child failed terminally and the root has too few visits to widen by the rule:
    # it is widened anyway, since nothing else is left and its budget allows another expansion
    tree = grown({"a": [0.0]})
    tree.get("0.0").terminal = True
    budget = BudgetConfig(max_expansions_per_node=2, widen_after=5)
    assert not is_open(tree.root, budget) and is_open(tree.root, budget, patient=True)
    assert select_nodes(tree, SelectorConfig(), budget, random.Random(0)) == ["0"]
    assert select_nodes(tree, SelectorConfig(), BudgetConfig(max_expansions_per_node=1), random.Random(0)) == []


def _checked(tree: Tree, parent: str, hards: list[float], tokens: int) -> None:
    """Expand `parent` once into children whose visible checks pass the given shares, each sample
    costing `tokens` model tokens, and back them up."""
    node = tree.get(parent)
    base = len(tree.children(parent))
    node.expansions = [*node.expansions, len(node.expansions)]
    for index, hard in enumerate(hards):
        child = tree.add_child(parent, base + index, usage=Usage(completion_tokens=tokens), meta={"hard": hard})
        child.reward = hard
        tree.backpropagate(child.id, hard)


def test_by_yield_turns_to_fresh_samples_once_repairs_stop_paying() -> None:
    budget = BudgetConfig(max_expansions_per_node=3, widen_after=2)
    config = SelectorConfig()
    tree = Tree.new()
    _checked(tree, "0", [0.5] * 8, tokens=250)  # eight fresh samples, none passing
    # repairs not yet tried are worth a try (one in two as the prior): walk down and repair
    assert not prefer_fresh(tree)
    assert select_nodes(tree, config, budget, random.Random(0), by_yield=True) != ["0"]
    # one repair round at twice a fresh sample's tokens, neither passing: one more is still worth it
    _checked(tree, "0.0", [0.5, 0.5], tokens=500)
    assert not prefer_fresh(tree)
    # after two, fresh samples promise more
    _checked(tree, "0.1", [0.5, 0.5], tokens=500)
    assert prefer_fresh(tree)
    assert select_nodes(tree, config, budget, random.Random(0), by_yield=True) == ["0"]
    # the selector's own widening rule would still walk down into the untried children
    assert select_nodes(tree, config, budget, random.Random(0)) != ["0"]
    # with less of the token budget left than half a round of fresh samples (8 x 250), repairs go first
    spent = tree.total_usage().total_tokens
    assert prefer_fresh(tree, budget.model_copy(update={"max_tokens": spent + 1001}))
    assert not prefer_fresh(tree, budget.model_copy(update={"max_tokens": spent + 999}))


def test_by_yield_keeps_repairing_where_repairs_pass() -> None:
    budget = BudgetConfig(max_expansions_per_node=3, widen_after=2)
    tree = Tree.new()
    _checked(tree, "0", [0.5] * 8, tokens=250)
    _checked(tree, "0.0", [1.0, 0.5], tokens=500)  # a repair passed every check
    _checked(tree, "0.1", [1.0, 0.5], tokens=500)
    assert not prefer_fresh(tree)
    assert select_nodes(tree, SelectorConfig(), budget, random.Random(0), by_yield=True) != ["0"]
    # a root whose expansions are spent is never widened, whatever repairs yield
    tree.root.expansions = [0, 1, 2]
    _checked(tree, "0.2", [0.5] * 2, tokens=5000)
    assert prefer_fresh(tree)
    assert select_nodes(tree, SelectorConfig(), budget, random.Random(0), by_yield=True) != ["0"]


def _two_branches() -> Tree:
    """0.0 is strong and already expanded into two unvisited children; 0.1 is a little weaker, unexpanded."""
    tree = grown({"a": [0.9], "b": [0.85]})
    tree.get("0.0").expansions = [0]
    tree.add_child("0.0", 0)
    tree.add_child("0.0", 1)
    return tree


def test_virtual_loss_sends_the_second_pick_elsewhere() -> None:
    budget = BudgetConfig(max_expansions_per_node=1)
    uct = SelectorConfig(name="uct")
    spread = select_nodes(_two_branches(), uct, budget, random.Random(0), k=2, virtual_loss=1.0)
    assert sorted(spread) == ["0.0.0", "0.1"]
    # without virtual loss both picks of the batch crowd into the strong branch
    crowded = select_nodes(_two_branches(), uct, budget, random.Random(0), k=2, virtual_loss=0.0)
    assert sorted(crowded) == ["0.0.0", "0.0.1"]


def test_depth_uct_beyond_depth_one() -> None:
    tree = grown({"a": [0.5]})
    node = tree.add_child("0.0", 0)
    grandchild = tree.add_child(node.id, 0)
    for value in (0.4, 0.6):
        tree.backpropagate(grandchild.id, value)
    cfg = SelectorConfig(name="depth_uct", depth_alpha=0.3, depth_beta=0.5, depth_gamma=0.1)
    stats = Stats(tree, {})
    parent, child = tree.get(node.id), tree.get(grandchild.id)
    plain = make_selector(cfg.model_copy(update={"name": "uct"})).score(parent, child, stats, random.Random(0))
    depth_aware = make_selector(cfg.model_copy(update={"name": "depth_uct"})).score(
        parent, child, stats, random.Random(0)
    )
    assert child.depth == 3
    assert depth_aware == pytest.approx(plain + 0.3 * math.exp(-0.5 * 2) - 0.1 * math.sqrt(3))


def test_a_selector_of_your_own_by_module_name_and_registered() -> None:
    from trellis.search.selectors import UCT, register_selector

    from trellis.errors import UserError

    tree = grown({"a": [0.9], "b": [0.1]})
    deep = tree.add_child("0.0", 0)
    tree.backpropagate(deep.id, 0.9)
    cfg = SelectorConfig(name="my_selector:Breadth", options={"shallow": 5.0})
    shallow_bonus = make_selector(cfg).score(tree.root, tree.get("0.1"), Stats(tree, {}), random.Random(0))
    plain = make_selector(SelectorConfig(name="uct")).score(
        tree.root, tree.get("0.1"), Stats(tree, {}), random.Random(0)
    )
    assert shallow_bonus == pytest.approx(plain + 5.0)  # the user's score is the one used

    register_selector("breadth-test", UCT)
    assert type(make_selector(SelectorConfig(name="breadth-test"))) is UCT
    for bad, message in [
        ("nope", "unknown selector 'nope'"),
        ("no_such_module:X", "cannot import no_such_module"),
        ("my_selector:Missing", "has no class or function 'Missing'"),
    ]:
        with pytest.raises(ValueError, match=message):
            SelectorConfig(name=bad)
    with pytest.raises(UserError, match="no score"):
        make_selector(SelectorConfig(name="my_selector:NotASelector"))
