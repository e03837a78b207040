"""The main job through the command line.

With a scripted model (`--model python:test_solve_cli:scripted`, no real model): a run killed with
SIGKILL mid-search and resumed with `--resume`, two worktrees searching in parallel, and a batch in
which one instance fails. With the embedded model (marked `model`): a recorded solve, replayed to the
same tree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from trellis.search.run import RunDir

from trellis.models import CompletionRequest, ScriptedModel
from trellis.store import TreeStore
from trellis.tree import Tree

BWRAP = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")
TESTS = Path(__file__).resolve().parent
EXAMPLES = TESTS.parent / "examples" / "swe"
INSTANCE = "example__tinycalc-1"
SMALL = ["--offline", "--no-live", "--max-nodes", "5", "--samples", "2"]

# --- a scripted model for the tinycalc example, loaded by the CLI as python:test_solve_cli:... ---------

_FILE = "tinycalc/__init__.py"
_FIX = f"```bash\nsed -i 's/return a - b/return a + b/' {_FILE}\n```"
_WRONG = f"```bash\nsed -i 's/return a - b/return a * b/' {_FILE}\n```"


def scripted_swe_model(delay: float = 0.0) -> ScriptedModel:
    """Plays every role on example__tinycalc-1: views, fixes, breaks, runs the tests, finishes."""

    def respond(request: CompletionRequest, i: int) -> str:
        if delay:
            time.sleep(delay)
        system = request.messages[0].content
        last = request.messages[-1].content
        # the focused opening: `add`'s stub to complete (the issue says what `tinycalc.add(2, 3)` should return),
        # or the issue and the localised function to fix
        if system.startswith(("Complete the following Python function", "Issue:")):
            sign = "+" if zlib.crc32(f"{request.seed}:{i}".encode()) % 2 == 0 else "*"
            return (
                f'Fixed.\n\n```python\ndef add(a, b):\n    """Return the sum of a and b."""\n    return a {sign} b\n```'
            )
        if system.startswith("You are a careful software engineer"):
            steps = sum(1 for m in request.messages if m.role == "assistant")
            choice = zlib.crc32(f"{request.seed}:{i}:{steps}:{len(last)}".encode()) % 3
            if steps == 0:
                return (f"Look first.\n\nview_file {_FILE}", f"Fix add.\n\n{_FIX}", f"Try.\n\n{_WRONG}")[choice]
            if steps == 1 and choice == 0:
                return "Check the tests.\n\nrun_tests"
            return "Done.\n\nfinish"
        if system.startswith("You check"):
            return "Yes" if "a + b" in last else "No"
        if system.startswith("You review"):
            score = 80 if "a + b" in last else 10
            return json.dumps({"explanation": "scripted review", "score": score, "feedback": "run the tests"})
        if system.startswith("An attempt"):
            return "Lesson: run the tests before finishing."
        return 'Candidate 0 is right. {"choice": 0, "reason": "scripted"}'

    return ScriptedModel(respond, name="scripted-swe")


def scripted() -> ScriptedModel:
    return scripted_swe_model()


def slow_scripted() -> ScriptedModel:
    """Slow enough that a kill lands in the middle of the search."""
    return scripted_swe_model(delay=0.25)


# --- running the CLI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment cache for this module's runs (the instance is prepared once)."""
    return tmp_path_factory.mktemp("cache")


def cli_env(cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TRELLIS_CACHE_DIR": str(cache),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "COLUMNS": "160",
    }


