"""`trellis swe batch --executor ray` on this machine, with the scripted model of test_solve_cli.

A Ray runtime started by the command (two CPUs) gives the same predictions and trees as the local
executor; a worker killed in the middle of a batch is replaced and its instance resumes its run and
finishes once; a two-node cluster (`ray start --head` and a second `ray start --address`) runs one
instance on each node. Without Ray installed these tests are skipped, and nothing imports Ray unless
asked to (tested here too).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_solve_cli import BWRAP, EXAMPLES, _nodes, cli_env, finish, scripted_swe_model, trellis
from trellis.search.run import RunDir

from trellis.models import BaseChatModel, Completion, CompletionRequest
from trellis.tree import Tree

RAY = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray (pip install 'trellis[ray]')")
TINYCALC, TEXTKIT = "example__tinycalc-1", "example__textkit-1"
WORKER_LOG = "TRELLIS_TEST_WORKER_LOG"
BATCH = ["swe", "batch", "-i", str(EXAMPLES / "instances.jsonl"), "--offline", "--samples", "2", "--seed", "3"]

# --- a model that notes which process (and Ray node) serves each instance ------------------------------


REPOSITORIES = {TINYCALC: "tinycalc", TEXTKIT: "textkit"}


class WorkerNote(BaseChatModel):
    """The scripted model, noting in $TRELLIS_TEST_WORKER_LOG `instance pid node` at each instance's first call."""

    def __init__(self, inner: BaseChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self._noted: set[str] = set()

    async def generate(self, request: CompletionRequest) -> list[Completion]:
        text = " ".join(m.content for m in request.messages)
        which = next((name for name, repository in REPOSITORIES.items() if repository in text), None)
        if which is not None and which not in self._noted and os.environ.get(WORKER_LOG):
            self._noted.add(which)
            node = "-"
            if "ray" in sys.modules:
                import ray

                node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "-"
            with open(os.environ[WORKER_LOG], "a", encoding="utf-8") as log:
                log.write(f"{which} {os.getpid()} {node}\n")
        return await self.inner.generate(request)


def noted() -> WorkerNote:
    return WorkerNote(scripted_swe_model())


def slow_noted() -> WorkerNote:
    return WorkerNote(scripted_swe_model(delay=0.25))


def notes(path: Path) -> list[tuple[str, int, str]]:
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(row[0], int(row[1]), row[2]) for row in rows]


# --- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment cache for this module's runs (each instance is prepared once)."""
    return tmp_path_factory.mktemp("cache")


def shape(tree: Tree) -> dict[str, object]:
    # test output carries wall-clock durations, so observations are compared without them
    return {k: v.model_dump(exclude={"step": {"observation"}, "usage": {"seconds"}}) for k, v in tree.nodes.items()}


