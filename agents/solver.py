"""The solver: proposes the next actions for a node as typed tool calls.

Actions come in the markdown format by default (a thought, then code in fenced blocks; see
`trellis.markdown`), or as JSON tool calls constrained to the tools' schema (`action_format="json"`).
The first of a node's samples can be greedy (`greedy_first`): a search then never does worse at its
first step than one plain call of the model, and the other samples explore around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from trellis.agents.prompts import ActionFormat, focused_messages, solver_messages

from trellis.errors import ContextLengthError, FormatError, ModelError
from trellis.markdown import code_reply, parse_markdown_action
from trellis.models.base import ChatModel, Completion
from trellis.parsing import parse_action, parse_judge
from trellis.tools import ToolSpec, action_json_schema
from trellis.tree import Action, Message, Trajectory, Usage
from trellis.world import Opening


class SolverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action_format: ActionFormat = "markdown"
    """`markdown` (code in fenced blocks, what small models write well) or `json` tool calls."""
    temperature: float = Field(default=0.8, ge=0, le=2)
    greedy_first: bool = True
    """Sample a node's first proposal at temperature 0 (only the first expansion of a node)."""
    max_tokens: int = Field(default=512, ge=16)
    constrained: bool = True
    """JSON format only: constrain outputs to the tools' JSON schema where the backend supports it."""
    retries: int = Field(default=1, ge=0)
    """How often a malformed sample is retried with the parse error shown to the model."""
    model_retries: int = Field(default=2, ge=0)
    """How often a failed model call (a transient server error) is tried again before giving up."""
    judge: bool = False
    """ReSeek's JUDGE: each reply after an observation starts with a verdict on it, and an observation
    judged useless is left out of that branch's later prompts (it stays in the tree)."""
    keep_prompts: bool = False
    """Store each node's full prompt on its step (large; `trellis tree node` can rebuild it)."""


