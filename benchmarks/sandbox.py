"""Per-command overhead of the bwrap sandbox against a bare subprocess (median of N runs).

Run:  python benchmarks/sandbox.py [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from trellis.envs.sandbox import BwrapSandbox, RunRequest


async def bare(command: str) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    await process.communicate()
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sandbox = BwrapSandbox(folder)
        rows = []
        for command in ("true", "echo hello", "python -c pass"):
            await bare(command)
            await sandbox.run(RunRequest(command=command))
            plain = [await bare(command) for _ in range(args.runs)]
            boxed = [(await sandbox.run(RunRequest(command=command))).duration for _ in range(args.runs)]
            rows.append((command, statistics.median(plain), statistics.median(boxed)))
    print(f"median of {args.runs} runs per command")
    print(f"{'command':<16}{'subprocess ms':>15}{'bwrap ms':>12}{'overhead ms':>14}")
    for command, plain_s, boxed_s in rows:
        print(f"{command:<16}{plain_s * 1000:>15.2f}{boxed_s * 1000:>12.2f}{(boxed_s - plain_s) * 1000:>14.2f}")
    print(f"rerun: python benchmarks/sandbox.py --runs {args.runs}")


if __name__ == "__main__":
    asyncio.run(main())
