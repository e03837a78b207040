"""Probe calls near a code task's examples, and answers grouped by how they behave on them."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.probes import boundary_calls, crashes, last_report, probe_calls, signature
from trellis.envs.tasks.world import CodeTaskWorld, get_task, make_task_repository

from trellis.world import Behaviour

needs_bwrap = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")


def test_probes_change_one_literal_argument_at_a_time() -> None:
    calls = probe_calls(["merge_intervals([(4, 6), (1, 2)])", "merge_intervals([(1, 10)])"], "merge_intervals")
    assert "merge_intervals([])" in calls  # the empty list
    assert "merge_intervals([(1, 2), (4, 6)])" in calls  # reversed
    assert "merge_intervals([(4, 6), (1, 2)])" not in calls  # an example's own call is no probe
    assert len(calls) == len(set(calls))


def test_probes_of_several_arguments_and_nested_calls() -> None:
    calls = probe_calls(["sorted(count('ab', 2).items())"], "count")
    assert "count('', 2)" in calls and "count('ab', 0)" in calls and "count('ab', 3)" in calls
    assert all(call.startswith("count(") for call in calls)


def test_no_probes_from_examples_without_literal_arguments() -> None:
    assert probe_calls(["board = [[0] * 9]", "is_valid(board)", 'f("z" * 11)'], "is_valid") == []
    assert probe_calls(["f(x=1)"], "f") == []  # keywords are left alone
    assert probe_calls(["this is not python ("], "f") == []


def test_probes_are_capped_and_spread() -> None:
    examples = [f"f({i}, 'abc', [1, 2])" for i in range(10)]
    calls = probe_calls(examples, "f", limit=16)
    assert len(calls) == 16
    assert any("'abc', []" in c for c in calls) and any("'', [1, 2]" in c for c in calls)


def test_signature_reads_a_report_of_the_right_shape_only() -> None:
    def read(stdout: str, count: int) -> str | None:
        return signature(last_report(stdout), count)

    report = '{"results": ["= 1", "raised ValueError", "timeout"]}'
    assert read(f"noise\n{report}\n", 3) == json.dumps(["= 1", "raised ValueError", "timeout"])
    assert read(report, 2) is None  # not one result per call
    assert read('{"results": ["= 1", "forged", "timeout"]}', 3) is None
    assert read('{"import_error": "SyntaxError"}', 3) is None
    assert read("Traceback ...", 3) is None and read("[1, 2]", 2) is None


def test_crashes_are_failures_on_the_smallest_inputs_only() -> None:
    calls = ["f('')", "f('a')", "f('ab')", "f('ba')", "f('abc')"]
    boundary = ["f('')", "f('a')", "f('abc')"]
    results = ["crashed IndexError", "= '1a'", "raised ValueError", "crashed KeyError", "timeout"]
    report = {"results": results, "details": {"0": "string index out of range", "3": "'b'"}}
    assert crashes(calls, report, boundary) == [
        "f('') raised IndexError: string index out of range",
        "f('abc') gave no result within 1 s",
    ]  # an error raised on purpose is no crash, nor one on an input that is not a smallest one
    assert crashes(calls, {"results": ["= ''", "= '1a'", "= '1a1b'", "= 'x'", "= 'y'"]}, boundary) == []
    assert crashes(calls, None, boundary) == [] and crashes(calls[:2], report, boundary) == []
    # the smallest values of each kind are the boundary: empty, one item, zero, one
    examples = ["f('abc', [3, 4], 5)"]
    assert boundary_calls(examples, "f") == [
        "f('', [3, 4], 5)",
        "f('a', [3, 4], 5)",
        "f('abc', [], 5)",
        "f('abc', [3], 5)",
        "f('abc', [3, 4], 0)",
        "f('abc', [3, 4], 1)",
    ]
    assert set(boundary_calls(examples, "f")) <= set(probe_calls(examples, "f"))


async def _probe(root: Path, task_id: str, answers: list[str]) -> list[Behaviour | None]:
    task = get_task(task_id)
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, root / task_id)))
    await world.reset()
    found = []
    for answer in answers:
        await world.restore(world.workspace.base_tree)
        await world.sandbox.write_file("solution.py", answer)
        found.append(await world.behaviour(await world.snapshot()))
    return found


async def _behaviours(root: Path, task_id: str, answers: list[str]) -> list[str | None]:
    return [None if b is None else b.signature for b in await _probe(root, task_id, answers)]


@needs_bwrap
def test_answers_that_behave_alike_share_a_behaviour(tmp_path: Path) -> None:
    sliced = "def run_length_encode(s):\n    out, i = '', 0\n    while i < len(s):\n        j = i\n" + (
        "        while j < len(s) and s[j] == s[i]:\n            j += 1\n        out += f'{j - i}{s[i]}'\n"
        "        i = j\n    return out\n"
    )
    grouped = (
        "from itertools import groupby\n\n\ndef run_length_encode(s):\n"
        "    print('debugging output')\n"  # what an answer prints is not its behaviour
        "    return ''.join(f'{len(list(g))}{c}' for c, g in groupby(s))\n"
    )
    # passes the examples, but reads s[0] first: an empty string raises
    first = (
        "def run_length_encode(s):\n    out, run, count = '', s[0], 0\n    for c in s:\n"
        "        if c == run:\n            count += 1\n        else:\n            out += f'{count}{run}'\n"
        "            run, count = c, 1\n    return out + f'{count}{run}'\n"
    )
    probed = asyncio.run(_probe(tmp_path, "run_length_encode", [sliced, grouped, first]))
    behaviours = [None if b is None else b.signature for b in probed]
    assert behaviours[0] is not None and behaviours[0] == behaviours[1]
    assert behaviours[2] != behaviours[0] and "crashed IndexError" in str(behaviours[2])
    assert probed[0] is not None and probed[0].crashes == []
    assert probed[2] is not None and probed[2].crashes == [
        "run_length_encode('') raised IndexError: string index out of range"
    ]


@needs_bwrap
def test_an_error_the_answer_raises_on_purpose_is_no_crash(tmp_path: Path) -> None:
    body = "    return ''.join(f'{len(list(g))}{c}' for c, g in groupby(s))\n"
    head = "from itertools import groupby\n\n\ndef run_length_encode(s):\n"
    raising = head + "    if not s:\n        raise ValueError('nothing to encode')\n" + body
    asserting = head + "    assert s, 'nothing to encode'\n" + body
    helper = "def check(s):\n    if not s:\n        raise ValueError('empty')\n\n\n" + head + "    check(s)\n" + body
    library = "import statistics\n" + head + "    statistics.mean([len(s)] if s else [])\n" + body
    # an error inside a raise or assert statement (s[0] of an empty string) is no purpose of it
    inside = head + "    if not s:\n        raise ValueError(s[0])\n" + body
    checked = head + "    assert s[0] != '?'\n" + body
    answers = [raising, asserting, helper, library, inside, checked]
    probed = asyncio.run(_probe(tmp_path, "run_length_encode", answers))
    assert all(b is not None for b in probed)
    found = [b for b in probed if b is not None]
    assert [b.crashes for b in found[:3]] == [[], [], []]
    assert '"raised ValueError"' in found[0].signature and '"raised AssertionError"' in found[1].signature
    # an error raised inside a library the answer called is the answer's crash, not its intent
    assert found[3].crashes and "StatisticsError" in found[3].crashes[0]
    assert found[4].crashes == ["run_length_encode('') raised IndexError: string index out of range"]
    assert found[5].crashes == ["run_length_encode('') raised IndexError: string index out of range"]
    # the signature holds the error's type, not its message: answers that crash alike agree
    assert '"crashed IndexError"' in found[4].signature and found[4].signature == found[5].signature


@needs_bwrap
def test_the_shipped_reference_solutions_do_not_crash_on_the_smallest_inputs(tmp_path: Path) -> None:
    """The crash check is sound on the catalog: no reference answer crashes on a smallest input, but
    `evaluate_rpn` on an empty expression, which the task does not allow (its answers wait for the
    budget rather than end a search early)."""
    from trellis.envs.tasks.catalog import TASKS

    async def crashing() -> dict[str, list[str]]:
        found = {}
        for task in TASKS:
            (behaviour,) = await _probe(tmp_path, task.id, [task.solution])
            if behaviour is not None and behaviour.crashes:
                found[task.id] = behaviour.crashes
        return found

    assert asyncio.run(crashing()) == {"evaluate_rpn": ["evaluate_rpn([]) raised IndexError: list index out of range"]}


@needs_bwrap
def test_a_probe_that_never_ends_reads_as_a_timeout(tmp_path: Path) -> None:
    looping = (
        "def factorial(n):\n    result = 1\n    while n != 1:\n        result *= n\n        n -= 1\n    return result\n"
    )
    stuck = "import math\n\n\ndef factorial(n):\n    while n == 1:\n        pass\n    return math.factorial(n)\n"
    probed, on_one = asyncio.run(_probe(tmp_path, "factorial", [looping, stuck]))
    assert probed is not None and "timeout" in probed.signature  # factorial(-2) loops; the others still answer
    assert "= 1" in probed.signature
    assert probed.crashes == []  # -2 is not a smallest input: the task may not allow it
    assert on_one is not None and on_one.crashes == ["factorial(1) gave no result within 1 s"]


@needs_bwrap
def test_an_answer_cannot_fake_or_spoil_its_probe_report(tmp_path: Path) -> None:
    """What an answer prints, a forged report line, a swallowed timeout, a replaced alarm handler or
    an exit in the middle never make it look like another answer; objects compare by their fields."""
    right = "def run_length_encode(s):\n    from itertools import groupby\n" + (
        "    return ''.join(f'{len(list(g))}{c}' for c, g in groupby(s))\n"
    )
    forged = "import os\n" + right.replace(
        "def run_length_encode(s):\n",
        "def run_length_encode(s):\n"
        "    os.write(1, b'{\"results\": []}\\n')\n    print('{\"results\": []}')\n    if s == '':\n"
        "        os._exit(0)\n",
    )
    swallowing = right.replace(  # catches the first timeout and loops again: the alarm repeats
        "def run_length_encode(s):\n",
        "def run_length_encode(s):\n    try:\n        while s == '':\n            pass\n"
        "    except BaseException:\n        pass\n    while s == '':\n        pass\n",
    )
    deaf = right.replace(  # ignores the alarm: the whole run is cut off, and agrees with nothing
        "def run_length_encode(s):\n",
        "import signal\n\n\ndef run_length_encode(s):\n    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "    while s == '':\n        pass\n",
    )
    probed = asyncio.run(_probe(tmp_path, "run_length_encode", [right, forged, swallowing, deaf]))
    behaviours = [None if b is None else b.signature for b in probed]
    # a run that gave nothing usable is a crash too: it never counts as a sound answer
    assert probed[1] is not None and probed[1].crashes == ["the probe run died without a report"]
    assert probed[3] is not None and probed[3].crashes == ["the probe run did not end within 20 s"]
    assert behaviours[0] is not None and behaviours[0].startswith('["= ')
    assert behaviours[1] is not None and behaviours[1].startswith("no usable probe run")  # it died mid-run
    assert behaviours[2] is not None and '"timeout"' in behaviours[2]
    assert behaviours[3] is not None and behaviours[3].startswith("no usable probe run")
    assert len(set(behaviours)) == 4


@needs_bwrap
def test_objects_compare_by_their_fields_not_their_address(tmp_path: Path) -> None:
    task = get_task("lru_cache")
    again = asyncio.run(_behaviours(tmp_path, task.id, [task.solution, task.solution]))
    assert again[0] is not None and again[0] == again[1] and " at 0x" not in again[0]


@needs_bwrap
def test_a_task_without_probes_has_no_behaviour(tmp_path: Path) -> None:
    task = get_task("is_valid_sudoku")
    assert asyncio.run(_behaviours(tmp_path, task.id, [task.solution])) == [None]
