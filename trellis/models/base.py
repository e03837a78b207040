"""The `ChatModel` seam: one async call that returns n completions with their token usage."""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trellis.errors import UserError
from trellis.tree import Message, Usage

_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:s|ms|sec|seconds)\b")


class Completion(BaseModel):
    """One sampled answer and what it cost."""

    model_config = ConfigDict(extra="forbid")

    text: str
    finish_reason: str = "stop"
    usage: Usage = Field(default_factory=Usage)
    logprobs: list[dict[str, float]] | None = None
    """Where asked for (`logprobs=k`): for each of the first generated tokens, the k most likely
    tokens and their natural-log probabilities."""


class CompletionRequest(BaseModel):
    """Everything that determines a completion; the key of a replay cassette."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: tuple[Message, ...]
    n: int = Field(default=1, ge=1, le=128)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    """Constrain the output to JSON matching this schema, where the backend supports it."""
    logprobs: int | None = Field(default=None, ge=1, le=20)
    """Return the top-k log-probabilities of each generated token (verifiers read P("Yes") this way)."""

    @field_validator("messages")
    @classmethod
    def _not_empty(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        if not value:
            raise ValueError("a completion request needs at least one message")
        return value

    def key(self) -> str:
        """A stable hash of the request (same request, same key, across processes).

        Wall-clock durations in the messages (pytest's "passed in 0.45s") are masked: they differ
        between a run and its replay while the request is the same.
        """
        fields = self.model_dump(mode="json")
        if fields.get("logprobs") is None:  # keys of requests recorded before the field existed stay valid
            fields.pop("logprobs", None)
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(_DURATION.sub("<duration>", canonical).encode()).hexdigest()


def total_usage(completions: Sequence[Completion]) -> Usage:
    total = Usage()
    for completion in completions:
        total = total + completion.usage
    return total


@runtime_checkable
class ChatModel(Protocol):
    """An async chat model. Every backend, real or fake, implements this."""

    name: str

    async def complete(
        self,
        messages: Sequence[Message | dict[str, Any]],
        *,
        n: int = 1,
        temperature: float = 0.7,
        max_tokens: int = 512,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        json_schema: dict[str, Any] | None = None,
        logprobs: int | None = None,
    ) -> list[Completion]: ...

    async def aclose(self) -> None: ...


def make_request(
    messages: Sequence[Message | dict[str, Any]],
    *,
    n: int = 1,
    temperature: float = 0.7,
    max_tokens: int = 512,
    stop: Sequence[str] | None = None,
    seed: int | None = None,
    json_schema: dict[str, Any] | None = None,
    logprobs: int | None = None,
) -> CompletionRequest:
    """Validate the arguments of `complete` into a request; bad arguments are a UserError."""
    try:
        return CompletionRequest(
            messages=tuple(m if isinstance(m, Message) else Message.model_validate(m) for m in messages),
            n=n,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=tuple(stop or ()),
            seed=seed,
            json_schema=json_schema,
            logprobs=logprobs,
        )
    except ValueError as exc:
        raise UserError(f"invalid completion request: {exc}") from exc


class BaseChatModel(ABC):
    """Shared argument handling: subclasses implement `generate(request)`."""

    name: str = "model"

    async def complete(
        self,
        messages: Sequence[Message | dict[str, Any]],
        *,
        n: int = 1,
        temperature: float = 0.7,
        max_tokens: int = 512,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        json_schema: dict[str, Any] | None = None,
        logprobs: int | None = None,
    ) -> list[Completion]:
        request = make_request(
            messages,
            n=n,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
            json_schema=json_schema,
            logprobs=logprobs,
        )
        return await self.generate(request)

    @abstractmethod
    async def generate(self, request: CompletionRequest) -> list[Completion]:
        """Answer a validated request with exactly `request.n` completions."""

    async def aclose(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the backend's resources (a no-op unless the backend holds any)."""

    async def __aenter__(self) -> BaseChatModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
