"""Checks read from an issue: its calls, the values it expects, run in the sandbox after each change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from trellis.envs.code.reproduce import IssueCheck, checks_report, issue_checks, progress
from trellis.envs.code.workspace import init_repository
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox import BwrapSandbox

from trellis.tree import Action

needs_bwrap = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")


@pytest.mark.parametrize(
    ("issue", "expected"),
    [
        ("`tinycalc.add(2, 3)` returns -1 instead of 5.", [IssueCheck("tinycalc.add(2, 3)", "5")]),
        (
            "`textkit.slugify('Hello,  World!')` returns 'hello---world-' but should return 'hello-world': runs ...",
            [IssueCheck("textkit.slugify('Hello,  World!')", "'hello-world'")],
        ),
        (
            "`pkg.mod.f([1, 2])` should return [2, 1]. `pkg.g()` crashes.",
            [IssueCheck("pkg.mod.f([1, 2])", "[2, 1]"), IssueCheck("pkg.g()", None)],
        ),
        ("`a.b(1)` is expected to be None", [IssueCheck("a.b(1)", "None")]),
        ("`a.b(1)` crashes. It should return 3.", [IssueCheck("a.b(1)", None)]),  # another sentence
        ("Calling `len(x)` or `f(2)` fails", []),  # no module to import: not a check
    ],
)
def test_calls_and_expected_values(issue: str, expected: list[IssueCheck]) -> None:
    assert issue_checks(issue) == expected


def test_report() -> None:
    checks = [IssueCheck("m.f(1)", "5"), IssueCheck("m.g()", None)]
    report = checks_report(checks, '[{"ok": true, "repr": "-1"}, {"ok": true, "repr": "[]"}]', False)
    assert report.statuses == {"issue: m.f(1)": "FAILED"}
    assert "m.f(1) -> -1 (but the issue expects 5)" in report.text and "m.g() -> []" in report.text
    assert "Change the source so that the examples give what the issue expects." in report.text
    assert report.returned == {"issue: m.f(1)": "-1", "issue: m.g()": "[]"} and report.progress == {}
    report = checks_report(checks, '[{"ok": true, "repr": "5"}, {"ok": true, "repr": "[]"}]', False)
    assert report.statuses == {"issue: m.f(1)": "PASSED"}
    assert report.text.endswith("If the change is complete, reply with: finish")  # the next step, named
    report = checks_report(checks, "Traceback ...", False)
    assert report.statuses == {"issue: m.f(1)": "FAILED"} and "could not be run" in report.text


def test_progress_is_the_share_of_the_distance_from_the_original_output_that_is_gone() -> None:
    original, expected = "'hello---world-'", "'hello-world'"
    assert progress(original, expected, original) == 0.0  # unchanged
    assert progress("'hello-world-'", expected, original) == pytest.approx(0.642, abs=1e-3)
    assert 0 < progress("'hello---world'", expected, original) < progress("'hello-world-'", expected, original)
    assert progress("'hello----world--'", expected, original) == 0.0  # further away: no credit
    assert progress(expected, expected, original) == 1.0
    # numbers by their difference, not their digits: from -1 toward 5, 4 is near and 50 is not
    assert progress("4", "5", "-1") == pytest.approx(5 / 6) and progress("50", "5", "-1") == 0.0
    assert progress("'5'", "5", "-1") == 0.0 and progress("True", "5", "-1") == 0.0  # not a number
    # what changes between two runs of the same code is no progress
    assert progress("<Slug object at 0x7f3a>", "'a'", "<Slug object at 0x55b1>") == 0.0
    # a huge value is not compared (difflib is quadratic) and is no progress; a huge original is far away
    assert progress(repr("a-b" * 200_000), "'a-b'", "'a--b'") == 0.0
    assert progress("'a-b-'", "'a-b'", repr("a-b" * 200_000)) > 0.5


def test_a_failing_call_nearer_the_expected_value_than_the_original_reports_its_progress() -> None:
    checks = [IssueCheck("t.slug('Hi,  you')", "'hi-you'"), IssueCheck("t.n()", "3")]
    before = {"issue: t.slug('Hi,  you')": "'hi---you'"}  # t.n() raised on the original code
    out = '[{"ok": true, "repr": "\'hi-you-\'"}, {"ok": true, "repr": "2"}]'
    report = checks_report(checks, out, False, before)
    # t.n() raised on the original code: how near 2 is to 3 is not measured from an error
    assert set(report.progress) == {"issue: t.slug('Hi,  you')"}
    assert 0 < report.progress["issue: t.slug('Hi,  you')"] < 1
    assert "but the issue expects 'hi-you'; nearer than the original code's 'hi---you'" in report.text
    raised = '[{"ok": false, "repr": "TypeError: x"}, {"ok": true, "repr": "3"}]'
    report = checks_report(checks, raised, False, before)
    assert report.progress == {} and report.returned == {"issue: t.n()": "3"}  # the raise is no value
    assert checks_report(checks, out, False).progress == {}  # without the original's outputs: none
    # the original run gave nothing (it timed out): the unchanged value must not look like progress
    unchanged = '[{"ok": true, "repr": "\'hi---you\'"}, {"ok": true, "repr": "2"}]'
    base = checks_report(checks, "", True)
    assert base.returned == {} and checks_report(checks, unchanged, False, base.returned).progress == {}


@needs_bwrap
async def test_a_code_world_runs_the_issues_calls_after_each_change(tmp_path: Path) -> None:
    init_repository(tmp_path / "repo", {"calc/__init__.py": "def add(a, b):\n    return a - b\n"})
    checks = issue_checks("`calc.add(2, 3)` returns -1 instead of 5.")
    world = CodeWorld(BwrapSandbox(tmp_path / "repo"), task="fix add", issue_checks=checks)
    await world.reset()
    looked = await world.step(Action(tool="view_file", args={"path": "calc/__init__.py"}))
    assert "issue" not in looked.text  # nothing changed: nothing to run
    fixed = await world.step(Action(tool="replace", args={"path": "calc/__init__.py", "old": "a - b", "new": "a + b"}))
    assert "calc.add(2, 3) -> 5 (as the issue expects)" in fixed.text
    assert fixed.tests == {"issue: calc.add(2, 3)": "PASSED"}
    done = await world.step(Action(tool="finish", args={}))
    assert done.terminal == "finished" and done.tests == {"issue: calc.add(2, 3)": "PASSED"}


@needs_bwrap
async def test_a_code_world_reports_progress_against_what_the_base_commit_gave(tmp_path: Path) -> None:
    source = 'import re\n\ndef slug(t):\n    return re.sub(r"[^a-z]", "-", t.lower())\n'
    init_repository(tmp_path / "repo", {"tk/__init__.py": source})
    checks = issue_checks("`tk.slug('Hi,  you!')` returns 'hi---you-' but should return 'hi-you'.")
    world = CodeWorld(BwrapSandbox(tmp_path / "repo"), task="fix slug", issue_checks=checks)
    await world.reset()
    nearer = await world.step(
        Action(tool="replace", args={"path": "tk/__init__.py", "old": '"[^a-z]"', "new": '"[^a-z]+"'})
    )
    assert nearer.tests == {"issue: tk.slug('Hi,  you!')": "FAILED"}
    assert nearer.progress is not None and 0 < nearer.progress["issue: tk.slug('Hi,  you!')"] < 1
    assert "nearer than the original code's 'hi---you-'" in nearer.text
    assert (tmp_path / "repo" / "tk/__init__.py").read_text().count("[^a-z]+") == 1  # the change is kept
    same = await world.step(
        Action(tool="replace", args={"path": "tk/__init__.py", "old": '"[^a-z]+"', "new": '"[^a-z]"'})
    )
    assert same.tests == {"issue: tk.slug('Hi,  you!')": "FAILED"} and same.progress is None
