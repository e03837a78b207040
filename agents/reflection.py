"""Reflection (LATS): a short lesson drawn from a failed terminal, reused by later expansions."""

from __future__ import annotations

from trellis.agents.prompts import reflection_messages

from trellis.errors import ModelError
from trellis.models.base import ChatModel
from trellis.tree import Trajectory, Usage


class Reflector:
    def __init__(self, model: ChatModel, *, max_tokens: int = 96, temperature: float = 0.3) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature

    async def __call__(
        self, task: str, trajectory: Trajectory, outcome: str, *, seed: int | None = None
    ) -> tuple[str, Usage]:
        """(lesson, usage); an empty lesson when the model gives nothing usable."""
        try:
            (reply,) = await self.model.complete(
                reflection_messages(task, trajectory, outcome),
                n=1,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                seed=seed,
            )
        except ModelError:
            return "", Usage()
        lesson = " ".join(reply.text.split())[:400]
        return lesson, reply.usage
