"""`trellis tasks list|solve|batch` with scripted models (`--model python:test_tasks_cli:...`): a task
solved and graded by its hidden tests, a wrong answer that passes nothing hidden, a batch read back
when run again, and the same batch on Ray."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trellis.envs.tasks.catalog import TASKS

from trellis.models import CompletionRequest, ScriptedModel

TESTS = Path(__file__).resolve().parent
BWRAP = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")
CHOSEN = "reverse_string,fizzbuzz"


def _answering(right: bool) -> ScriptedModel:
    """Writes the reference solution (or a stub that returns None) of whichever task the request is
    about, then finishes; says Yes when asked to verify."""

    def respond(request: CompletionRequest, i: int) -> str:
        text = "\n".join(m.content for m in request.messages)
        if request.messages[0].content.startswith("You check"):
            return "Yes"
        task = next(t for t in TASKS if f"def {t.entry_point}(" in text)
        code = task.solution if right else task.prompt + "    return None\n"
        if request.messages[0].content.startswith("You are a careful software engineer") and "rewrote" in text:
            return "Done.\n\nfinish"
        return f"Here it is.\n\nsolution.py\n```python\n{code}```"

    return ScriptedModel(respond, name="scripted-tasks")


def right() -> ScriptedModel:
    return _answering(True)


def wrong() -> ScriptedModel:
    return _answering(False)


def tasks(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "COLUMNS": "160",
    }
    command = [sys.executable, "-m", "trellis.cli", "tasks", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_list_names_every_shipped_task(tmp_path: Path) -> None:
    listed = tasks(tmp_path, "list")
    assert listed.returncode == 0 and all(task.id in listed.stdout for task in TASKS)
    record = {"task_id": "Mine/7", "prompt": 'def f(x):\n    """f(1) == 2"""\n', "entry_point": "f"}
    (tmp_path / "mine.jsonl").write_text(json.dumps({**record, "test": "def check(candidate):\n    pass\n"}) + "\n")
    listed = tasks(tmp_path, "list", "--catalog", "mine.jsonl")
    assert listed.returncode == 0 and "Mine_7" in listed.stdout and "f(1) == 2" in listed.stdout, listed.stderr


@BWRAP
def test_solve_grades_by_the_hidden_tests(tmp_path: Path) -> None:
    solved = tasks(tmp_path, "solve", "reverse_string", "--model", "python:test_tasks_cli:right", "--run", "a")
    assert solved.returncode == 0, solved.stderr[-3000:]
    assert "reverse_string: solved (3/3 hidden tests pass; searched)" in solved.stdout
    result = json.loads((tmp_path / "a" / "result.json").read_text())
    assert result["solved"] and result["tokens"] > 0 and (tmp_path / "a" / "run" / "tree.db").is_file()
    # a model that only writes wrong answers: the chosen one fails the hidden tests
    missed = tasks(tmp_path, "solve", "reverse_string", "--model", "python:test_tasks_cli:wrong", "--run", "b")
    assert missed.returncode == 0 and "reverse_string: not solved" in missed.stdout, missed.stderr[-3000:]
    refused = tasks(tmp_path, "solve", "no_such_task")
    assert refused.returncode != 0 and "trellis tasks list" in refused.stdout + refused.stderr


@BWRAP
def test_batch_writes_results_and_reads_them_back(tmp_path: Path) -> None:
    args = ["batch", "--tasks", CHOSEN, "--model", "python:test_tasks_cli:right", "--runs", "runs"]
    first = tasks(tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "runs" / "results.jsonl").read_text().splitlines()]
    assert [(r["id"], r["solved"], r["state"]) for r in rows] == [
        ("reverse_string", True, "searched"),
        ("fizzbuzz", True, "searched"),
    ]
    assert "solved 2/2" in first.stdout
    again = tasks(tmp_path, *args)
    rows = [json.loads(line) for line in (tmp_path / "runs" / "results.jsonl").read_text().splitlines()]
    assert again.returncode == 0 and {r["state"] for r in rows} == {"done earlier"}
    for bad, says in (("0", "give 1 to"), ("nope", "unknown nope")):
        refused = tasks(tmp_path, "batch", "--tasks", bad)
        assert refused.returncode != 0 and says in refused.stdout + refused.stderr


@BWRAP
def test_strategy_linear_runs_one_trajectory(tmp_path: Path) -> None:
    """`--strategy linear` is the benchmark's linear agent: one greedy sample per step, each node
    expanded once while its child is open, so the tree is one path; the default search widens."""
    from trellis.search.config import linear_agent
    from trellis.search.run import RunDir

    def shape(name: str, *strategy: str) -> tuple[list[int], dict]:
        args = ["solve", "reverse_string", "--model", "python:test_tasks_cli:wrong", "--run", name, "--max-nodes", "5"]
        done = tasks(tmp_path, *args, *strategy)
        assert done.returncode == 0 and "reverse_string: not solved" in done.stdout, done.stderr[-3000:]
        tree = RunDir(tmp_path / name / "run").load_tree()
        return [len(tree.children(node.id)) for node in tree], tree.meta["config"]

    children, config = shape("linear", "--strategy", "linear")
    assert max(children) == 1 and sum(children) >= 3  # a path of several steps, never a fork
    expected = linear_agent(8000).model_dump(mode="json")
    expected["budget"]["max_nodes"] = 5
    assert config == expected
    children, config = shape("mcts")
    assert max(children) > 1 and config["samples"] == 2
    refused = tasks(tmp_path, "solve", "reverse_string", "--strategy", "greedy")
    assert refused.returncode != 0 and "give one of mcts, linear" in refused.stdout + refused.stderr


@pytest.mark.ray
@BWRAP
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray (pip install 'trellis[ray]')")
def test_batch_on_ray_gives_what_the_local_executor_gives(tmp_path: Path) -> None:
    args = ["batch", "--tasks", CHOSEN, "--model", "python:test_tasks_cli:right"]
    local = tasks(tmp_path, *args, "--runs", "local")
    remote = tasks(tmp_path, *args, "--runs", "ray", "--executor", "ray")
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr[-3000:]

    def graded(name: str) -> list[tuple[str, bool, int]]:
        lines = (tmp_path / name / "results.jsonl").read_text().splitlines()
        return [(r["id"], r["solved"], r["nodes"]) for r in map(json.loads, lines)]

    assert graded("ray") == graded("local") and all(solved for _, solved, _ in graded("ray"))
