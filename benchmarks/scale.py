"""How a batch scales: SWE instances solved per hour with one and with two workers, per executor.

The batch is `trellis swe batch` over copies of the shipped `example__tinycalc-1` (same repository,
own instance ids, so each is its own run), with environments prepared beforehand (`trellis swe
prepare`: building a venv is a one-time cost per instance and machine, not what scales). Models:

- `scripted`: a scripted agent that answers after `--delay` seconds per call, as a model server
  does; the work per instance is then mostly waiting on the model, as on a cluster with its own
  inference servers, and throughput should grow with the workers.
- `embedded` (or any model spec): the real thing. On a machine with few cores, two workers share
  them with the model itself, so expect far less than twice the throughput.

Run:  python benchmarks/scale.py [--instances 8] [--workers 1,2] [--executors local,ray]
                                 [--model scripted] [--delay 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trellis.models import CompletionRequest, ScriptedModel

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples" / "swe"
SOURCE = "example__tinycalc-1"
FIX = '```python\ndef add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n```'


def scripted() -> ScriptedModel:
    """The scripted agent (`--model python:scale:scripted`): fixes `add` in the focused opening, then
    finishes; the verifier says Yes to the fix. Each call waits $TRELLIS_SCALE_DELAY seconds."""
    delay = float(os.environ.get("TRELLIS_SCALE_DELAY", "0.5"))

    def respond(request: CompletionRequest, i: int) -> str:
        first = request.messages[0].content
        if first.startswith("Issue:"):
            return f"Fixed.\n\n{FIX}"
        if first.startswith("You are a careful software engineer"):
            return "Done.\n\nfinish"
        if first.startswith("You check"):
            return "Yes" if "a + b" in request.messages[-1].content else "No"
        if first.startswith("You review"):
            return json.dumps({"explanation": "scripted", "score": 80, "feedback": ""})
        return 'Candidate 0. {"choice": 0, "reason": "scripted"}'

    model = ScriptedModel(respond, name="scripted-scale")
    inner = model.generate

    async def slow(request: CompletionRequest):  # type: ignore[no-untyped-def]
        await asyncio.sleep(delay)  # a model server's latency, not this machine's work
        return await inner(request)

    model.generate = slow  # type: ignore[method-assign]
    return model


def copies(folder: Path, count: int) -> tuple[Path, Path]:
    """An instances file of `count` copies of the tinycalc example, and their locks."""
    record = next(
        json.loads(line) for line in (EXAMPLES / "instances.jsonl").read_text().splitlines() if SOURCE in line
    )
    locks = folder / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lines = []
    for n in range(count):
        instance_id = f"{SOURCE}-copy{n}"
        lines.append(json.dumps({**record, "instance_id": instance_id}))
        shutil.copy(EXAMPLES / "locks" / f"{SOURCE}.txt", locks / f"{instance_id}.txt")
    instances = folder / "instances.jsonl"
    instances.write_text("\n".join(lines) + "\n")
    return instances, locks


def trellis(args: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "trellis.cli", *args], env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--executors", default="local,ray")
    parser.add_argument("--model", default="scripted", help="scripted, or a model spec (embedded, openai:...)")
    parser.add_argument("--delay", type=float, default=0.5, help="scripted: seconds per model call")
    parser.add_argument("--max-nodes", type=int, default=6)
    args = parser.parse_args()
    model = "python:scale:scripted" if args.model == "scripted" else args.model
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        instances, locks = copies(root, args.instances)
        env = {
            **os.environ,
            "TRELLIS_CACHE_DIR": str(root / "cache"),
            "TRELLIS_SCALE_DELAY": str(args.delay),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        }
        sources = ["-i", str(instances), "--repos", str(EXAMPLES), "--locks", str(locks), "--offline"]
        code, output, seconds = trellis(["swe", "prepare", *[f"{SOURCE}-copy{n}" for n in range(args.instances)],
                                         *sources], env)  # fmt: skip
        if code != 0:
            raise SystemExit(f"preparing the environments failed:\n{output[-2000:]}")
        print(f"prepared {args.instances} environments in {seconds:.0f} s (not counted below)")
        print(f"{'executor':<10}{'workers':>8}{'resolved':>10}{'wall s':>9}{'instances/hour':>16}{'speed-up':>10}")
        for executor in args.executors.split(","):
            first: float | None = None
            for workers in [int(w) for w in args.workers.split(",")]:
                runs = root / f"runs-{executor}-{workers}"
                batch = ["swe", "batch", *sources, "--runs", str(runs), "--workers", str(workers)]
                batch += ["--executor", executor, "--model", model, "--max-nodes", str(args.max_nodes), "--seed", "0"]
                code, output, seconds = trellis(batch, env)
                resolved = sum(
                    bool(json.loads((runs / i / "report.json").read_text()).get("resolved"))
                    for i in (f"{SOURCE}-copy{n}" for n in range(args.instances))
                    if (runs / i / "report.json").exists()
                )
                if code != 0 and resolved == 0:
                    print(f"{executor:<10}{workers:>8}  failed: {output.strip().splitlines()[-1][:120]}")
                    continue
                rate = args.instances / seconds * 3600
                first = first or rate
                print(
                    f"{executor:<10}{workers:>8}{f'{resolved}/{args.instances}':>10}{seconds:>9.1f}"
                    f"{rate:>16.0f}{rate / first:>9.2f}x",
                    flush=True,
                )
    print(
        f"rerun: python benchmarks/scale.py --instances {args.instances} --workers {args.workers} "
        f"--executors {args.executors} --model {args.model} --delay {args.delay}"
    )


if __name__ == "__main__":
    main()
