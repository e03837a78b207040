"""`QAWorld`: answer a question by searching a passage collection (ReSeek's setting).

Two tools: `search QUERY` returns the top-k passages (3 by default) with their ids, titles and BM25
scores; `answer TEXT` ends the episode (`terminal="finished"`). After `max_turns`
searches (4 by default) only `answer` is allowed. `reward()` is exact match after SQuAD
normalisation (1.0 or 0.0), with token F1 in its details.

A state is what the agent has done: the question, the passages each search returned, in order, and
the answer given. Its id carries that state itself (a short content hash, then the state as
base64 JSON), so any world over the same corpus restores it, in this process or a resumed one, and
two searches that return the same passages reach the same state (the agent knows the same).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from trellis.envs.qa.corpus import QACorpus, Question
from trellis.envs.qa.judge import JudgeReward, judge_reward, search_judgements
from trellis.envs.qa.metrics import exact_match, f1_score
from trellis.envs.qa.retrieval import Hit, PassageIndex, tokenize

from trellis.errors import UserError
from trellis.judging import rewards_by_step
from trellis.tools import ToolSpec
from trellis.tree import Action, Observation, StateId, Step
from trellis.world import Reward

TOP_K = 3
MAX_TURNS = 4
SYSTEM_PROMPT = (
    "You answer questions by searching a collection of passages. Each reply holds one action: search for "
    "what you still need to know, one fact at a time, and answer once the passages you found hold the answer."
)
_STATE_PREFIX = "qa"


class SearchArgs(BaseModel):
    query: str = Field(min_length=1, description="words to look for: names, places, what you want to find")


class AnswerArgs(BaseModel):
    text: str = Field(min_length=1, description="the answer alone: a name, a place or a year, as short as possible")


class RevertArgs(BaseModel):
    state: str = Field(
        description="'start' for the question as first asked, 'after search N' for the state after your N-th "
        "search, or the id of an earlier state"
    )


QA_TOOLS = [
    ToolSpec(name="search", description="Search the passages; returns the best matches", args=SearchArgs),
    ToolSpec(name="answer", description="Give the final answer and finish", args=AnswerArgs),
]
REVERT = ToolSpec(
    name="revert", description="Go back to an earlier state: the searches and answer since are undone", args=RevertArgs
)
"""Offered only when asked for (`QAWorld(revert=True)`): Agent-R's revision step, replayed."""


class QAState(BaseModel):
    """Everything that decides what the agent can still do and what it will be scored on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    """The question's id."""
    seen: tuple[tuple[str, ...], ...] = ()
    """The passage ids each search returned, one tuple per search, in order."""
    answer: str | None = None

    @property
    def turns(self) -> int:
        return len(self.seen)

    def state_id(self) -> StateId:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
        encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{_STATE_PREFIX}-{digest}-{encoded}"

    @classmethod
    def parse(cls, state: StateId) -> QAState:
        """The state a `state_id` names; UserError when the id is not one."""
        prefix, _, rest = state.partition("-")
        digest, _, encoded = rest.partition("-")
        try:
            if prefix != _STATE_PREFIX:
                raise ValueError("not a QA state")
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            if hashlib.sha256(payload.encode()).hexdigest()[:16] != digest:
                raise ValueError("the hash does not match")
            return cls.model_validate_json(payload)
        except (ValueError, ValidationError, UnicodeDecodeError) as exc:
            raise UserError(
                f"{state[:60]!r} is not a state of a QA world ({exc}); restore an id snapshot() gave"
            ) from exc


def task_statement(question: Question, *, max_turns: int = MAX_TURNS, top_k: int = TOP_K) -> str:
    return (
        f"Answer this question: {question.question}\n\n"
        f"The answer is in a collection of short passages about people, towns and organisations you do not "
        f"know, so search it: each search returns the {top_k} passages that match your words best. Facts may "
        f"be spread over two passages: find the first, then search for the name it gives you. You have "
        f"{max_turns} searches. Each reply holds one action: a search, or, once you know it, the answer alone "
        "(a name, a place or a year)."
    )