def trellis(cwd: Path, cache: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trellis.cli", *args],
        cwd=cwd,
        env=cli_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def _nodes(store_path: Path) -> int:
    if not store_path.exists():
        return 0
    try:
        with TreeStore(store_path, readonly=True) as store:
            return store.count()
    except Exception:  # the writer may be creating the schema right now
        return 0


def _meta(store_path: Path) -> dict[str, object]:
    with TreeStore(store_path, readonly=True) as store:
        records = {**store.get_meta("tree", {}), **(store.get_meta("run") or {})}
        return records, float(store.get_meta("elapsed_seconds", 0.0))  # type: ignore[return-value]


@BWRAP
def test_kill_then_resume_through_the_cli_with_two_worktrees(tmp_path: Path, cache: Path) -> None:
    run = tmp_path / "runs" / "a"
    args = ["swe", "solve", INSTANCE, "--no-live", "--no-grade", "--parallel", "2", "--samples", "2"]
    args += ["--max-nodes", "12", "--seed", "3", "--set", "budget.enough_finished=3"]
    slow = ["--model", "python:test_solve_cli:slow_scripted"]
    process = trellis(tmp_path, cache, *args, *slow, "--offline", "--run", "runs/a")
    # wait until the search has written its first children, then kill it
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and _nodes(run / "tree.db") < 3 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    code, output = finish(process)
    assert code == -signal.SIGKILL, f"the run ended before it was killed ({code}):\n{output[-3000:]}"
    meta, spent = _meta(run / "tree.db")
    assert not meta.get("final") and not meta.get("decision"), "the kill did not interrupt the search"
    assert not (run / "final.patch").exists()
    assert spent > 0  # the time spent so far is stored with the nodes
    with TreeStore(run / "tree.db", readonly=True) as store:
        before = {n.id: n for n in store.nodes()}
    assert len(before) >= 3
    recorded = json.loads((run / "run.json").read_text())["environment"]
    ready = Path(recorded["root"]) / "ready.json"
    prepared_at = ready.stat().st_mtime_ns

    # resumed without --offline: the environment is not rebuilt (its git objects hold the states)
    fast = ["--model", "python:test_solve_cli:scripted"]
    code, output = finish(trellis(tmp_path, cache, *args, *fast, "--resume", "runs/a"))
    assert code == 0, output[-4000:]
    assert "Traceback" not in output and "stopped:" in output
    assert ready.stat().st_mtime_ns == prepared_at
    after = RunDir(run).load_tree()
    after.check()
    assert set(before) <= set(after.nodes)
    assert len(after) > len(before)
    evaluated = [n for n in after if n.parent_id is not None and n.reward is not None]
    assert after.root.visits == len(evaluated)  # every evaluated node backed up exactly once
    assert all(n.backed_up for n in evaluated)
    assert after.final is not None and (run / "final.patch").exists()
    # the root was expanded with the focused opening: the localised `add` as a stub to complete, with the
    # issue's call as its example, written back to its file (merged: the rest of the module is kept)
    opening = after.meta["opening"]
    assert opening["path"] == "tinycalc/__init__.py"
    assert "def add(a, b):" in opening["prompt"] and ">>> add(2, 3)\n    5\n" in opening["prompt"]
    assert all(c.meta.get("opening") for c in after.children("0"))
    assert any("Counter" not in c.step.action.args["content"] for c in after.children("0") if c.step and c.step.action)
    assert sorted(p.name for p in (run / "worktrees").iterdir() if p.is_dir() and not p.name.endswith("-git")) == [
        "w0",
        "w1",
    ]
    prediction = json.loads((run / "predictions.jsonl").read_text())
    assert prediction["instance_id"] == INSTANCE


@BWRAP
def test_a_patch_left_in_the_environment_by_a_killed_grading_is_not_read_as_the_issue_s_code(
    tmp_path: Path, cache: Path
) -> None:
    args = ["swe", "solve", INSTANCE, "--offline", "--no-live", "--no-grade", "--max-nodes", "3"]
    args += ["--model", "python:test_solve_cli:scripted"]
    code, output = finish(trellis(tmp_path, cache, *args, "--run", "first"))
    assert code == 0, output[-3000:]
    checkout = cache / "swe" / INSTANCE / "repo" / _FILE
    checkout.write_text(checkout.read_text().replace("return a - b", "return a + b"))  # as a killed grading left it
    code, output = finish(trellis(tmp_path, cache, *args, "--run", "second"))
    assert code == 0, output[-3000:]
    task = RunDir(tmp_path / "second").load_tree().meta["task"]
    assert "return a - b" in task and "return a + b" not in task
    assert "return a - b" in checkout.read_text()


@BWRAP
def test_batch_reports_a_failing_instance_and_solves_the_rest(tmp_path: Path, cache: Path) -> None:
    good = json.loads((EXAMPLES / "instances.jsonl").read_text().splitlines()[0])
    assert good["instance_id"] == INSTANCE
    broken = {**good, "instance_id": "example__tinycalc-broken", "base_commit": "0" * 40}
    instances = tmp_path / "instances.jsonl"
    instances.write_text(json.dumps(broken) + "\n" + json.dumps(good) + "\n")
    args = ["swe", "batch", "-i", str(instances), "--repos", str(EXAMPLES), "--locks", str(EXAMPLES / "locks")]
    args += ["--offline", "--model", "python:test_solve_cli:scripted", "--max-nodes", "5", "--samples", "2"]
    code, output = finish(trellis(tmp_path, cache, *args))
    assert code == 1, output[-4000:]
    assert "Traceback" not in output
    assert "example__tinycalc-broken failed:" in output and "1 of 2 instances failed" in output
    lines = [json.loads(line) for line in (tmp_path / "runs" / "predictions.jsonl").read_text().splitlines()]
    assert [p["instance_id"] for p in lines] == [INSTANCE]
    assert (tmp_path / "runs" / INSTANCE / "report.json").exists()


# --- the embedded model --------------------------------------------------------------------------------


def solve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TRELLIS_CACHE_DIR": os.environ.get("TRELLIS_CACHE_DIR", str(Path.home() / ".cache/trellis")),
        "COLUMNS": "120",
    }
    return subprocess.run(
        [sys.executable, "-m", "trellis.cli", "swe", "solve", INSTANCE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )


@pytest.mark.model
@BWRAP
def test_solve_records_and_replay_reproduces(tmp_path: Path, qwen_path: str) -> None:
    cassette = tmp_path / "calls.jsonl"
    first = solve(tmp_path, *SMALL, "--run", "runs/a", "--record", str(cassette))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "run summary" in first.stdout and "graded:" in first.stdout
    run_a = tmp_path / "runs" / "a"
    for name in ("tree.db", "events.jsonl", "predictions.jsonl", "final.patch", "report.json", "run.json"):
        assert (run_a / name).exists(), name
    prediction = json.loads((run_a / "predictions.jsonl").read_text())
    assert prediction["instance_id"] == INSTANCE
    assert prediction["model_name_or_path"].startswith("record:")

    second = solve(tmp_path, *SMALL, "--run", "runs/b", "--model", f"replay:{cassette}")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    a = RunDir(run_a).load_tree()
    b = RunDir(tmp_path / "runs" / "b").load_tree()

    def shape(tree: Tree) -> dict[str, object]:
        # test output carries wall-clock durations, so observations are compared without them
        return {k: v.model_dump(exclude={"step": {"observation"}}) for k, v in tree.nodes.items()}

    assert shape(a) == shape(b)
    assert (run_a / "final.patch").read_text() == (tmp_path / "runs" / "b" / "final.patch").read_text()


def test_judge_value_on_an_instance_warns_that_it_uses_the_reference_patch(capsys: pytest.CaptureFixture[str]) -> None:
    from trellis.cli.swe import _warn_reference_value
    from trellis.search.config import SearchConfig

    _warn_reference_value(SearchConfig())
    assert capsys.readouterr().out == ""
    _warn_reference_value(SearchConfig(judge_value=True))
    assert "computed from the instance's reference patch" in " ".join(capsys.readouterr().out.split())


def test_the_opening_is_a_stub_where_the_issue_says_what_the_function_should_return(tmp_path: Path) -> None:
    from trellis.cli.solve import repair_opening
    from trellis.envs.code.localise import localise_units
    from trellis.envs.code.reproduce import issue_checks
    from trellis.envs.swebench.instance import SWEInstance

    (tmp_path / "calc").mkdir()
    (tmp_path / "calc" / "__init__.py").write_text(
        'import math\n\n\ndef add(a, b):\n    """The sum."""\n    return a - b\n\n\n'
        "class Counter(object):\n    def bump(self):\n        return 0\n"
    )
    record = json.loads((EXAMPLES / "instances.jsonl").read_text().splitlines()[0])

    def opening_for(issue: str) -> tuple[str, str]:
        instance = SWEInstance.model_validate({**record, "problem_statement": issue})
        found = localise_units(tmp_path, issue)
        opening = repair_opening(instance, found, issue_checks(issue), tmp_path)
        assert opening is not None
        return opening.prompt, opening.path

    prompt, path = opening_for("`calc.add(2, 3)` returns -1 instead of 5.")
    assert path == "calc/__init__.py" and prompt.startswith("Complete the following Python function")
    assert 'def add(a, b):\n    """The sum.\n\n    >>> add(2, 3)\n    5\n    """' in prompt
    assert "return a - b" not in prompt and "import math" not in prompt
    # nothing says what `add` should return: the issue and the code, to be fixed
    prompt, _ = opening_for("`calc.add(2, 3)` is wrong.")
    assert prompt.startswith("Issue:\n`calc.add(2, 3)` is wrong.") and "return a - b" in prompt
    # a method to fix is shown under its class's line: the model answers with the class around it,
    # which write_file merges into that class
    prompt, _ = opening_for("`Counter.bump` never counts.")
    assert "```python\nclass Counter(object):\n    ...\n\n    def bump(self):\n        return 0\n```" in prompt
