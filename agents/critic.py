"""The critic (value agent): a score with an explanation and feedback, mapped to [0, 1].

The LM score (-100..100) is combined with hard signals from the world when there are any (tests
that ran, a patch that was submitted) and, optionally, a self-consistency term (LATS):
value = lambda * LM + (1 - lambda) * SC, SC being the share of samples that proposed the action.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from trellis.agents.prompts import CRITIC_SCHEMA, critic_messages

from trellis.errors import FormatError, ModelError
from trellis.models.base import ChatModel
from trellis.parsing import json_objects
from trellis.tree import Message, Trajectory, Usage


class CriticConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int = Field(default=200, ge=16)
    constrained: bool = True
    sc_weight: float = Field(default=0.2, ge=0, le=1)
    """1 - lambda: the weight of self-consistency (0 turns it off)."""
    hard_weight: float = Field(default=0.5, ge=0, le=1)
    """Weight of the world's hard signal (share of tests passing) when the step produced one."""
    retries: int = Field(default=1, ge=0)


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
        if "score" in value:
            try:
                score = max(-100, min(100, int(float(value["score"]))))
            except (TypeError, ValueError):
                continue
            return score, str(value.get("explanation", "")), str(value.get("feedback", ""))
    raise FormatError('no score found; reply with {"explanation": "...", "score": <-100..100>, "feedback": "..."}')


class Critic:
    def __init__(self, model: ChatModel, config: CriticConfig | None = None) -> None:
        self.model = model
        self.config = config or CriticConfig()

    async def __call__(
        self,
        task: str,
        trajectory: Trajectory,
        *,
        signals: list[str],
        hard: float | None = None,
        consistency: float | None = None,
        seed: int | None = None,
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
        lm = 0.5 if verdict is None else (verdict[0] + 100) / 200
        value = lm
        if hard is not None:
            value = config.hard_weight * hard + (1 - config.hard_weight) * value
        if consistency is not None and config.sc_weight:
            value = (1 - config.sc_weight) * value + config.sc_weight * consistency
        return Evaluation(
            value=min(max(value, 0.0), 1.0),
            lm_score=verdict[0] if verdict else None,
            explanation=verdict[1] if verdict else "",
            feedback=verdict[2] if verdict else "",
            usage=usage,
            error=error,
        )
