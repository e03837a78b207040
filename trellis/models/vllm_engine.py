"""The `vllm` backend: vLLM's engine in this process, with prefix caching on.

Needs the `gpu` extra (`pip install 'trellis[gpu]'`). For a separate server, `vllm_serve_command`
builds the `vllm serve` command line and the `openai` backend talks to it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shlex
import threading
import time
from typing import Any

from trellis.errors import UserError
from trellis.models.base import BaseChatModel, Completion, CompletionRequest
from trellis.tree import Usage


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def vllm_serve_command(
    model: str,
    *,
    port: int = 8000,
    tool_parser: str = "hermes",
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
) -> list[str]:
    """A `vllm serve` command with prefix caching and tool-call parsing for `model`."""
    command = [
        "vllm",
        "serve",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enable-prefix-caching",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        tool_parser,
        "--gpu-memory-utilization",
        str(gpu_memory_utilization),
    ]
    if max_model_len:
        command += ["--max-model-len", str(max_model_len)]
    return command


def format_command(command: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in command)


class VLLMModel(BaseChatModel):
    """vLLM's offline `LLM` engine, driven from a worker thread."""

    def __init__(self, model: str, *, max_model_len: int | None = None, seed: int = 0, **engine_args: Any):
        if not vllm_available():
            raise UserError(
                "the vllm backend needs vLLM and a GPU: pip install 'trellis[gpu]'; or run a server "
                f"({format_command(vllm_serve_command(model))}) and use --model openai:http://127.0.0.1:8000/v1#{model}"
            )
        self.model = model
        self.name = f"vllm:{model}"
        self._engine_args = {"enable_prefix_caching": True, "seed": seed, **engine_args}
        if max_model_len:
            self._engine_args["max_model_len"] = max_model_len
        self._llm: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            from vllm import LLM

            self._llm = LLM(model=self.model, **self._engine_args)
        return self._llm

    def _sampling_params(self, request: CompletionRequest) -> Any:
        from vllm import SamplingParams

        kwargs: dict[str, Any] = {
            "n": request.n,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stop": list(request.stop) or None,
            "seed": request.seed,
        }
        if request.logprobs is not None:
            kwargs["logprobs"] = request.logprobs
        if request.json_schema is not None:
            try:
                from vllm.sampling_params import StructuredOutputsParams

                kwargs["structured_outputs"] = StructuredOutputsParams(json=request.json_schema)
            except ImportError:
                from vllm.sampling_params import GuidedDecodingParams

                kwargs["guided_decoding"] = GuidedDecodingParams(json=request.json_schema)
        return SamplingParams(**kwargs)

    def _generate_sync(self, request: CompletionRequest) -> list[Completion]:
        with self._lock:
            llm = self._load()
            messages = [m.model_dump(exclude_none=True) for m in request.messages]
            started = time.perf_counter()
            (result,) = llm.chat([messages], self._sampling_params(request), use_tqdm=False)
            seconds = time.perf_counter() - started
        prompt_tokens = len(result.prompt_token_ids or [])
        cached = int(getattr(result, "num_cached_tokens", 0) or 0)
        out = []
        for i, sample in enumerate(result.outputs):
            usage = Usage(
                prompt_tokens=prompt_tokens if i == 0 else 0,
                cached_tokens=cached if i == 0 else 0,
                completion_tokens=len(sample.token_ids),
                seconds=seconds if i == 0 else 0.0,
                calls=1 if i == 0 else 0,
            )
            logprobs = None
            if request.logprobs is not None and sample.logprobs:
                logprobs = [
                    {str(entry.decoded_token): float(entry.logprob) for entry in position.values()}
                    for position in sample.logprobs
                ]
            out.append(
                Completion(
                    text=sample.text, finish_reason=sample.finish_reason or "stop", usage=usage, logprobs=logprobs
                )
            )
        return out

    async def generate(self, request: CompletionRequest) -> list[Completion]:
        return await asyncio.to_thread(self._generate_sync, request)
