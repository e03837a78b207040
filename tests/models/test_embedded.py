"""The embedded backend on the real default model (short outputs)."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from trellis.errors import ModelError, UserError
from trellis.models.embedded import EmbeddedModel
from trellis.parsing import parse_action
from trellis.tools import ToolSpec, action_format_help, action_json_schema

pytestmark = pytest.mark.model

SYSTEM = {"role": "system", "content": "You are a terse assistant. Answer in a few words."}


async def test_reply_usage_and_prefix_cache(qwen: EmbeddedModel) -> None:
    first_messages = [SYSTEM, {"role": "user", "content": "Name one primary colour."}]
    (first,) = await qwen.complete(first_messages, max_tokens=8, temperature=0, seed=1)
    assert first.text.strip()
    assert first.usage.prompt_tokens > 10 and 0 < first.usage.completion_tokens <= 8
    assert first.usage.seconds > 0
    longer = [*first_messages, {"role": "assistant", "content": first.text}, {"role": "user", "content": "Another?"}]
    (second,) = await qwen.complete(longer, max_tokens=8, temperature=0, seed=1)
    # the second prompt extends the first, so its shared prefix comes from the KV cache
    assert second.usage.cached_tokens >= first.usage.prompt_tokens - 1
    assert second.usage.cached_tokens < second.usage.prompt_tokens


async def test_seeded_sampling_is_reproducible(qwen: EmbeddedModel) -> None:
    messages = [SYSTEM, {"role": "user", "content": "Invent a name for a cat."}]
    a = await qwen.complete(messages, n=2, max_tokens=6, temperature=1.0, seed=42)
    b = await qwen.complete(messages, n=2, max_tokens=6, temperature=1.0, seed=42)
    assert [c.text for c in a] == [c.text for c in b]
    # the prompt is charged once per request, as OpenAI-compatible servers charge it for n > 1
    assert a[0].usage.prompt_tokens > 10 and a[1].usage.prompt_tokens == 0 and a[1].usage.cached_tokens == 0
    assert a[1].usage.completion_tokens > 0


async def test_first_token_logprobs_give_a_verifier_probability(qwen: EmbeddedModel) -> None:
    from trellis.agents.verifier import p_yes

    def ask(question: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": "Answer with one word: Yes or No."},
            {"role": "user", "content": question},
        ]

    (true,) = await qwen.complete(ask("Is 2 + 2 equal to 4?"), max_tokens=1, temperature=0, logprobs=10)
    (false,) = await qwen.complete(ask("Is 2 + 2 equal to 5?"), max_tokens=1, temperature=0, logprobs=10)
    assert true.logprobs and len(true.logprobs[0]) == 10
    assert all(value <= 0 for value in true.logprobs[0].values())
    yes, no = p_yes(true), p_yes(false)
    # a 0.5B model is a weak judge, but it leans the right way
    assert yes is not None and no is not None and yes > no


async def test_json_schema_forces_the_tool_shape(qwen: EmbeddedModel) -> None:
    class ViewArgs(BaseModel):
        path: str
        start: int

    tools = [ToolSpec(name="view_file", description="Show lines of a file", args=ViewArgs)]
    messages = [
        {"role": "system", "content": action_format_help(tools)},
        {"role": "user", "content": "Open src/app.py from line 10."},
    ]
    (out,) = await qwen.complete(messages, max_tokens=80, temperature=0, json_schema=action_json_schema(tools))
    data = json.loads(out.text)
    assert data["tool"] == "view_file" and isinstance(data["args"], dict)
    action = parse_action(out.text, tools)
    assert isinstance(action.args["path"], str) and isinstance(action.args["start"], int)


async def test_concurrent_callers_are_serialised(qwen: EmbeddedModel) -> None:
    prompts = [[SYSTEM, {"role": "user", "content": f"Say the number {i}."}] for i in range(3)]
    results = await asyncio.gather(*(qwen.complete(p, max_tokens=5, temperature=0) for p in prompts))
    alone = [await qwen.complete(p, max_tokens=5, temperature=0) for p in prompts]
    assert [r[0].text for r in results] == [r[0].text for r in alone]


async def test_prompt_longer_than_context_is_a_model_error(smollm_path: str) -> None:
    model = EmbeddedModel(path=smollm_path, n_ctx=256)
    with pytest.raises(ModelError, match="exceeds the context window of 256"):
        await model.complete([{"role": "user", "content": "word " * 400}], max_tokens=4)
    (reply,) = await model.complete([{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0)
    assert reply.usage.completion_tokens > 0
    await model.aclose()


def test_missing_gguf_path() -> None:
    with pytest.raises(UserError, match="does not exist"):
        EmbeddedModel(path="/nowhere/model.gguf")