class Proposal(BaseModel):
    """One sampled next step: an action, or the error that kept the text from being one."""

    action: Action | None
    completion: str
    error: str | None = None
    judge: bool | None = None
    """The reply's verdict on the observation it answers (with `SolverConfig.judge`), None without one."""
    judged_by_agent: bool = False
    """The verdict came from a judge agent of its own, not from the reply."""
    usage: Usage = Field(default_factory=Usage)
    prompt: list[Message] | None = None
    retry_turns: list[Message] = Field(default_factory=list)
    """When the kept text came from a retry: the turns added to the prompt for it (the rejected reply
    and the error), so the prompt it answered can be shown exactly."""


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
        default_path: str | None = None,
        greedy: bool | None = None,
        system: str | None = None,
    ) -> list[Proposal]:
        """`n` proposals; a sample repeating an action in `avoid` (by key) is retried like a malformed one.

        `greedy` (default: the config's `greedy_first`) makes the first sample a temperature-0 one;
        `system` replaces the software engineer's role line (a world that is not a repository).
        A model call that fails after `model_retries` tries raises `ModelError`: the caller decides
        (the search leaves the node open instead of storing a failed child).
        """
        config = self.config
        messages = solver_messages(
            task,
            tools,
            trajectory,
            hints,
            action_format=config.action_format,
            default_path=default_path,
            judge=config.judge,
            system=system,
        )
        schema = None
        if config.constrained and config.action_format == "json":
            schema = action_json_schema(tools, judge=config.judge and len(trajectory) > 1)
        completions = await self._sample(messages, n=n, seed=seed, greedy=greedy, schema=schema)
        proposals = []
        for i, completion in enumerate(completions):
            proposal = await self._parse_or_retry(
                messages, completion, tools, schema, seed, i, set(avoid), default_path
            )
            if config.judge and len(trajectory) > 1:  # there is an observation to judge
                # a verdict given in a reply that had no usable action still counts after the retry
                said = [parse_judge(text)[0] for text in (completion.text, proposal.completion)]
                proposal.judge = next((verdict for verdict in said if verdict is not None), None)
            if config.keep_prompts:
                proposal.prompt = messages
            proposals.append(proposal)
        return proposals

    async def open(
        self,
        opening: Opening,
        tools: Sequence[ToolSpec],
        *,
        n: int,
        seed: int | None = None,
        greedy: bool | None = None,
        turns: Sequence[tuple[str, str]] = (),
    ) -> list[Proposal]:
        """`n` steps from the focused `opening` prompt: each reply's code becomes a write of
        `opening.path` (a reply without code is recorded with its error, like a malformed action).

        `turns` continue the conversation for a focused repair: each earlier focused reply with what
        running it showed (`focused_messages`); without them this is the search's first step.
        """
        config = self.config
        messages = focused_messages(opening.prompt, turns)
        completions = await self._sample(messages, n=n, seed=seed, greedy=greedy, schema=None)
        proposals = []
        for completion in completions:
            try:
                action: Action | None = code_reply(completion.text, opening.path, tools)
                error = None
            except FormatError as exc:
                action, error = None, str(exc)
            proposal = Proposal(action=action, completion=completion.text, error=error, usage=completion.usage)
            if config.keep_prompts:
                proposal.prompt = messages
            proposals.append(proposal)
        return proposals

    async def _sample(
        self,
        messages: list[Message],
        *,
        n: int,
        seed: int | None,
        greedy: bool | None,
        schema: dict[str, object] | None,
    ) -> list[Completion]:
        """`n` completions: the first at temperature 0 when `greedy` (default: the config's
        `greedy_first`), the rest at the configured temperature."""
        config = self.config
        greedy = config.greedy_first if greedy is None else greedy
        completions: list[Completion] = []
        if greedy and config.temperature > 0:
            completions += await self._complete(messages, n=1, temperature=0.0, seed=seed, schema=schema)
        if len(completions) < n:
            completions += await self._complete(
                messages,
                n=n - len(completions),
                temperature=config.temperature,
                seed=None if seed is None else seed + len(completions),
                schema=schema,
            )
        return completions

    async def _complete(
        self,
        messages: list[Message],
        *,
        n: int,
        temperature: float,
        seed: int | None,
        schema: dict[str, object] | None,
    ) -> list[Completion]:
        def call(attempt: int) -> Any:
            return self.model.complete(
                messages,
                n=n,
                temperature=temperature,
                max_tokens=self.config.max_tokens,
                seed=None if seed is None else seed + 7919 * attempt,
                json_schema=schema,
            )

        for attempt in range(self.config.model_retries):
            try:
                return await call(attempt)
            except ContextLengthError:
                raise  # the same prompt will not fit next time either
            except ModelError:
                continue  # transient: try again; the last attempt below lets the error through
        return await call(self.config.model_retries)

    def parse(self, text: str, tools: Sequence[ToolSpec], default_path: str | None = None) -> Action:
        """One action from a reply in the configured format (FormatError when there is none); a judge
        tag in the reply is no part of the action."""
        if self.config.judge:
            text = parse_judge(text)[1]
        if self.config.action_format == "markdown":
            return parse_markdown_action(text, tools, default_path=default_path)
        return parse_action(text, tools)

    async def _parse_or_retry(
        self,
        messages: list[Message],
        completion: Completion,
        tools: Sequence[ToolSpec],
        schema: dict[str, object] | None,
        seed: int | None,
        index: int,
        avoid: set[str],
        default_path: str | None = None,
    ) -> Proposal:
        usage = completion.usage
        text = completion.text
        action: Action | None = None
        turns: list[Message] = []
        """The retry turns the kept `text` answered (none for the first sample)."""
        for attempt in range(self.config.retries + 1):
            try:
                action = self.parse(text, tools, default_path)
                if action.key() not in avoid:
                    return Proposal(action=action, completion=text, usage=usage, retry_turns=turns)
                error = (
                    f"you just did this ({action.describe(120)}) and its result is above; repeating it changes "
                    "nothing. Choose a different action"
                )
            except FormatError as exc:
                action, error = None, str(exc)
            if attempt == self.config.retries:
                if action is not None:  # still a repeat after the retries: keep it, the critic judges it
                    return Proposal(action=action, completion=text, usage=usage, retry_turns=turns)
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
            try:  # a transient failure of the retry is retried like any call (`model_retries`)
                (again,) = await self._complete(
                    retry,
                    n=1,
                    temperature=self.config.temperature,
                    seed=None if seed is None else seed + 1000 * (attempt + 1) + index,
                    schema=retry_schema,
                )
            except ModelError as exc:
                failure = f"{error}; retry failed: {exc}"
                return Proposal(action=None, completion=text, error=failure, usage=usage, retry_turns=turns)
            usage = usage + again.usage
            text = again.text
            turns = retry[len(messages) :]
        return Proposal(action=None, completion=text, error=error, usage=usage, retry_turns=turns)
