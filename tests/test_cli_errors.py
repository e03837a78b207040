"""Every bad input to the command line is a short message that says what to fix: a non-zero exit
code, no traceback, no work done before the check, and no file of a run changed or lost.

Most cases run the real entry point (`trellis.cli.main`) in this process; a few run it as a
subprocess to check the exit codes and streams a shell sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from trellis.cli import main

from trellis.models import weights
from trellis.store import TreeStore
from trellis.tree import Tree

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "examples" / "swe" / "instances.jsonl"
INSTANCE = "example__tinycalc-1"
BWRAP = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="needs bubblewrap")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty environment cache: a check made before any work leaves it empty."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TRELLIS_CACHE_DIR", str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `trellis ARGS` in this process: (exit code, stdout + stderr with whitespace runs joined)."""
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), " ".join(
        (captured.out + captured.err).split()
    )


def refused(capsys: pytest.CaptureFixture[str], *args: str, says: str) -> str:
    code, output = cli(capsys, *args)
    assert code != 0, output
    assert "Traceback" not in output
    assert says in output, output
    return output


def nothing_prepared(cache: Path) -> bool:
    return not (cache / "swe").exists()


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def kept(before: dict[str, str], folder: Path) -> bool:
    """Every file that was there is still there, unchanged (SQLite may add its -shm/-wal files)."""
    after = fingerprint(folder)
    return all(after.get(name) == digest for name, digest in before.items())


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A small run folder as `trellis swe solve` writes it."""
    folder = tmp_path / "run"
    tree = Tree.new(task="fix it", instance_id=INSTANCE, config={})
    tree.add_child("0", 0)
    with TreeStore(folder / "tree.db") as store:
        store.save_tree(tree)
    (folder / "run.json").write_text(json.dumps({"task": "fix it", "instance_id": INSTANCE}))
    (folder / "events.jsonl").write_text('{"event": "node_created", "node": {"id": "0.0"}}\n{"event": "no')
    return folder


def damage(run: Path, how: str) -> None:
    db = run / "tree.db"
    for extra in ("tree.db-wal", "tree.db-shm"):
        (run / extra).unlink(missing_ok=True)
    data = db.read_bytes()
    db.write_bytes({"truncated": data[: len(data) // 3], "garbage": b"not a database " * 64, "empty": b""}[how])


# --- models and chat ------------------------------------------------------------------------------------


def test_a_file_that_is_not_gguf(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_text("this is not a model")
    refused(capsys, "chat", "--model", f"gguf:{tmp_path / 'model.gguf'}", "hi", says="is not a GGUF model file")
    refused(capsys, "chat", "--model", f"gguf:{tmp_path}", "hi", says="is a folder")
    refused(capsys, "chat", "--model", "gguf:", "hi", says="gguf spec needs a path")


def test_bad_model_specs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    refused(capsys, "chat", "--model", "nonsense", "hi", says="unknown model spec 'nonsense'")
    refused(capsys, "chat", "--model", "embedded:gpt-9", "hi", says="unknown embedded model 'gpt-9'")
    refused(capsys, "chat", "--model", f"replay:{tmp_path}", "hi", says="is a folder")
    refused(capsys, "chat", "--model", "replay:absent.jsonl", "hi", says="does not exist")
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00")
    refused(capsys, "chat", "--model", f"replay:{tmp_path / 'binary.jsonl'}", "hi", says="cannot be read")
    refused(capsys, "chat", "--model", "python:no_such_module:make", "hi", says="cannot import 'no_such_module'")
    refused(capsys, "chat", "--model", "python:json:no_such_factory", "hi", says="has no callable 'no_such_factory'")
    refused(capsys, "chat", "--model", "openai:http://localhost", "hi", says="needs a URL and a model")


def test_chat_numbers_and_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cassette = f"replay:{tmp_path / 'absent.jsonl'}"
    refused(capsys, "chat", "-n", "0", "--model", cassette, "hi", says="Invalid value for '-n'")
    refused(capsys, "chat", "--max-tokens", "0", "--model", cassette, "hi", says="Invalid value for '--max-tokens'")
    refused(capsys, "chat", "--temperature", "-1", "--model", cassette, "hi", says="Invalid value for '--temperature'")
    refused(capsys, "chat", "--json-schema", str(tmp_path), "hi", says="is a folder")
    (tmp_path / "list.json").write_text("[1]")
    refused(capsys, "chat", "--json-schema", str(tmp_path / "list.json"), "hi", says="must hold a JSON object")
    refused(capsys, "chat", "--record", str(tmp_path), "hi", says="cassette")
    (tmp_path / "file").write_text("")
    refused(capsys, "chat", "--record", str(tmp_path / "file" / "c.jsonl"), "hi", says="is a file, not a folder")


# --- swe prepare / eval ----------------------------------------------------------------------------------


def test_instances_files(capsys: pytest.CaptureFixture[str], tmp_path: Path, cache: Path) -> None:
    refused(capsys, "swe", "prepare", INSTANCE, "--instances", str(tmp_path), says="is a folder")
    refused(capsys, "swe", "prepare", INSTANCE, "--instances", "absent.jsonl", says="no instances file absent.jsonl")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    refused(capsys, "swe", "prepare", INSTANCE, "--instances", str(tmp_path / "bad.jsonl"), says="is not JSON")
    (tmp_path / "empty.jsonl").write_text("\n")
    refused(capsys, "swe", "prepare", INSTANCE, "--instances", str(tmp_path / "empty.jsonl"), says="holds no instances")
    line = INSTANCES.read_text().splitlines()[0]
    (tmp_path / "twice.jsonl").write_text(f"{line}\n{line}\n")
    refused(capsys, "swe", "prepare", INSTANCE, "-i", str(tmp_path / "twice.jsonl"), says="more than once")
    refused(capsys, "swe", "prepare", "nope-1", "--instances", str(INSTANCES), says="unknown instance ids ['nope-1']")
    assert nothing_prepared(cache)


def test_prepare_sources(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    base = ["swe", "prepare", INSTANCE, "--instances", str(INSTANCES)]
    refused(capsys, *base, "--locks", str(tmp_path / "absent"), says="--locks")
    refused(capsys, *base, "--repos", str(INSTANCES), says="is a file; give a folder")
    refused(capsys, *base, "--repo", str(tmp_path / "absent"), says="--repo")
    refused(capsys, *base, "--sandbox", "vm", says="unknown --sandbox 'vm'")
    # the image is the environment: prepare only looks for it, and says what is missing
    refused(capsys, *base, "--sandbox", "docker", says="no Docker engine answers")
    assert nothing_prepared(cache)


def test_eval_inputs_are_checked_before_grading(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache: Path
) -> None:
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text(json.dumps({"instance_id": INSTANCE, "model_name_or_path": "m", "model_patch": ""}) + "\n")
    base = ["swe", "eval", "--instances", str(INSTANCES)]
    refused(capsys, *base, "-p", str(tmp_path), says="is a folder")
    refused(capsys, *base, "-p", "absent.jsonl", says="does not exist")
    refused(capsys, *base, "-p", str(predictions), "--timeout", "0", says="--timeout 0")
    refused(capsys, *base, "-p", str(predictions), "--timeout", "-5", says="--timeout -5")
    refused(capsys, *base, "-p", str(predictions), "--report", str(tmp_path), says="--report")
    (tmp_path / "file").write_text("")
    refused(capsys, *base, "-p", str(predictions), "--report", str(tmp_path / "file" / "r.json"), says="not a folder")
    refused(capsys, *base, "-p", str(predictions), "--report", "/proc/no/r.json", says="cannot be written")
    refused(capsys, *base, "-p", str(predictions), "--sandbox", "vm", says="unknown --sandbox")
    (tmp_path / "empty.jsonl").write_text("")
    refused(capsys, *base, "-p", str(tmp_path / "empty.jsonl"), says="holds no predictions")
    assert nothing_prepared(cache)


@BWRAP
def test_an_instance_predicted_twice_is_graded_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = {"instance_id": INSTANCE, "model_name_or_path": "m", "model_patch": ""}
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text(json.dumps(line) + "\n" + json.dumps({**line, "model_name_or_path": "n"}) + "\n")
    report = tmp_path / "out" / "report.json"
    code, output = cli(capsys, "swe", "eval", "-i", INSTANCES, "-p", predictions, "--offline", "--report", report)
    assert code == 0, output
    assert f"holds more than one prediction for {INSTANCE}" in output and "graded once" in output
    assert "resolved 0 of 1" in output
    data = json.loads(report.read_text())
    assert list(data["instances"]) == [INSTANCE]


# --- swe solve / batch -----------------------------------------------------------------------------------

SOLVE = ["swe", "solve", INSTANCE, "--no-live", "--offline"]


def test_search_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path, cache: Path) -> None:
    refused(capsys, *SOLVE, "--set", "budget.max_nodes", says="--set takes key=value")
    refused(capsys, *SOLVE, "--set", "=3", says="--set takes key=value")
    refused(capsys, *SOLVE, "--set", "budget..max_nodes=3", says="empty part")
    refused(capsys, *SOLVE, "--set", "samples=[1", says="not valid YAML")
    refused(capsys, *SOLVE, "--set", "nope=3", says="invalid search settings: nope")
    refused(capsys, *SOLVE, "--set", "samples.x=1", says="samples is not a section")
    refused(capsys, *SOLVE, "--samples", "0", says="invalid search settings: samples")
    refused(capsys, *SOLVE, "--parallel", "0", says="invalid search settings: parallel")
    refused(capsys, *SOLVE, "--max-nodes", "-1", says="budget.max_nodes")
    refused(capsys, *SOLVE, "--max-seconds", "0", says="budget.max_seconds")
    refused(capsys, *SOLVE, "--selector", "best", says="unknown selector 'best'")
    refused(capsys, *SOLVE, "--selector", "nowhere_pkg:Mine", says="cannot import nowhere_pkg")
    refused(capsys, *SOLVE, "--discriminator", "vote", says="discriminator.strategy")
    refused(capsys, *SOLVE, "--strategy", "greedy", says="--strategy greedy: unknown; give one of mcts, linear")
    for name, text in {"bad.yaml": "a: [1", "list.yaml": "- 1", "unknown.yaml": "bogus: 1"}.items():
        (tmp_path / name).write_text(text)
    refused(capsys, *SOLVE, "--config", str(tmp_path / "bad.yaml"), says="cannot read config")
    refused(capsys, *SOLVE, "--config", str(tmp_path / "list.yaml"), says="must hold a mapping")
    refused(capsys, *SOLVE, "--config", str(tmp_path / "unknown.yaml"), says="invalid search settings: bogus")
    refused(capsys, *SOLVE, "--config", str(tmp_path), says="cannot read config")
    refused(capsys, *SOLVE, "--config", str(tmp_path / "absent.yaml"), says="cannot read config")
    assert nothing_prepared(cache)


def test_solve_inputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache: Path, run_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    refused(capsys, "swe", "solve", "nope-1", says="unknown instance ids ['nope-1']")
    refused(capsys, *SOLVE, "--instances", str(tmp_path), says="is a folder")
    refused(capsys, *SOLVE, "--model", "gpt-9", says="unknown model spec")
    refused(capsys, *SOLVE, "--sandbox", "vm", says="unknown --sandbox 'vm'")
    refused(capsys, *SOLVE, "--sandbox", "docker", says="no Docker engine answers")  # before any model loads
    refused(capsys, *SOLVE, "--image", "x", says="--image names the container image of --sandbox docker")
    refused(capsys, *SOLVE, "--record", str(tmp_path), says="--record")
    (tmp_path / "file").write_text("")
    refused(capsys, *SOLVE, "--run", str(tmp_path / "file"), says="--run")
    refused(capsys, *SOLVE, "--run", str(tmp_path / "file" / "run"), says="is a file, not a folder")
    refused(capsys, *SOLVE, "--run", str(run_folder), says="already holds a run; continue it with --resume")
    refused(capsys, *SOLVE, "--run", "a", "--resume", str(run_folder), says="either --run")
    assert nothing_prepared(cache)


def test_resume_of_a_folder_that_does_not_exist(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache: Path
) -> None:
    refused(capsys, *SOLVE, "--resume", str(tmp_path / "absent"), says="there is no run folder")
    assert not (tmp_path / "absent").exists()
    (tmp_path / "empty").mkdir()
    refused(capsys, *SOLVE, "--resume", str(tmp_path / "empty"), says="it holds no tree.db")
    assert list((tmp_path / "empty").iterdir()) == []
    assert nothing_prepared(cache)


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_resume_of_a_damaged_tree_store(
    capsys: pytest.CaptureFixture[str], cache: Path, run_folder: Path, how: str
) -> None:
    damage(run_folder, how)
    before = fingerprint(run_folder)
    output = refused(capsys, *SOLVE, "--resume", str(run_folder), says="is damaged or not a trellis tree store")
    assert "every file of the run is kept" in output
    assert kept(before, run_folder)
    assert nothing_prepared(cache)


def test_resume_of_another_instance_or_another_kind_of_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, run_folder: Path, cache: Path
) -> None:
    refused(capsys, "swe", "solve", "example__textkit-1", "--resume", run_folder, says=f"is a run of {INSTANCE}")
    other = tmp_path / "other"
    with TreeStore(other / "tree.db") as store:
        store.save_tree(Tree.new(task="a code task"))
    refused(capsys, *SOLVE, "--resume", other, says="not a SWE-bench one")
    assert nothing_prepared(cache)


def test_resume_never_rebuilds_a_missing_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, run_folder: Path, cache: Path
) -> None:
    # the run's states live in its environment's git objects: a rebuilt environment would not hold them
    before = fingerprint(run_folder)
    refused(capsys, *SOLVE, "--resume", run_folder, says="is gone or was never finished")
    assert nothing_prepared(cache) and kept(before, run_folder)


def test_batch_inputs(capsys: pytest.CaptureFixture[str], tmp_path: Path, cache: Path) -> None:
    base = ["swe", "batch", "--instances", str(INSTANCES)]
    refused(capsys, *base, "--workers", "0", says="Invalid value for '--workers'")
    (tmp_path / "file").write_text("")
    refused(capsys, *base, "--runs", str(tmp_path / "file"), says="--runs")
    refused(capsys, *base, "--id", "nope-1", says="unknown instance ids")
    refused(capsys, "swe", "batch", "--instances", str(tmp_path), says="is a folder")
    refused(capsys, *base, "--model", "gpt-9", says="unknown model spec")
    assert nothing_prepared(cache)


# --- tree ------------------------------------------------------------------------------------------------


def test_tree_commands_on_bad_folders(capsys: pytest.CaptureFixture[str], tmp_path: Path, run_folder: Path) -> None:
    refused(capsys, "tree", "show", str(tmp_path / "absent"), says="there is no run folder")
    refused(capsys, "tree", "show", str(run_folder / "tree.db"), says="is a file; give the run folder")
    refused(capsys, "tree", "show", str(tmp_path), says="is not a run folder")
    refused(capsys, "tree", "events", str(tmp_path / "absent"), says="there is no run folder")
    refused(capsys, "tree", "node", str(run_folder), "9.9", says="no node '9.9'")
    refused(capsys, "tree", "show", str(run_folder), "--depth", "-1", says="Invalid value for '--depth'")
    refused(capsys, "tree", "events", str(run_folder), "--last", "0", says="Invalid value for '--last'")
    refused(capsys, "tree", "export", str(run_folder), "--format", "png", says="unknown format 'png'")
    refused(capsys, "tree", "export", str(run_folder), "-o", str(tmp_path), says="--output")
    refused(capsys, "tree", "export", str(run_folder), "-o", "/proc/no/tree.json", says="cannot be written")
    code, output = cli(capsys, "tree", "events", str(run_folder))  # a line cut short by a kill is skipped
    assert code == 0 and "node_created 0.0" in output and "1 unreadable line(s)" in output


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_tree_show_on_a_damaged_store(capsys: pytest.CaptureFixture[str], run_folder: Path, how: str) -> None:
    damage(run_folder, how)
    before = fingerprint(run_folder)
    for command in ("show", "summary", "export"):
        refused(capsys, "tree", command, str(run_folder), says="is damaged or not a trellis tree store")
    assert kept(before, run_folder)


def test_the_entry_point_exits_2_with_the_message_on_stderr(tmp_path: Path, run_folder: Path) -> None:
    damage(run_folder, "garbage")
    result = subprocess.run(
        [sys.executable, "-m", "trellis.cli", "tree", "show", str(run_folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: tree store") and "is damaged" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "\n" not in result.stderr.strip()  # one unwrapped line, whatever the terminal's width


# --- documented install lines ------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    """An extra's name as pip compares it (PEP 685)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_documented_extra_exists() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    # written as pip normalises them, so an install line and the package's metadata always agree
    assert all(_normalise(name) == name for name in extras), sorted(extras)
    documented = [(ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()]
    documented += [info.install for info in weights.EMBEDDED_MODELS.values()]
    lines = [line for text in documented for line in text.splitlines() if "pip install" in line]
    named = {
        extra.strip()
        for line in lines
        for group in re.findall(r"pip install[^`|]*?(?:\.|trellis)\[([^\]]+)\]", line)
        for extra in group.split(",")
    }
    assert {"dev", "qwen-1-5b"} <= named
    missing = sorted(extra for extra in named if _normalise(extra) not in extras or _normalise(extra) != extra)
    assert not missing, f"install lines name extras pyproject.toml does not have as written: {missing}"
