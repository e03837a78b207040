"""The critic (value agent): a value in [0, 1] with an explanation and feedback.

The value rests on execution first: hard signals from the world (the share of visible tests that
pass, a failed action). The model's judgement adds to it in one of two modes:

- `verifier` (default, for small models): P(Yes) for "are these changes correct?", read from the
  token log-probabilities of one output token (`trellis.agents.verifier`);
- `score` (for big models): a free-text JSON verdict, a score from -100 to 100 with an explanation
  and feedback for other branches.

value = w * hard + (1 - w) * LM where there is a hard signal, else LM; optionally mixed with a
self-consistency term (LATS): (1 - s) * value + s * SC, SC being the share of samples that proposed
the action. Steps that change nothing and establish nothing, and failed actions, are valued without
a model call. Feedback is real content or nothing: in verifier mode it names what failed; in score
mode, placeholder text a small model copies from the instructions is dropped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from trellis.agents.prompts import CRITIC_SCHEMA, critic_messages
from trellis.agents.verifier import Verifier

from trellis.errors import FormatError, ModelError
from trellis.models.base import ChatModel
from trellis.parsing import finite_number, json_objects
from trellis.tree import Message, Trajectory, Usage


class CriticConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["verifier", "score", "none"] = "verifier"
    """`verifier`: P(Yes) from log-probabilities (small models); `score`: a JSON verdict (big models);
    `none`: execution signals only, `neutral_value` where there are none (no model call at all)."""
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int = Field(default=200, ge=16)
    constrained: bool = True
    sc_weight: float = Field(default=0.2, ge=0, le=1)
    """1 - lambda: the weight of self-consistency (0 turns it off)."""
    hard_weight: float = Field(default=0.6, ge=0, le=1)
    """Weight of the world's hard signal (share of tests passing) when the step produced one."""
    retries: int = Field(default=1, ge=0)
    failed_value: float = Field(default=0.1, ge=0, le=1)
    """The value of a step whose action failed (no model call)."""
    neutral_value: float = Field(default=0.5, ge=0, le=1)
    """The value of a step that changed nothing and established nothing (no model call)."""
    verify_checked: bool = False
    """Verifier mode: also ask the verifier where tests ran (by default the tests' result is the value's
    evidence there, and the verifier is asked only about changes nothing checked)."""


class Evaluation(BaseModel):
    value: float = Field(ge=0, le=1)
    lm_score: int | None = None
    explanation: str = ""
    feedback: str = ""
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None


def parse_verdict(text: str) -> tuple[int, str, str]:
    """(score, explanation, feedback) from the critic's reply; FormatError when there is none."""
    for value in json_objects(text):
        score = finite_number(value.get("score"), low=-100, high=100)
        if score is not None:
            return int(score), str(value.get("explanation", "")), str(value.get("feedback", ""))
    raise FormatError('no score found; reply with {"explanation": "...", "score": <-100..100>, "feedback": "..."}')


_PLACEHOLDERS = (
    "advice for the next attempt",
    "one concrete thing a next attempt should do differently",
    "or an empty string",
    "...",
    "none",
    "n/a",
)


def real_feedback(text: str) -> str:
    """The feedback, or "" when it is empty or instruction text copied back."""
    cleaned = " ".join(str(text).split()).strip()
    lowered = cleaned.lower().strip(" .<>\"'")
    if len(lowered) < 8 or any(lowered == p or (len(p) > 12 and lowered.startswith(p)) for p in _PLACEHOLDERS):
        return ""
    return cleaned[:400]


class Critic:
    def __init__(self, model: ChatModel, config: CriticConfig | None = None) -> None:
        self.model = model
        self.config = config or CriticConfig()
        self.verifier = Verifier(model)

    async def __call__(
        self,
        task: str,
        trajectory: Trajectory,
        *,
        signals: list[str],
        hard: float | None = None,
        consistency: float | None = None,
        seed: int | None = None,
        changes: str = "",
        failed: bool = False,
        failure: str = "",
    ) -> Evaluation:
        """Value the node at the end of `trajectory`.

        `changes` is the node's patch against the task's start ("" when nothing changed), `failed`
        says the step's action failed, `failure` describes what failed (it becomes the feedback).
        """
        config = self.config
        if failed and hard in (None, 0.0):
            return self._mix(
                Evaluation(value=config.failed_value, explanation="the action failed"),
                None,
                consistency,
                feedback=failure,
            )
        if config.mode == "none":
            return self._mix(
                Evaluation(value=config.neutral_value, explanation="execution signals only"),
                hard,
                consistency,
                feedback=failure,
            )
        if config.mode == "verifier":
            if not changes.strip() and hard is None:
                return self._mix(
                    Evaluation(value=config.neutral_value, explanation="nothing changed yet"), None, consistency
                )
            if hard is not None and not config.verify_checked:
                # tests ran: they are the evidence; a small model's P(Yes) adds little at a price
                return self._mix(
                    Evaluation(value=config.neutral_value, explanation="valued by the checks that ran"),
                    hard,
                    consistency,
                    feedback=failure,
                )
            probability, usage, error = await self.verifier(
                task, trajectory, signals=signals, changes=changes, seed=seed
            )
            lm = 0.5 if probability is None else probability
            explanation = "verifier: " + ("no answer" if probability is None else f"P(correct) = {probability:.2f}")
            evaluation = Evaluation(value=lm, explanation=explanation, usage=usage, error=error)
            return self._mix(evaluation, hard, consistency, feedback=failure)
        return await self._score(task, trajectory, signals, hard, consistency, seed, failure)

    def _mix(
        self, evaluation: Evaluation, hard: float | None, consistency: float | None, feedback: str = ""
    ) -> Evaluation:
        config = self.config
        value = evaluation.value
        if hard is not None:
            value = config.hard_weight * hard + (1 - config.hard_weight) * value
        if consistency is not None and config.sc_weight:
            value = (1 - config.sc_weight) * value + config.sc_weight * consistency
        return evaluation.model_copy(
            update={"value": min(max(value, 0.0), 1.0), "feedback": evaluation.feedback or real_feedback(feedback)}
        )

    async def _score(
        self,
        task: str,
        trajectory: Trajectory,
        signals: list[str],
        hard: float | None,
        consistency: float | None,
        seed: int | None,
        failure: str,
    ) -> Evaluation:
        config = self.config
        messages = critic_messages(task, trajectory, signals)
        usage = Usage()
        verdict: tuple[int, str, str] | None = None
        error: str | None = None
        for attempt in range(config.retries + 1):
            try:
                (reply,) = await self.model.complete(
                    messages,
                    n=1,
                    temperature=config.temperature,
                    max_tokens=config.max_tokens,
                    seed=None if seed is None else seed + attempt,
                    json_schema=CRITIC_SCHEMA if config.constrained else None,
                )
            except ModelError as exc:
                error = f"model error: {exc}"
                break
            usage = usage + reply.usage
            try:
                verdict = parse_verdict(reply.text)
                error = None
                break
            except FormatError as exc:
                error = str(exc)
                messages = [
                    *messages,
                    Message(role="assistant", content=reply.text[:500]),
                    Message(role="user", content=str(exc)),
                ]
        # Without a verdict the LM term is neutral; the hard signals still count.
        evaluation = Evaluation(
            value=0.5 if verdict is None else (verdict[0] + 100) / 200,
            lm_score=verdict[0] if verdict else None,
            explanation=verdict[1] if verdict else "",
            feedback=real_feedback(verdict[2]) if verdict else "",
            usage=usage,
            error=error,
        )
        return self._mix(evaluation, hard, consistency, feedback=failure)
