"""The judge's reward in a code world: the reference patch says which reads were useful (a file it
changes, a line it edits around), and each verdict on them earns ReSeek's reward; a world without a
reference patch gives none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from trellis.envs.code.gold import gold_evidence, shows_gold
from trellis.envs.code.workspace import init_repository
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox import BwrapSandbox

from trellis.judging import RIGHT, WRONG_NO, WRONG_YES
from trellis.tree import Action, JudgeVerdict, Step

needs_bwrap = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")

GOLD = "\n".join(
    [
        "diff --git a/pkg/text.py b/pkg/text.py",
        "--- a/pkg/text.py",
        "+++ b/pkg/text.py",
        "@@ -1,5 +1,5 @@",
        " def slug(s):",
        "-    return s.lower().replace(' ', '-')",
        "+    return '-'.join(s.lower().split())",
        " ",
        " ",
        " def words(s):",
        "diff --git a/tests/test_text.py b/tests/test_text.py",
        "--- a/tests/test_text.py",
        "+++ b/tests/test_text.py",
        "@@ -1,2 +1,3 @@",
        " from pkg.text import slug",
        "+assert slug('a  b') == 'a-b'",
    ]
)


def test_the_evidence_is_the_changed_files_and_the_lines_edited_around() -> None:
    evidence = gold_evidence(GOLD, exclude=["tests/test_text.py"])
    assert evidence.paths == {"pkg/text.py"}  # the hidden test file is not where the fix goes
    # the removed line; context lines (`def slug(s):`) occur anywhere, and the test file is not evidence
    assert evidence.lines == {"return s.lower().replace(' ', '-')"}
    assert shows_gold("pkg/text.py:2:     return s.lower().replace(' ', '-')", evidence)  # a search hit
    assert shows_gold("     2  return s.lower().replace(' ', '-')", evidence)  # a numbered view
    assert shows_gold("found: pkg/text.py", evidence)
    assert not shows_gold("mypkg/text.py.bak\npkg/other.py", evidence)  # another file whose name contains it
    assert not shows_gold("def one():\n    return 1", evidence)
    assert not shows_gold("   1  def slug(s):", evidence)  # the context line alone


def test_hunk_lengths_are_followed_and_deleted_files_named() -> None:
    tricky = "\n".join(
        [
            "--- a/notes.py",
            "+++ b/notes.py",
            "@@ -1,2 +1,2 @@",
            "--- a removed line that looks like a header",
            "+++ an added line that looks like one",
            " context_line_here = 1",
            "--- a/gone.py",
            "+++ /dev/null",
            "@@ -1 +0,0 @@",
            "-the_whole_file_was_this = 1",
        ]
    )
    evidence = gold_evidence(tricky)
    assert evidence.paths == {"notes.py", "gone.py"}
    assert evidence.lines == {"-- a removed line that looks like a header", "the_whole_file_was_this = 1"}


@needs_bwrap
async def test_each_verdict_on_a_read_earns_the_instructive_reward(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/text.py": (
            "def slug(s):\n    return s.lower().replace(' ', '-')\n\n\ndef words(s):\n    return s.split()\n"
        ),
        "pkg/other.py": "def one():\n    return 1\n",
    }
    init_repository(tmp_path / "repo", files)
    world = CodeWorld(BwrapSandbox(tmp_path / "repo"), task="fix slug", gold_patch=GOLD)
    await world.reset()
    actions = [
        Action(tool="view_file", args={"path": "pkg/text.py"}),  # useful, judged Yes
        Action(tool="view_file", args={"path": "pkg/other.py"}),  # useless, judged Yes
        Action(tool="search", args={"pattern": "replace"}),  # useful, judged No
        Action(tool="find_file", args={"name": "other.py"}),  # useless, judged No
        Action(tool="view_file", args={"path": "pkg/text.py"}),  # no verdict follows
        Action(tool="finish", args={}),
    ]
    verdicts = [None, True, True, False, False, None]
    steps = []
    for action, keep in zip(actions, verdicts, strict=True):
        observation = await world.step(action)
        verdict = None if keep is None else JudgeVerdict(keep=keep)
        steps.append(Step(action=action, observation=observation, judge=verdict))
    rewards = await world.judge_rewards(steps)
    # a plain code world has no hidden checks, so no right judgement earns the 0.1 for a right answer
    assert rewards == {1: RIGHT, 2: WRONG_YES, 3: WRONG_NO, 4: RIGHT}
    # without the reference patch, no reward at all
    plain = CodeWorld(BwrapSandbox(tmp_path / "repo"), task="fix slug")
    await plain.reset()
    assert await plain.judge_rewards(steps) == {}
