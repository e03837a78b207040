"""The discriminator: picks the final answer among finished candidates.

Candidates form groups: those the world ran on its probe inputs by how they behaved there (different
code that behaves alike is one group), the others by their patch. When probed groups exist and one
of them holds more distinct answers than any other, that agreement decides, whatever the strategy:
independent answers that behave alike on inputs nobody checked are evidence no reviewer outweighs.
Otherwise the strategy does: `mean` (highest mean reward of a group), `majority` (the group most
candidates reached; ties by mean reward), and `debate` (SWE-Search): reviewer agents argue over the
groups for some rounds, the last round's votes decide, and the transcript is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from trellis.agents.prompts import debate_messages

from trellis.errors import ModelError
from trellis.models.base import ChatModel
from trellis.parsing import finite_number, json_objects
from trellis.tree import Usage

Strategy = Literal["mean", "majority", "debate"]


class DiscriminatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = "debate"
    agents: int = Field(default=2, ge=1, le=8)
    rounds: int = Field(default=1, ge=1, le=5)
    max_tokens: int = Field(default=200, ge=16)
    temperature: float = Field(default=0.5, ge=0, le=2)
    margin: float = Field(default=0.1, ge=0, le=1)
    """Debate and majority only among answers whose mean reward is within this margin of the best:
    reviewers settle close calls, they do not overrule clear evidence (tests that pass)."""


class Candidate(BaseModel):
    node_id: str
    answer: str
    """What is being chosen (a patch); candidates with equal answers (and no behaviour) form one group."""
    reward: float
    note: str = ""
    """Shown to debaters beside the answer (the critic's explanation)."""
    behaviour: str | None = None
    """How the answer behaved on the world's probe inputs (a code task's calls nobody checked):
    candidates that behave alike form one group even when their text differs."""
    lineage: str | None = None
    """The independent sample the answer descends from (a search's first-level node): a repair agrees
    with the answer it repaired as one voice, not two. None: a lineage of its own."""
    crashes: int = Field(default=0, ge=0)
    """How many of the smallest probe inputs the answer crashed on (an error it did not raise on
    purpose): such an answer has a bug, so wherever a probed answer does not crash, answers that do
    are left out, however many agree with each other."""


class Turn(BaseModel):
    speaker: str
    text: str
    choice: int | None = None


class Decision(BaseModel):
    node_id: str | None
    strategy: str
    groups: list[list[str]] = Field(default_factory=list)
    """Candidate node ids per distinct answer, in the order shown to debaters."""
    transcript: list[Turn] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    reason: str = ""


def _groups(candidates: Sequence[Candidate]) -> list[list[Candidate]]:
    """Candidates with the same behaviour on the probes, or else the same answer, form a group."""
    by_answer: dict[tuple[str, str], list[Candidate]] = {}
    for c in candidates:
        if c.behaviour is not None:
            key = ("behaviour", c.behaviour)
        else:  # trailing whitespace and line endings only: indentation is meaning in Python
            key = (
                "answer",
                "\n".join(line.rstrip() for line in c.answer.replace("\r\n", "\n").split("\n")).strip("\n"),
            )
        by_answer.setdefault(key, []).append(c)
    return list(by_answer.values())


def _distinct(group: list[Candidate]) -> int:
    """How many different answers from independent lineages a group holds (a behaviour group can hold
    several): the same answer twice, or an answer and its own repair, agree as one."""
    lineages = {c.lineage if c.lineage is not None else f"{c.node_id} (own)" for c in group}
    return min(len({c.answer for c in group}), len(lineages))


def _crashes(group: list[Candidate]) -> bool:
    return any(c.crashes for c in group)


def _agreement(groups: list[list[Candidate]]) -> list[Candidate] | None:
    """The probed group with the most distinct answers, when it has more than one and more than any
    other probed group; None otherwise (a tie, or nothing agrees)."""
    probed = [g for g in groups if g[0].behaviour is not None]
    if not probed:
        return None
    most = max(_distinct(g) for g in probed)
    top = [g for g in probed if _distinct(g) == most]
    return top[0] if most > 1 and len(top) == 1 else None


def _mean(group: list[Candidate]) -> float:
    return sum(c.reward for c in group) / len(group)


def _best(group: list[Candidate]) -> Candidate:
    return max(group, key=lambda c: (c.reward, c.node_id))


def parse_choice(text: str, count: int) -> int | None:
    """The first whole-number `choice` in [0, count) found in a reviewer's reply; None when there is none."""
    for value in json_objects(text):
        # Clamped just outside the range, so a huge or out-of-range number is rejected, never converted.
        choice = finite_number(value.get("choice"), low=-1, high=count)
        if choice is not None and choice.is_integer() and 0 <= choice < count:
            return int(choice)
    return None


class Discriminator:
    def __init__(self, model: ChatModel | None, config: DiscriminatorConfig | None = None) -> None:
        self.model = model
        self.config = config or DiscriminatorConfig()

    async def __call__(self, task: str, candidates: Sequence[Candidate], *, seed: int | None = None) -> Decision:
        strategy = self.config.strategy
        if not candidates:
            return Decision(node_id=None, strategy=strategy, reason="no finished candidates")
        groups = _groups(candidates)
        if any(g[0].behaviour is not None and not _crashes(g) for g in groups):
            # an answer that crashes on the smallest inputs has a bug, however many agree with it; one
            # that was never probed is kept (it is weighed by its value, as before)
            groups = [g for g in groups if not _crashes(g)]
        ids = [[c.node_id for c in g] for g in groups]
        agreed = _agreement(groups)
        if agreed is not None:
            return Decision(
                node_id=_best(agreed).node_id,
                strategy=strategy,
                groups=ids,
                reason=f"{_distinct(agreed)} distinct answers behave alike on the probe inputs",
            )
        by_mean = max(groups, key=lambda g: (_mean(g), len(g)))
        if strategy != "mean":
            groups = [g for g in groups if _mean(g) >= _mean(by_mean) - self.config.margin]
        ids = [[c.node_id for c in g] for g in groups]
        if strategy == "mean" or len(groups) == 1:
            reason = (
                "one distinct answer" if len(_groups(candidates)) == 1 else f"highest mean reward {_mean(by_mean):.2f}"
            )
            return Decision(node_id=_best(by_mean).node_id, strategy=strategy, groups=ids, reason=reason)
        if strategy == "majority":
            top = max(groups, key=lambda g: (len(g), _mean(g)))
            return Decision(
                node_id=_best(top).node_id,
                strategy=strategy,
                groups=ids,
                reason=f"{len(top)} of {len(candidates)} candidates reached this answer",
            )
        return await self._debate(task, groups, ids, by_mean, seed)

    async def _debate(
        self,
        task: str,
        groups: list[list[Candidate]],
        ids: list[list[str]],
        fallback: list[Candidate],
        seed: int | None,
    ) -> Decision:
        if self.model is None:
            raise ValueError("the debate strategy needs a model")
        config = self.config
        shown = [
            f"{_best(g).answer[:1500]}\n(reached by {len(g)} branches; critic: {_best(g).note[:200]})" for g in groups
        ]
        transcript: list[Turn] = []
        usage = Usage()
        votes: list[int] = []
        for round_index in range(config.rounds):
            votes = []
            for agent in range(config.agents):
                history = [(t.speaker, t.text) for t in transcript]
                try:
                    (reply,) = await self.model.complete(
                        debate_messages(task, shown, history, agent),
                        n=1,
                        temperature=config.temperature,
                        max_tokens=config.max_tokens,
                        seed=None if seed is None else seed + round_index * config.agents + agent,
                    )
                except ModelError as exc:
                    transcript.append(Turn(speaker=f"reviewer {agent}", text=f"(no answer: {exc})"))
                    continue
                usage = usage + reply.usage
                choice = parse_choice(reply.text, len(groups))
                transcript.append(Turn(speaker=f"reviewer {agent}", text=reply.text.strip(), choice=choice))
                if choice is not None:
                    votes.append(choice)
        if not votes:
            return Decision(
                node_id=_best(fallback).node_id,
                strategy="debate",
                groups=ids,
                transcript=transcript,
                usage=usage,
                reason="no reviewer gave a usable choice; highest mean reward taken",
            )
        tally = Counter(votes)
        top = max(tally.values())
        tied = [groups[i] for i, count in tally.items() if count == top]
        winner = max(tied, key=lambda g: (_mean(g), len(g)))
        return Decision(
            node_id=_best(winner).node_id,
            strategy="debate",
            groups=ids,
            transcript=transcript,
            usage=usage,
            reason=f"votes {dict(sorted(tally.items()))} in the last round",
        )
