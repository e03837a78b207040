"""Checks read from an issue: its calls, the values it expects, run in the sandbox after each change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from trellis.envs.code.reproduce import IssueCheck, checks_report, issue_checks
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
    statuses, text = checks_report(checks, '[{"ok": true, "repr": "-1"}, {"ok": true, "repr": "[]"}]', False)
    assert statuses == {"issue: m.f(1)": "FAILED"}
    assert "m.f(1) -> -1 (but the issue expects 5)" in text and "m.g() -> []" in text
    assert "Change the source so that the examples give what the issue expects." in text
    statuses, text = checks_report(checks, '[{"ok": true, "repr": "5"}, {"ok": true, "repr": "[]"}]', False)
    assert statuses == {"issue: m.f(1)": "PASSED"}
    assert text.endswith("If the change is complete, reply with: finish")  # the next step, named
    statuses, text = checks_report(checks, "Traceback ...", False)
    assert statuses == {"issue: m.f(1)": "FAILED"} and "could not be run" in text


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