class QAWorld:
    """One question of a corpus, a BM25 index over the corpus's passages, and the two tools.

    `index`: a `PassageIndex` over `corpus.passages` to share between worlds (built when omitted);
    `question`: the question's position or id. `restore` may move the world to another question of
    the same corpus.
    """

    def __init__(
        self,
        corpus: QACorpus,
        question: int | str = 0,
        *,
        index: PassageIndex | None = None,
        top_k: int = TOP_K,
        max_turns: int = MAX_TURNS,
        revert: bool = False,
    ) -> None:
        """`revert`: offer the `revert` tool too (what a revision trajectory's replay needs)."""
        if top_k < 1 or max_turns < 0:
            raise UserError(f"top_k must be at least 1 and max_turns at least 0 (got {top_k} and {max_turns})")
        self.corpus = corpus
        self.index = index if index is not None else PassageIndex(corpus.passages)
        if len(self.index) != len(corpus.passages):
            raise UserError(
                f"the index holds {len(self.index)} passages and {corpus.name} {len(corpus.passages)}; "
                "give an index built over this corpus's passages"
            )
        self.top_k = top_k
        self.max_turns = max_turns
        self.tools: list[ToolSpec] = [*QA_TOOLS, REVERT] if revert else list(QA_TOOLS)
        self.system_prompt = SYSTEM_PROMPT
        """The solver's role line here (the default one is a software engineer's)."""
        self.default_path: str | None = None
        self.question = corpus.question(question)
        self.state = QAState(question=self.question.id)

    @property
    def task(self) -> str:
        """What the agent is asked: the question and how to work on it."""
        return task_statement(self.question, max_turns=self.max_turns, top_k=self.top_k)

    async def reset(self) -> Observation:
        self.state = QAState(question=self.question.id)
        return Observation(text=self.task, data={"question_id": self.question.id, "state": self.state.state_id()})

    async def step(self, action: Action) -> Observation:
        spec = next((tool for tool in self.tools if tool.name == action.tool), None)
        if self.state.answer is not None and (spec is None or spec.name != "revert"):
            return Observation(text=f"the question is already answered ({self.state.answer!r})", is_error=True)
        if spec is None:
            names = ", ".join(tool.name for tool in self.tools)
            return Observation(text=f"unknown tool {action.tool!r}; use one of: {names}", is_error=True)
        try:
            args = spec.args.model_validate(action.args)
        except ValidationError as exc:
            return Observation(text=f"invalid arguments for {spec.name}: {exc.errors()[0]['msg']}", is_error=True)
        if isinstance(args, RevertArgs):
            return self._revert(args.state)
        if isinstance(args, SearchArgs):
            return self._search(args.query)
        if isinstance(args, AnswerArgs):
            return self._answer(args.text)
        return Observation(text=f"{spec.name} is not a tool of a QA world; use search or answer", is_error=True)

    def _search(self, query: str) -> Observation:
        if self.state.turns >= self.max_turns:
            return Observation(
                text=f"no searches left (you had {self.max_turns}): reply with answer and your answer now",
                is_error=True,
            )
        query = " ".join(query.split())
        if not tokenize(query):  # only stop words or punctuation: not a search, and no turn spent
            return Observation(
                text=f'"{query}" has no words to search for; search for names, places or years', is_error=True
            )
        hits = self.index.search(query, self.top_k)
        self.state = self.state.model_copy(update={"seen": (*self.state.seen, tuple(h.id for h in hits))})
        left = self.max_turns - self.state.turns
        return Observation(
            text=_results_text(query, hits, left),
            data={
                "query": query,
                "passages": [hit.model_dump() for hit in hits],
                "turn": self.state.turns,
                "turns_left": left,
            },
        )

    def _revert(self, wanted: str) -> Observation:
        wanted = " ".join(wanted.strip().strip("`'\"").split())
        after = re.fullmatch(r"(?:after )?search (\d+)", wanted, re.IGNORECASE)
        if wanted.lower() == "start":
            turns = 0
        elif after is not None:
            turns = int(after.group(1))
        else:
            try:
                named = QAState.parse(wanted)
            except UserError as exc:
                return Observation(text=str(exc), is_error=True)
            turns = named.turns
            # only a state this one passed through: its searches so far, no answer yet
            if named != QAState(question=self.question.id, seen=self.state.seen[:turns]):
                return Observation(text="that is not an earlier state of this question; revert to start", is_error=True)
        if turns > self.state.turns:
            return Observation(
                text=f"there is no state after search {turns}: only {self.state.turns} "
                f"search{'es were' if self.state.turns != 1 else ' was'} made",
                is_error=True,
            )
        target = QAState(question=self.question.id, seen=self.state.seen[:turns])
        undone = self.state.turns - turns
        parts = [f"{undone} search{'es' if undone != 1 else ''}"] + (["the answer"] * (self.state.answer is not None))
        where = "the start" if not turns else f"the state after search {turns}"
        left = self.max_turns - turns
        self.state = target
        return Observation(
            text=f"reverted to {where}: {' and '.join(parts)} undone; {left} search{'es' if left != 1 else ''} left",
            data={"state": target.state_id()},
        )

    def _answer(self, text: str) -> Observation:
        answer = " ".join(text.split()).strip().strip("`'\"")
        if not answer:
            return Observation(text="the answer is empty; answer with a name, a place or a year", is_error=True)
        self.state = self.state.model_copy(update={"answer": answer})
        return Observation(
            text=f"answered: {answer}",
            # the patch is what the search's final choice reads a finished node's submission from
            terminal="finished",
            patch=answer,
            data={"answer": answer},
        )

    async def patch(self, state: StateId | None = None) -> str:
        """The submission of a state (the current one by default): the answer given, or ""."""
        chosen = self.state if state is None else QAState.parse(state)
        return chosen.answer or ""

    async def snapshot(self) -> StateId:
        return self.state.state_id()

    async def restore(self, state: StateId) -> None:
        restored = QAState.parse(state)
        if restored.question != self.question.id:
            self.question = self.corpus.question(restored.question)
        self.state = restored

    async def reward(self) -> Reward:
        """Exact match of the given answer (1.0 or 0.0), with F1, the answer and the gold in the details."""
        question, answer = self.question, self.state.answer
        details: dict[str, object] = {
            "question_id": question.id,
            "type": question.type,
            "gold": list(question.answers),
            "answer": answer,
            "turns": self.state.turns,
        }
        if answer is None:
            return Reward(value=0.0, details={**details, "em": 0.0, "f1": 0.0}, summary="no answer given")
        em, f1 = exact_match(answer, question.answers), f1_score(answer, question.answers)
        return Reward(
            value=em,
            resolved=em == 1.0,
            details={**details, "em": em, "f1": round(f1, 4)},
            summary=f"exact match {em:g}, F1 {f1:.2f} ({answer!r}; gold {question.answers[0]!r})",
        )

    def judge_reward(self, steps: Sequence[Step]) -> JudgeReward:
        """ReSeek's judge reward of a trajectory's searches against this question's gold answers.

        Each successful search's observation is scored with the verdict the next step's reply gave
        on it; the final answer counts as right when the current state's answer is an exact match
        (restore the trajectory's last state first)."""
        answer = self.state.answer
        correct = answer is not None and exact_match(answer, self.question.answers) == 1.0
        pairs = [(observation, verdict) for _, observation, verdict in search_judgements(steps)]
        return judge_reward(pairs, self.question.answers, correct)

    @property
    def knows_useful(self) -> bool:
        """Always: the gold answers say which passages are useful (`JudgeChecked`)."""
        return True

    def judge_rewards(self, steps: Sequence[Step]) -> dict[int, float]:
        """The judge reward of each verdict in `steps`, by the index of the step that gave it (the
        `JudgeChecked` protocol the search uses)."""
        return rewards_by_step(search_judgements(steps), self.judge_reward(steps))


def _results_text(query: str, hits: Sequence[Hit], left: int) -> str:
    if left == 0:
        after = "That was your last search: reply with answer and your answer now."
    else:
        after = f"{left} search{'es' if left != 1 else ''} left."
    if not hits:
        return f'No passage matches "{query}". Try other words: a name or a place from the question. {after}'
    if left:
        after += (
            " If a passage above answers the question, reply with answer and the answer; if one names the person, "
            "place or organisation the question leads to, search for that name."
        )
    body = "\n\n".join(f"[{hit.id}] {hit.title}\n{hit.text}" for hit in hits)
    return f'Passages for "{query}":\n\n{body}\n\n{after}'


def qa_worlds(
    corpus: QACorpus,
    question: int | str = 0,
    count: int = 1,
    *,
    index: PassageIndex | None = None,
    top_k: int = TOP_K,
    max_turns: int = MAX_TURNS,
) -> list[QAWorld]:
    """`count` worlds on one question sharing one index (for a search's parallel expansions)."""
    shared = index if index is not None else PassageIndex(corpus.passages)
    return [QAWorld(corpus, question, index=shared, top_k=top_k, max_turns=max_turns) for _ in range(max(count, 1))]
