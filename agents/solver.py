"""The solver: proposes the next actions for a node as typed tool calls."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from trellis.agents.prompts import solver_messages

from trellis.errors import FormatError, ModelError
from trellis.models.base import ChatModel, Completion
from trellis.parsing import parse_action
from trellis.tools import ToolSpec, action_json_schema
from trellis.tree import Action, Message, Trajectory, Usage


class SolverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(default=0.8, ge=0, le=2)
    max_tokens: int = Field(default=384, ge=16)
    constrained: bool = True
    """Constrain outputs to the tools' JSON schema where the backend supports it."""
    retries: int = Field(default=1, ge=0)
    """How often a malformed sample is retried with the parse error shown to the model."""
    keep_prompts: bool = False
    """Store each node's full prompt on its step (large; `trellis tree node` can rebuild it)."""


class Proposal(BaseModel):
    """One sampled next step: an action, or the error that kept the text from being one."""

    action: Action | None
    completion: str
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    prompt: list[Message] | None = None


class Solver:
    """Samples `n` next actions for a trajectory; malformed samples are retried, then recorded."""

    def __init__(self, model: ChatModel, config: SolverConfig | None = None) -> None:
        self.model = model
        self.config = config or SolverConfig()

    async def __call__(
        self,
        task: str,
        tools: Sequence[ToolSpec],
        trajectory: Trajectory,
        *,
        n: int,
        seed: int | None = None,
        hints: Sequence[str] = (),
        avoid: Sequence[str] = (),
    ) -> list[Proposal]:
        """`n` proposals; a sample repeating an action in `avoid` (by key) is retried like a malformed one."""
        config = self.config
        messages = solver_messages(task, tools, trajectory, hints)
        schema = action_json_schema(tools) if config.constrained else None
        try:
            completions = await self.model.complete(
                messages,
                n=n,
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                seed=seed,
                json_schema=schema,
            )
        except ModelError as exc:
            return [Proposal(action=None, completion="", error=f"model error: {exc}")]
        proposals = []
        for i, completion in enumerate(completions):
            proposal = await self._parse_or_retry(messages, completion, tools, schema, seed, i, set(avoid))
            if config.keep_prompts:
                proposal.prompt = messages
            proposals.append(proposal)
        return proposals

    async def _parse_or_retry(
        self,
        messages: list[Message],
        completion: Completion,
        tools: Sequence[ToolSpec],
        schema: dict[str, object] | None,
        seed: int | None,
        index: int,
        avoid: set[str],
    ) -> Proposal:
        usage = completion.usage
        text = completion.text
        action: Action | None = None
        for attempt in range(self.config.retries + 1):
            try:
                action = parse_action(text, tools)
                if action.key() not in avoid:
                    return Proposal(action=action, completion=text, usage=usage)
                error = (
                    f"you just ran {action.summary(120)} and its result is above; repeating it changes "
                    "nothing. Choose a different action"
                )
            except FormatError as exc:
                action, error = None, str(exc)
            if attempt == self.config.retries:
                if action is not None:  # still a repeat after the retries: keep it, the critic judges it
                    return Proposal(action=action, completion=text, usage=usage)
                break
            retry = [
                *messages,
                Message(role="assistant", content=text[:1000]),
                Message(role="user", content=f"Your reply could not be used: {error}\nReply again."),
            ]
            retry_schema = schema
            if action is not None and schema is not None and len(tools) > 1:
                # a repeat: constrain the retry to the other tools, so it cannot repeat again
                retry_schema = action_json_schema([t for t in tools if t.name != action.tool])
            try:
                (again,) = await self.model.complete(
                    retry,
                    n=1,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_tokens,
                    seed=None if seed is None else seed + 1000 * (attempt + 1) + index,
                    json_schema=retry_schema,
                )
            except ModelError as exc:
                return Proposal(action=None, completion=text, error=f"{error}; retry failed: {exc}", usage=usage)
            usage = usage + again.usage
            text = again.text
        return Proposal(action=None, completion=text, error=error, usage=usage)
