"""Embedded model speed: prompt tokens/s, output tokens/s, and the prefix-cache speed-up.

Run:  python benchmarks/models.py [--model embedded:qwen2.5-coder-0.5b] [--repeats 3]

The prefix-cache case asks for a prompt that extends the previous one (a search node's prompt
extends its parent's) and compares it with the same prompt on a cold cache.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from trellis.models import load_model
from trellis.tree import Usage

FILLER = (
    "def add(a, b):\n    return a + b\n\n"
    "class Stack:\n    def __init__(self):\n        self.items = []\n"
    "    def push(self, x):\n        self.items.append(x)\n"
)


def messages(system: str, turns: int) -> list[dict[str, str]]:
    out = [{"role": "system", "content": system}]
    for i in range(turns):
        out.append({"role": "user", "content": f"Step {i}: read this code.\n{FILLER * 3}"})
        out.append({"role": "assistant", "content": f"Read step {i}."})
    out.append({"role": "user", "content": "Summarise in one word."})
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = load_model(args.model)
    warm = await model.complete(messages("warm-up", 0), max_tokens=1, temperature=0)
    del warm

    prompt_rates, output_rates, cold_times, warm_times = [], [], [], []
    cold_usage = warm_usage = Usage()
    for r in range(args.repeats):
        # Prompt speed: a fresh system message breaks the prefix, so the whole prompt is evaluated.
        (cold,) = await model.complete(messages(f"You are reviewer {r}.", 4), max_tokens=1, temperature=0)
        prompt_rates.append((cold.usage.prompt_tokens - cold.usage.cached_tokens) / cold.usage.seconds)
        # Output speed: the same prompt again is cached, so the time is decoding.
        (gen,) = await model.complete(
            messages(f"You are reviewer {r}.", 4), max_tokens=64, temperature=0, stop=["\n\n\n"]
        )
        decode = gen.usage.seconds
        if gen.usage.completion_tokens > 1:
            output_rates.append(gen.usage.completion_tokens / decode)
        # Prefix cache: extend the previous prompt by one turn, versus the same prompt cold.
        base = messages(f"You are tester {r}.", 4)
        await model.complete(base, max_tokens=1, temperature=0)
        extended = [
            *base[:-1],
            {"role": "user", "content": "Summarise in one word."},
            {"role": "assistant", "content": "Code."},
            {"role": "user", "content": "And the class?"},
        ]
        (hit,) = await model.complete(extended, max_tokens=1, temperature=0)
        await model.complete(messages(f"Unrelated {r}.", 1), max_tokens=1, temperature=0)
        (miss,) = await model.complete(extended, max_tokens=1, temperature=0)
        warm_times.append(hit.usage.seconds)
        cold_times.append(miss.usage.seconds)
        cold_usage, warm_usage = miss.usage, hit.usage
    await model.aclose()

    print(f"model: {model.name}   repeats: {args.repeats}   (median of repeats)")
    print(f"prompt tokens/s:  {statistics.median(prompt_rates):8.1f}")
    print(f"output tokens/s:  {statistics.median(output_rates) if output_rates else float('nan'):8.1f}")
    print(
        f"prefix cache:     extended prompt of {warm_usage.prompt_tokens} tokens, "
        f"{warm_usage.cached_tokens} cached: {statistics.median(warm_times):.3f} s "
        f"vs cold ({cold_usage.cached_tokens} cached) {statistics.median(cold_times):.3f} s "
        f"-> speed-up x{statistics.median(cold_times) / statistics.median(warm_times):.1f}"
    )
    print("rerun: python benchmarks/models.py --model", args.model, "--repeats", args.repeats)


if __name__ == "__main__":
    started = time.perf_counter()
    asyncio.run(main())
    print(f"total {time.perf_counter() - started:.1f} s")
