"""`ScriptedModel`: answers with given texts, for tests. Implements `ChatModel`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from trellis.errors import ModelError
from trellis.models.base import BaseChatModel, Completion, CompletionRequest
from trellis.tree import Usage

Responder = Callable[[CompletionRequest, int], str]


class ScriptedModel(BaseChatModel):
    """Returns scripted responses in order, or whatever a function of the request returns.

    With a list, each completion takes the next response; running out is a ModelError that says how
    many were scripted. Usage counts words as tokens so budgets can be exercised.
    """

    def __init__(self, responses: Iterable[str] | Responder, *, name: str = "scripted") -> None:
        self.name = name
        self._fn: Responder | None = responses if callable(responses) else None
        self._responses: list[str] = [] if callable(responses) else list(responses)
        self._next = 0
        self.requests: list[CompletionRequest] = []
        """Every request seen, in order."""

    @property
    def remaining(self) -> int:
        return len(self._responses) - self._next

    def _one(self, request: CompletionRequest, i: int) -> str:
        if self._fn is not None:
            return self._fn(request, i)
        if self._next >= len(self._responses):
            raise ModelError(
                f"scripted model ran out of responses after {len(self._responses)}; "
                f"last prompt: {request.messages[-1].content[:200]!r}"
            )
        text = self._responses[self._next]
        self._next += 1
        return text

    async def generate(self, request: CompletionRequest) -> list[Completion]:
        self.requests.append(request)
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        out = []
        for i in range(request.n):
            text = self._one(request, i)
            usage = Usage(prompt_tokens=prompt_tokens if i == 0 else 0, completion_tokens=len(text.split()), calls=1)
            # asked for log-probabilities, a script is certain of its first word
            logprobs = [{(text.split() or [""])[0]: 0.0}] if request.logprobs else None
            out.append(Completion(text=text, usage=usage, logprobs=logprobs))
        return out