def batch(cwd: Path, cache: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "trellis.cli", *BATCH, *args],
        cwd=cwd,
        env={**cli_env(cache), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return finish(process, timeout=300)


def predictions(runs: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (runs / "predictions.jsonl").read_text().splitlines()]


# --- without Ray ------------------------------------------------------------------------------------------


def test_the_cli_does_not_import_ray() -> None:
    code = "import sys, trellis.cli, trellis.cli.swe, trellis.cli.batch; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_options_are_checked(tmp_path: Path, cache: Path) -> None:
    code, output = finish(
        trellis(tmp_path, cache, *BATCH, "--address", "auto", "--model", "python:test_solve_cli:scripted")
    )
    assert code != 0 and "--address names a Ray cluster; give it with --executor ray" in output
    code, output = finish(trellis(tmp_path, cache, *BATCH, "--executor", "spark"))
    assert code != 0 and "unknown --executor 'spark'; use one of local, ray" in output
    assert not (tmp_path / "runs").exists()


def test_the_worlds_option_is_checked(tmp_path: Path, cache: Path) -> None:
    solve = ["swe", "solve", TINYCALC, "--offline", "--model", "python:test_solve_cli:scripted"]
    code, output = finish(trellis(tmp_path, cache, *solve, "--address", "auto"))
    assert code != 0 and "--address names a Ray cluster; give it with --worlds ray" in output
    code, output = finish(trellis(tmp_path, cache, *solve, "--worlds", "spark"))
    assert code != 0 and "unknown --worlds 'spark'; use one of local, ray" in output


# --- a Ray runtime on this machine --------------------------------------------------------------------------


@RAY
@BWRAP
@pytest.mark.ray
@pytest.mark.slow
def test_a_search_whose_worlds_are_ray_actors_builds_the_local_tree(tmp_path: Path, cache: Path) -> None:
    solve = ["swe", "solve", TINYCALC, "--offline", "--no-live", "--model", "python:test_solve_cli:scripted"]
    solve += ["--parallel", "2", "--samples", "2", "--max-nodes", "8", "--seed", "3"]
    code, output = finish(trellis(tmp_path, cache, *solve, "--run", "local"))
    assert code == 0, output[-4000:]
    code, output = finish(trellis(tmp_path, cache, *solve, "--run", "on-ray", "--worlds", "ray"))
    assert code == 0, output[-4000:]
    assert "Traceback" not in output
    local, remote = RunDir(tmp_path / "local").load_tree(), RunDir(tmp_path / "on-ray").load_tree()
    assert shape(remote) == shape(local) and len(remote) > 3
    assert (tmp_path / "on-ray" / "final.patch").read_text() == (tmp_path / "local" / "final.patch").read_text()
    assert json.loads((tmp_path / "on-ray" / "report.json").read_text())["resolved"]
    # the actors' worktrees are in the run folder, one per world
    worktrees = {p.name for p in (tmp_path / "on-ray" / "worktrees").iterdir() if p.is_dir()}
    assert {"r0", "r1"} <= worktrees and not any(name.startswith("w") for name in worktrees)


@RAY
@BWRAP
@pytest.mark.ray
@pytest.mark.slow
def test_ray_batch_gives_the_local_executors_predictions_and_trees(tmp_path: Path, cache: Path) -> None:
    model = ["--model", "python:test_solve_cli:scripted", "--max-nodes", "5"]
    code, output = batch(tmp_path, cache, *model, "--runs", "local")
    assert code == 0, output[-4000:]
    started = time.monotonic()
    code, output = batch(tmp_path, cache, *model, "--runs", "on-ray", "--executor", "ray")
    assert code == 0, output[-4000:]
    assert time.monotonic() - started < 240
    assert "Traceback" not in output and "predictions: on-ray/predictions.jsonl" in output
    assert predictions(tmp_path / "on-ray") == predictions(tmp_path / "local")
    assert [p["instance_id"] for p in predictions(tmp_path / "on-ray")] == [TINYCALC, TEXTKIT]
    for instance in (TINYCALC, TEXTKIT):
        local = RunDir(tmp_path / "local" / instance).load_tree()
        remote = RunDir(tmp_path / "on-ray" / instance).load_tree()
        assert shape(remote) == shape(local)
    assert (tmp_path / "on-ray" / TINYCALC / "report.json").exists()
    # run again: both are done, and the summary and predictions are the same
    code, again = batch(tmp_path, cache, *model, "--runs", "on-ray", "--executor", "ray")
    assert code == 0, again[-4000:]
    assert again.count("│ done earlier") == 2  # the summary's rows
    assert predictions(tmp_path / "on-ray") == predictions(tmp_path / "local")


@RAY
@BWRAP
@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_instance_resumes_once(tmp_path: Path, cache: Path) -> None:
    log = tmp_path / "workers.log"
    runs = tmp_path / "runs"
    args = [*BATCH, "--executor", "ray", "--model", "python:test_ray_batch:slow_noted", "--max-nodes", "8"]
    args += ["--set", "budget.enough_finished=3"]
    process = subprocess.Popen(
        [sys.executable, "-m", "trellis.cli", *args],
        cwd=tmp_path,
        env={**cli_env(cache), WORKER_LOG: str(log)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    tree_db = runs / TINYCALC / "tree.db"
    while time.monotonic() < deadline and process.poll() is None:
        if _nodes(tree_db) >= 3 and any(name == TINYCALC for name, _, _ in notes(log)):
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the batch ended before a worker was killed:\n{finish(process)[1][-3000:]}"
    first = next(pid for name, pid, _ in notes(log) if name == TINYCALC)
    os.kill(first, signal.SIGKILL)  # the Ray worker solving tinycalc, in the middle of its search
    before = {node.id for node in RunDir(runs / TINYCALC).load_tree()}
    code, output = finish(process, timeout=300)
    assert code == 0, output[-4000:]
    assert "Traceback" not in output
    served = [pid for name, pid, _ in notes(log) if name == TINYCALC]
    assert len(served) == 2 and served[0] == first and served[1] != first  # retried in another worker
    assert f"{TINYCALC} │ resumed" in output
    # completed once: one prediction per instance, one run folder each, every node backed up once
    assert sorted(p["instance_id"] for p in predictions(runs)) == sorted([TINYCALC, TEXTKIT])
    assert sorted(p.name for p in runs.iterdir()) == sorted([TINYCALC, TEXTKIT, "predictions.jsonl"])
    after = RunDir(runs / TINYCALC).load_tree()
    after.check()
    assert before <= set(after.nodes) and len(after) > len(before)
    evaluated = [n for n in after if n.parent_id is not None and n.reward is not None]
    assert after.root.visits == len(evaluated)
    assert all(n.backed_up for n in evaluated)
    assert len((runs / TINYCALC / "predictions.jsonl").read_text().splitlines()) == 1


# --- a two-node cluster on this machine -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# small nodes: one CPU, a small object store, the agent's port chosen by the system (two nodes, one host)
NODE = ["--object-store-memory", str(80 * 1024 * 1024), "--dashboard-agent-listen-port", "0"]


def _ray_start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1", *NODE, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the node's processes are stopped together
        )


def _wait_started(process: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"ray start did not start a node:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # what is left of the group (the node's servers) goes with it
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def two_nodes(tmp_path: Path, cache: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a second node, one CPU each, as `ray start` makes them; yields the head's address."""
    # a test cluster of its own, without the token a real cluster is set up with
    env = {**cli_env(cache), "RAY_AUTH_MODE": "disabled", WORKER_LOG: str(tmp_path / "workers.log")}
    port = free_port()
    nodes = []
    try:
        deadline = time.monotonic() + 120
        head_log = tmp_path / "head.log"
        nodes.append(_ray_start(["--head", "--port", str(port), "--include-dashboard", "false"], env, head_log))
        _wait_started(nodes[0], head_log, deadline)
        worker_log = tmp_path / "node2.log"
        nodes.append(_ray_start(["--address", f"127.0.0.1:{port}"], env, worker_log))
        _wait_started(nodes[1], worker_log, deadline)
        yield f"127.0.0.1:{port}", env
    finally:
        for node in reversed(nodes):
            _stop(node)
        # `ray start` names its cluster for later `ray.init()` calls on this machine; a stopped one must not be
        current = Path("/tmp/ray/ray_current_cluster")
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


@RAY
@BWRAP
@pytest.mark.ray
@pytest.mark.slow
def test_a_two_node_cluster_runs_one_instance_on_each_node(
    tmp_path: Path, cache: Path, two_nodes: tuple[str, dict[str, str]]
) -> None:
    address, env = two_nodes
    model = ["--model", "python:test_ray_batch:noted", "--max-nodes", "5"]
    code, output = batch(
        tmp_path, cache, *model, "--runs", "cluster", "--executor", "ray", "--address", address, env=env
    )
    assert code == 0, output[-4000:]
    seen = notes(tmp_path / "workers.log")
    assert sorted(name for name, _, _ in seen) == sorted([TINYCALC, TEXTKIT])
    assert len({node for _, _, node in seen}) == 2, seen  # one instance per node
    code, output = batch(tmp_path, cache, *model, "--runs", "local")
    assert code == 0, output[-4000:]
    assert predictions(tmp_path / "cluster") == predictions(tmp_path / "local")
