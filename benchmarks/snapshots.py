"""Snapshot + restore of a code world's state on a generated 2,000-file repository.

Compares trellis's git-tree states (`snapshot()` = stage into a private index + write-tree,
`restore()` = read-tree of the target, touching only changed files) with a plain git baseline
(`git stash` to save the edit, `git stash apply` + `git checkout` to move between the two states).

With --image IMAGE (any image with sh and git; DOCKER_HOST names the engine), the same repository
is also measured in a container, as a code world there keeps its states: git inside the container,
as root, each call one `exec` (`ContainerWorkspace`).

Run:  python benchmarks/snapshots.py [--files 2000] [--repeats 20] [--image IMAGE]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from trellis.envs.code.workspace import GitWorkspace, init_repository


def make_repo(root: Path, files: int) -> None:
    rng = random.Random(0)
    content = {}
    for i in range(files):
        lines = [f"def f{i}_{j}(x):\n    return x * {rng.randint(1, 99)}\n" for j in range(20)]
        content[f"pkg{i % 40}/module_{i}.py"] = "".join(lines)
    init_repository(root, content)


def edit(root: Path, count: int, tag: str, files: int) -> None:
    for i in range(count):
        n = i * 37 % files
        path = root / f"pkg{n % 40}/module_{n}.py"
        path.write_text(path.read_text() + f"# edit {tag}\n")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


async def measure(root: Path, edited: int, repeats: int, files: int) -> tuple[float, float, float, float]:
    """The workspace's own async calls, as the search makes them (each runs git in a thread)."""
    workspace = GitWorkspace(root)
    base = await workspace.snapshot()
    snap, rest = [], []
    for r in range(repeats):
        edit(root, edited, f"t{r}", files)
        started = time.perf_counter()
        state = await workspace.snapshot()
        snap.append(time.perf_counter() - started)
        started = time.perf_counter()
        await workspace.restore(base)
        await workspace.restore(state)
        rest.append((time.perf_counter() - started) / 2)
        await workspace.restore(base)
    stash_save, stash_restore = [], []
    for r in range(repeats):
        edit(root, edited, f"s{r}", files)
        started = time.perf_counter()
        git(root, "stash", "push", "-q")  # save the edit and go back to the base
        stash_save.append(time.perf_counter() - started)
        started = time.perf_counter()
        git(root, "stash", "apply", "-q")  # to the edited state
        git(root, "checkout", "-q", "--", ".")  # and back to the base
        stash_restore.append((time.perf_counter() - started) / 2)
        git(root, "stash", "drop", "-q")
    ms = 1000
    return (
        statistics.median(snap) * ms,
        statistics.median(rest) * ms,
        statistics.median(stash_save) * ms,
        statistics.median(stash_restore) * ms,
    )


async def measure_container(image: str, root: Path, edited: int, repeats: int, files: int) -> tuple[float, float]:
    """Snapshot and restore in a container of `image` holding the same files (as an agent's world would)."""
    import io
    import tarfile

    from trellis.envs.code.container import ContainerWorkspace
    from trellis.envs.sandbox.base import RunRequest
    from trellis.envs.sandbox.docker import AGENT_USER, DockerSandbox

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*.py")):
            tar.add(path, arcname=str(path.relative_to(root)))
    async with DockerSandbox(image, workdir="/testbed", user=AGENT_USER) as box:
        await box.admin(RunRequest(command="mkdir -p /testbed", cwd="/"))
        await box.upload("/testbed", buffer.getvalue())
        workspace = await ContainerWorkspace(box).opened()
        base = await workspace.snapshot()
        names = [f"pkg{(i * 37 % files) % 40}/module_{i * 37 % files}.py" for i in range(edited)]
        snap, rest = [], []
        for r in range(repeats):
            await box.run(RunRequest(command=" ; ".join(f"echo '# edit c{r}' >> {n}" for n in names)))
            started = time.perf_counter()
            state = await workspace.snapshot()
            snap.append(time.perf_counter() - started)
            started = time.perf_counter()
            await workspace.restore(base)
            await workspace.restore(state)
            rest.append((time.perf_counter() - started) / 2)
            await workspace.restore(base)
    return statistics.median(snap) * 1000, statistics.median(rest) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--image", default=None, help="also measure in a container of this image (sh and git)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "repo"
        make_repo(root, args.files)
        print(f"repository: {args.files} files; median of {args.repeats} repeats, milliseconds")
        print(f"{'edited files':<14}{'snapshot':>10}{'restore':>10}{'stash save':>12}{'stash restore':>15}")
        for edited in (1, 50):
            snap, rest, save, back = asyncio.run(measure(root, edited, args.repeats, args.files))
            print(f"{edited:<14}{snap:>10.1f}{rest:>10.1f}{save:>12.1f}{back:>15.1f}")
        if args.image:
            print(f"in a container of {args.image} (git there, one exec per call):")
            print(f"{'edited files':<14}{'snapshot':>10}{'restore':>10}")
            for edited in (1, 50):
                snap, rest = asyncio.run(measure_container(args.image, root, edited, args.repeats, args.files))
                print(f"{edited:<14}{snap:>10.1f}{rest:>10.1f}")
    image = f" --image {args.image}" if args.image else ""
    print(f"rerun: python benchmarks/snapshots.py --files {args.files} --repeats {args.repeats}{image}")


if __name__ == "__main__":
    main()
