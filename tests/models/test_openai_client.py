"""The OpenAI-compatible client against an in-process transport (no sockets)."""

from __future__ import annotations

import json

import httpx
import pytest

from trellis.errors import ModelError, UserError
from trellis.models.openai_compat import OpenAIModel

HELLO = [{"role": "user", "content": "hi"}]


def reply(n: int, text: str = "ok", cached: int = 3) -> dict[str, object]:
    return {
        "choices": [{"message": {"content": f"{text}{i}"}, "finish_reason": "stop"} for i in range(n)],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2 * n, "prompt_tokens_details": {"cached_tokens": cached}},
    }


def model_with(handler: object, **kwargs: object) -> OpenAIModel:
    return OpenAIModel(
        "http://server.test/v1",
        "m",
        transport=httpx.MockTransport(handler),
        backoff=0.001,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_payload_and_usage() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer secret"
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=reply(2))

    model = model_with(handler, api_key="secret")
    out = await model.complete(
        HELLO, n=2, temperature=0.3, max_tokens=7, stop=["\n"], seed=5, json_schema={"type": "object"}
    )
    assert [c.text for c in out] == ["ok0", "ok1"]
    assert out[0].usage.prompt_tokens == 10 and out[0].usage.cached_tokens == 3
    assert out[1].usage.prompt_tokens == 0  # one request's usage is counted once
    payload = seen[0]
    assert payload["n"] == 2 and payload["max_tokens"] == 7 and payload["stop"] == ["\n"] and payload["seed"] == 5
    assert payload["response_format"]["json_schema"]["schema"] == {"type": "object"}  # type: ignore[index]
    await model.aclose()


async def test_tops_up_when_server_ignores_n() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return httpx.Response(200, json=reply(1, text=f"r{len(calls)}-"))

    out = await model_with(handler).complete(HELLO, n=3, seed=10)
    assert [c.text for c in out] == ["r1-0", "r2-0", "r3-0"]
    assert [c["n"] for c in calls] == [3, 2, 1]
    assert [c["seed"] for c in calls] == [10, 11, 12]


async def test_retries_on_429_5xx_and_connection_errors() -> None:
    script = iter(["connect", 429, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        step = next(script)
        if step == "connect":
            raise httpx.ConnectError("refused", request=request)
        if step == 200:
            return httpx.Response(200, json=reply(1))
        return httpx.Response(step, text="busy")

    out = await model_with(handler, retries=3).complete(HELLO)
    assert out[0].text == "ok0"


async def test_gives_up_with_the_last_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="boom")

    with pytest.raises(ModelError, match="failed after 3 attempts; last error: HTTP 500: boom"):
        await model_with(handler, retries=2).complete(HELLO)


async def test_client_errors_are_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, text="bad model")

    with pytest.raises(ModelError, match="HTTP 400: bad model"):
        await model_with(handler).complete(HELLO)
    assert len(calls) == 1


def test_bad_configuration() -> None:
    with pytest.raises(UserError, match="http"):
        OpenAIModel("localhost:8000", "m")
    with pytest.raises(UserError, match="concurrency"):
        OpenAIModel("http://x", "m", concurrency=0)


async def test_falls_back_to_json_object_schema_style() -> None:
    formats = []

    def handler(request: httpx.Request) -> httpx.Response:
        response_format = json.loads(request.content)["response_format"]
        formats.append(response_format["type"])
        if response_format["type"] == "json_schema":
            return httpx.Response(422, text="response_format: unsupported type json_schema")
        assert response_format["schema"] == {"type": "object"}
        return httpx.Response(200, json=reply(1))

    model = model_with(handler, retries=0)
    await model.complete(HELLO, json_schema={"type": "object"})
    await model.complete(HELLO, json_schema={"type": "object"})
    assert formats == ["json_schema", "json_object", "json_object"]
