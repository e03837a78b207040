"""The openai backend against a real OpenAI-compatible server: llama.cpp's, on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from trellis.models.openai_compat import OpenAIModel

pytestmark = pytest.mark.model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(qwen_path: str) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server] (the dev extra)")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            qwen_path,
            "--model_alias",
            "qwen",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--verbose",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not start within 120 s")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_chat_n_samples_and_usage(server: str) -> None:
    model = OpenAIModel(server, "qwen", retries=1)
    messages = [{"role": "user", "content": "Name a fruit. One word."}]
    out = await model.complete(messages, n=2, max_tokens=6, temperature=0.8, seed=3)
    assert len(out) == 2 and all(c.text.strip() for c in out)
    assert out[0].usage.prompt_tokens > 0 and out[0].usage.completion_tokens > 0
    await model.aclose()


async def test_json_schema_through_the_server(server: str) -> None:
    model = OpenAIModel(server, "qwen", retries=1)
    schema = {
        "type": "object",
        "properties": {
            "tool": {"const": "view"},
            "args": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
        "required": ["tool", "args"],
    }
    messages = [{"role": "user", "content": "Call the view tool on a.py as JSON."}]
    (out,) = await model.complete(messages, max_tokens=40, temperature=0, json_schema=schema)
    data = json.loads(out.text)
    assert data["tool"] == "view" and isinstance(data["args"]["path"], str)
    await model.aclose()


async def test_logprobs_or_a_plain_answer(server: str) -> None:
    """A verifier's request: llama.cpp's server gives log-probabilities when started to, else the
    backend asks again without them and the text still answers."""
    from trellis.agents.verifier import p_yes

    model = OpenAIModel(server, "qwen")
    messages = [
        {"role": "system", "content": "Answer with one word: Yes or No."},
        {"role": "user", "content": "Is 2 + 2 equal to 4?"},
    ]
    (out,) = await model.complete(messages, max_tokens=1, temperature=0, logprobs=5)
    assert out.usage.completion_tokens == 1
    assert p_yes(out) is not None
    if out.logprobs is not None:
        assert out.logprobs[0] and all(value <= 0 for value in out.logprobs[0].values())
    await model.aclose()
