"""The whole SWE-bench pipeline on a task built here, in the bwrap sandbox, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from swe_fixture import make_swe_task
from trellis.envs.code.testlog import parse_pytest_log, split
from trellis.envs.swebench.environment import SWEEnvironment, find_repository
from trellis.envs.swebench.environment import test_command as swe_test_command
from trellis.envs.swebench.harness import evaluate, grade, run_report
from trellis.envs.swebench.instance import (
    Prediction,
    load_instances,
    read_predictions,
    select,
    write_predictions,
)

from trellis.errors import UserError

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> SWEEnvironment:
    root = tmp_path_factory.mktemp("swe")
    instance, repo, lock = make_swe_task(root)
    env = SWEEnvironment(instance, root / "env")
    import asyncio

    steps: list[str] = []
    asyncio.run(env.prepare(str(repo), lock, progress=steps.append, offline=True))
    assert steps[-1] == "ready" and env.ready
    return env


def test_preparing_and_the_checkout_are_each_held_by_one_holder_at_a_time(tmp_path: Path) -> None:
    import asyncio

    instance, _, _ = make_swe_task(tmp_path)
    env = SWEEnvironment(instance, tmp_path / "env")
    events: list[str] = []

    async def hold(name: str, held: str, seconds: float) -> None:
        async with getattr(env, held)():
            events.append(f"{name} in")
            await asyncio.sleep(seconds)
            events.append(f"{name} out")

    async def main() -> None:
        await asyncio.gather(hold("a", "preparation_held", 0.3), hold("b", "preparation_held", 0.1))
        await asyncio.gather(hold("c", "checkout_held", 0.3), hold("d", "checkout_held", 0.1))
        # two different locks: the checkout can be held while another holder prepares
        await asyncio.gather(hold("e", "preparation_held", 0.3), hold("f", "checkout_held", 0.1))

    asyncio.run(main())
    # whichever thread's flock is granted first, one holder is out before the other is in
    assert events[:4] in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    assert events[4:8] in (["c in", "c out", "d in", "d out"], ["d in", "d out", "c in", "c out"])
    assert sorted(events[8:10]) == ["e in", "f in"]  # both in before either is out


def test_instance_fields_and_loaders(tmp_path: Path) -> None:
    instance, _, _ = make_swe_task(tmp_path)
    assert instance.FAIL_TO_PASS == ["tests/test_calc.py::test_add"]
    assert instance.test_files == ["tests/test_calc.py"]
    assert swe_test_command(instance) == "pytest -rA tests/test_calc.py"
    loaded = load_instances(tmp_path / "instances.jsonl")
    assert loaded == [instance]
    (tmp_path / "one.json").write_text(json.dumps([instance.model_dump()]))
    assert load_instances(tmp_path / "one.json") == [instance]
    with pytest.raises(UserError, match="unknown instance ids"):
        select(loaded, ["nope"])
    with pytest.raises(UserError, match="no instances file"):
        load_instances(tmp_path / "missing.jsonl")


def test_predictions_round_trip(tmp_path: Path) -> None:
    preds = [Prediction(instance_id="a__b-1", model_name_or_path="trellis", model_patch="diff")]
    write_predictions(tmp_path / "p.jsonl", preds)
    line = json.loads((tmp_path / "p.jsonl").read_text())
    assert line == {"instance_id": "a__b-1", "model_name_or_path": "trellis", "model_patch": "diff"}
    assert read_predictions(tmp_path / "p.jsonl") == preds


def test_gold_patch_resolves_and_empty_does_not(prepared: SWEEnvironment) -> None:
    import asyncio

    empty = asyncio.run(evaluate(prepared, "", name="empty"))
    assert not empty.resolved
    assert empty.tests_status["FAIL_TO_PASS"].failure == ["tests/test_calc.py::test_add"]
    assert empty.tests_status["PASS_TO_PASS"].success == ["tests/test_calc.py::test_mul"]

    gold = asyncio.run(evaluate(prepared, prepared.instance.patch, name="gold"))
    assert gold.resolved and gold.patch_successfully_applied
    assert gold.tests_status["FAIL_TO_PASS"].success == ["tests/test_calc.py::test_add"]
    assert "PASSED tests/test_calc.py::test_add" in Path(gold.log_path or "").read_text()

    broken = asyncio.run(evaluate(prepared, "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"))
    assert not broken.patch_successfully_applied and not broken.resolved and "does not apply" in (broken.error or "")

    # every evaluation leaves the repository at its base commit
    status = subprocess.run(
        ["git", "-c", "safe.directory=*", "status", "--porcelain"],
        cwd=prepared.repo_dir,
        capture_output=True,
        text=True,
    ).stdout
    assert status == ""
    report = run_report([empty, gold, broken], 3)
    assert report["resolved_ids"] == ["example__tinycalc-1"] and report["resolved_instances"] == 1
    assert gold.harness_json()["example__tinycalc-1"]["resolved"] is True


def test_cli_eval_gold_and_empty(prepared: SWEEnvironment, tmp_path: Path) -> None:
    instances = prepared.root.parent / "instances.jsonl"
    env = {**os.environ, "TRELLIS_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}
    repos = prepared.root.parent
    # the repository is found under --repos by its name
    assert find_repository("example/tinycalc", [repos]) is None
    (repos / "tinycalc").symlink_to(repos / "tinycalc-src")
    for which, resolved in (("gold", "resolved 1 of 1"), ("empty", "resolved 0 of 1")):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "trellis.cli",
                "swe",
                "eval",
                "--predictions",
                which,
                "--instances",
                str(instances),
                "--repos",
                str(repos),
                "--locks",
                str(repos / "locks"),
                "--offline",
                "--report",
                str(tmp_path / f"{which}.json"),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert resolved in result.stdout and "example__tinycalc-1" in result.stdout
        report = json.loads((tmp_path / f"{which}.json").read_text())
        assert report["instances"]["example__tinycalc-1"]["resolved"] is (which == "gold")


def test_log_parsing_follows_the_harness() -> None:
    log = "\n".join(
        [
            "PASSED tests/test_a.py::test_one",
            "FAILED tests/test_a.py::test_two - AssertionError: boom",
            "XFAIL tests/test_a.py::test_three - reason",
            "SKIPPED [1] tests/test_a.py:10: no network",
            "ERROR tests/test_b.py::test_setup",
            "PASSED tests/test_a.py::test_param[a b]",
        ]
    )
    statuses = parse_pytest_log(log)
    assert statuses == {
        "tests/test_a.py::test_one": "PASSED",
        "tests/test_a.py::test_two": "FAILED",
        "tests/test_a.py::test_three": "XFAIL",
        "tests/test_b.py::test_setup": "ERROR",
        "tests/test_a.py::test_param[a": "PASSED",
    }
    ok, bad = split(
        [
            "tests/test_a.py::test_one",
            "tests/test_a.py::test_three",
            "tests/test_a.py::test_two",
            "tests/test_a.py::missing",
            "tests/test_a.py::test_param[a",
        ],
        statuses,
    )
    assert ok == ["tests/test_a.py::test_one", "tests/test_a.py::test_three", "tests/test_a.py::test_param[a"]
    assert bad == ["tests/test_a.py::test_two", "tests/test_a.py::missing"]
    assert parse_pytest_log("PASSED t.py::x[/tmp/abc/file.dcm]", shorten_path_options=True) == {
        "t.py::x[/file.dcm]": "PASSED"
    }


def test_grade_needs_every_listed_test() -> None:
    instance = make_swe_task.__globals__["SWEInstance"](
        instance_id="a__b-1", repo="a/b", base_commit="x", FAIL_TO_PASS=["t::f"], PASS_TO_PASS=["t::p"]
    )
    assert grade(instance, {"t::f": "PASSED", "t::p": "PASSED"})[0]
    assert not grade(instance, {"t::f": "PASSED"})[0]
    assert not grade(instance, {"t::f": "SKIPPED", "t::p": "PASSED"})[0]
