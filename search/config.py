"""The search's configuration: selection, expansion, budgets and which agents take part."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from trellis.agents.critic import CriticConfig
from trellis.agents.discriminator import DiscriminatorConfig
from trellis.agents.solver import SolverConfig

from trellis.errors import UserError


class SelectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "depth_uct"
    """`uct`, `depth_uct`, `puct`, `hgm`, a name given to `register_selector`, or `package.module:Class`
    for a selector of your own (see `trellis.search.selectors`)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Settings of a selector of your own (it reads them from its config)."""
    exploration: float = Field(default=1.0, ge=0)
    """C in the exploration term."""
    depth_alpha: float = Field(default=0.2, ge=0)
    """SWE-Search's early-depth bonus alpha * e^(-beta (d - 1)); small next to the exploration term."""
    depth_beta: float = Field(default=1.0, ge=0)
    depth_gamma: float = Field(default=0.05, ge=0)
    """SWE-Search's depth penalty gamma * sqrt(d)."""
    success_threshold: float = Field(default=0.7, ge=0, le=1)
    """HGM: an evaluated node at or above this value counts as a success of its clade."""

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from trellis.search.selectors import selector_factory  # the registry imports this module

        try:
            selector_factory(name)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        return name


class BudgetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_nodes: int = Field(default=40, ge=2)
    max_depth: int = Field(default=12, ge=1)
    max_expansions_per_node: int = Field(default=1, ge=1)
    widen_after: int = Field(default=3, ge=0)
    """Progressive widening: a node is expanded again only after this many visits per expansion so far."""
    max_iterations: int = Field(default=60, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    """Model tokens (prompt + completion) for the whole search."""
    max_seconds: float | None = Field(default=None, gt=0)
    enough_finished: int = Field(default=3, ge=1)
    """Stop once this many distinct finished candidates exist. Answers the world probed wait for
    `agreement` instead while it is above 1 (with `stop_when_checked`): their number says nothing of
    whether one is right."""
    reward_threshold: float = Field(default=0.95, ge=0, le=1)
    """Stop as soon as a finished candidate reaches this value."""
    stop_when_checked: bool = True
    """Stop once finished candidates that pass every visible check the world ran on them (a code
    task's docstring examples) are `agreement` distinct answers that behave alike; the hidden tests
    stay unseen, so this is the search's best evidence."""
    agreement: int = Field(default=2, ge=1)
    """How many distinct checked answers must behave alike on the world's probe inputs before
    `stop_when_checked` stops (answers that pass the examples can still be wrong elsewhere; agreement
    between independent samples is evidence). 1: the first checked answer. Worlds without probes
    stop at the first."""
    crash_free: bool = True
    """An answer that passes every visible check but crashes on a probe input (an input of the
    examples' kind, such as an empty one, on which it raises an error no line of it raises on
    purpose) does not count for `stop_when_checked`, and its node stays open for a repair that shows
    the model the crash. It stays a candidate; between equals, answers that do not crash go first."""


class SearchConfig(BaseModel):
    """Everything that shapes a search; frozen, validated, and written into the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    samples: int = Field(default=2, ge=1, le=16)
    """Solver samples per expansion."""
    root_samples: int | None = Field(default=None, ge=1, le=16)
    """Samples per expansion of the root (default: `samples`). The root's expansions, with the focused
    opening, are the cheapest samples of a search and the most diverse ones."""
    parallel: int = Field(default=1, ge=1, le=16)
    """Nodes expanded at once (with virtual loss, so they differ)."""
    virtual_loss: float = Field(default=1.0, ge=0)
    selector: SelectorConfig = Field(default_factory=SelectorConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    solver: SolverConfig = Field(default_factory=SolverConfig)
    critic: CriticConfig = Field(default_factory=CriticConfig)
    discriminator: DiscriminatorConfig = Field(default_factory=DiscriminatorConfig)
    feedback: bool = True
    """Give the solver the critic's feedback on this node and its evaluated siblings."""
    reflection: bool = True
    """Draw a lesson from each failed terminal and show it to later expansions."""
    opening: bool = True
    """Expand the root with the task's focused prompt where the job gives one (the issue and the code it
    concerns; a function's stub), instead of the agent's prompt."""
    focused_repair: bool = True
    """Below the opening, a step whose checks failed is repaired in the opening's conversation (the
    opening prompt, the model's earlier replies and what running them showed: self-debugging) instead
    of the agent's prompt, as long as every step on its path was such a focused write. A fraction of
    the agent prompt's tokens, so a budget buys several repairs for one agent step. Repairs are sampled
    (no greedy first sample: greedily, a small model mostly repeats the code that just failed)."""
    allocate_by_yield: bool = False
    """Whether the root is widened (fresh samples) or a node below it expanded (a repair) goes by which
    has yielded more answers that pass every visible check per model token so far in this tree (one
    in two as the prior of each), instead of by the selector's widening score: once a small model's
    repairs stop paying, the budget goes to fresh samples (`trellis.search.selectors.prefer_fresh`).
    For trees whose steps are checked, such as a code task's focused writes."""
    finish_when_checked: bool = True
    """In a world whose visible checks are the task's own acceptance checks (`checks_complete`, a code
    task's docstring examples), a step after which every check passes is a finished answer: the
    solver is not asked to say `finish` (a whole agent prompt for one word)."""
    judge_agent: bool = False
    """A judge agent of its own (`trellis.agents.judge.Judge`, on the critic's model) gives the verdict
    on each observation that the solver's reply does not judge itself (`solver.judge`)."""
    judge_value: bool = False
    """Mix the judge's instructive reward (where the world knows which observations were useful, see
    `JudgeChecked`) into a finished node's value: a fifth of it, the verdicts' mean reward mapped
    from [-0.6, 0.4] onto [0, 1]. The reward rests on the world's reference answer (QA's gold answers, a
    SWE instance's patch): for searches that make training data, not for measuring a solve rate."""
    use_world_reward: bool = False
    """Score finished nodes with the world's own check (hidden tests) instead of the critic alone."""
    partial_credit: float = Field(default=0.5, ge=0, lt=1)
    """How much a failing check counts in a step's hard score, times the progress the world saw
    toward passing it (`Observation.progress`: an issue's call now returning 'hello-world-' where
    'hello-world' is due and the original code gave 'hello---world-'). Repairs then go first to the
    answers nearest to passing; 0 counts failing checks as nothing."""
    max_hints: int = Field(default=4, ge=0)
    """Notes shown to the solver: feedback from this node, its children and siblings, and reflections
    (which always get room: up to half, at least one)."""
    max_model_errors: int = Field(default=3, ge=1)
    """Failed model calls at one node before it counts as expanded (each leaves it open for later)."""


def token_budget_mcts(max_tokens: int, seed: int = 0, **changes: Any) -> SearchConfig:
    """MCTS bounded by model tokens alone: depth-aware UCT, 8 samples at the root (its focused opening
    is the cheapest and most diverse step: for a small model a fresh sample is worth more than a
    repair, which mostly repeats the code it was shown) and 2 per expansion below, up to 3 expansions
    of a node with progressive widening, stopping when checked answers agree (or, where nothing is
    probed, at 3 distinct finished answers or one valued 0.9); the node, depth and iteration limits
    are far enough not to bind first. The shape the search benchmark
    compares methods in and Agent-R searches with; `changes` replace fields
    (`selector=SelectorConfig(name="uct", exploration=0.25)`)."""
    budget = BudgetConfig(
        max_tokens=max_tokens,
        max_nodes=200,
        max_depth=10,
        enough_finished=3,
        max_expansions_per_node=3,
        widen_after=2,
        reward_threshold=0.9,
    )
    fields: dict[str, Any] = {
        "seed": seed,
        "samples": 2,
        "root_samples": 8,
        "budget": budget,
        "selector": SelectorConfig(name="depth_uct"),
        "use_world_reward": False,
        "allocate_by_yield": True,
    }
    return SearchConfig(**{**fields, **changes})


def linear_agent(
    max_tokens: int | None = 8000, seed: int = 0, *, max_nodes: int = 200, max_depth: int = 12, **changes: Any
) -> SearchConfig:
    """One agent trajectory, one sample per step (greedy, but for focused repairs) until it finishes:
    a plain agent loop on the search's machinery (the root's focused opening, focused repairs, the
    tree store, resuming).

    A node is expanded again only after a dead end (an unusable reply, a rejection), never while its
    child is still open: widening such a node would fork a second trajectory that spends what the
    first needs to reach an answer. No feedback, reflections or debate; the first finished answer
    ends the search. The shape the search benchmark's `linear` method runs; `changes` replace fields.
    """
    budget = BudgetConfig(
        max_tokens=max_tokens,
        max_nodes=max_nodes,
        max_depth=max_depth,
        enough_finished=1,
        agreement=1,  # its first finished answer ends it: nothing else to agree with
        max_expansions_per_node=3,
        widen_after=10**6,
    )
    fields: dict[str, Any] = {
        "seed": seed,
        "samples": 1,
        "feedback": False,
        "reflection": False,
        "budget": budget,
        "discriminator": DiscriminatorConfig(strategy="mean"),
        "use_world_reward": False,
    }
    return SearchConfig(**{**fields, **changes})
