"""The verifier: P(Yes) for "is this work correct?", read from the model's token log-probabilities.

A 0.5B model cannot give a calibrated score in free text, but the probability it puts on "Yes"
against "No" as the next token is a usable signal (R2E-Gym's hybrid verifiers, LATS's LM value).
One call costs the prompt and a single output token. Backends that return no log-probabilities
fall back to the first word of the reply (1 for Yes, 0 for No).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from trellis.agents.prompts import verifier_messages

from trellis.errors import ModelError
from trellis.models.base import ChatModel, Completion
from trellis.tree import Trajectory, Usage


def p_yes(completion: Completion) -> float | None:
    """P(Yes) / (P(Yes) + P(No)) at the first generated token; None when neither is in view."""
    if completion.logprobs:
        yes = no = 0.0
        for token, logprob in completion.logprobs[0].items():
            word = token.strip().lower()
            if not math.isfinite(logprob):
                continue
            if word in ("yes", "y"):
                yes += math.exp(min(logprob, 0.0))
            elif word in ("no", "n"):
                no += math.exp(min(logprob, 0.0))
        if yes + no > 0:
            return yes / (yes + no)
    first = (completion.text.strip().split() or [""])[0].strip(".,!:;*\"'").lower()
    if first == "yes":
        return 1.0
    if first == "no":
        return 0.0
    return None


class Verifier:
    """Asks whether the work shown is correct and reads the answer's probability."""

    def __init__(self, model: ChatModel, *, top_logprobs: int = 10) -> None:
        self.model = model
        self.top_logprobs = top_logprobs

    async def __call__(
        self,
        task: str,
        trajectory: Trajectory,
        *,
        signals: Sequence[str] = (),
        changes: str = "",
        seed: int | None = None,
    ) -> tuple[float | None, Usage, str | None]:
        """(P(Yes) or None, usage, error)."""
        try:
            (reply,) = await self.model.complete(
                verifier_messages(task, trajectory, signals, changes),
                n=1,
                temperature=0.0,
                max_tokens=1,
                seed=seed,
                logprobs=self.top_logprobs,
            )
        except ModelError as exc:
            return None, Usage(), f"model error: {exc}"
        probability = p_yes(reply)
        return probability, reply.usage, None if probability is not None else "the verifier said neither Yes nor No"
