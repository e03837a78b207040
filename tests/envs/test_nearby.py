"""The repository's tests next to a change: which files are related, what counts as a regression,
and the code world that runs them after each change (a broken test fails; an intact one is no reward)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from trellis.envs.code import nearby
from trellis.envs.code.testlog import PASSING
from trellis.envs.code.workspace import init_repository
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox import BwrapSandbox

from trellis.tree import Action

needs_bwrap = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")


def test_changed_paths_and_module_names() -> None:
    patch = (
        "diff --git a/pkg/mod.py b/pkg/mod.py\n--- a/pkg/mod.py\n+++ b/pkg/mod.py\n@@ -1 +1 @@\n-a\n+b\n"
        "diff --git a/src/lib/__init__.py b/src/lib/__init__.py\nnew file mode 100644\n"
    )
    assert nearby.changed_paths(patch) == ["pkg/mod.py", "src/lib/__init__.py"]
    assert nearby.module_names("pkg/sub/mod.py") == ("pkg.sub.mod", "mod")
    assert nearby.module_names("src/lib/__init__.py") == ("lib", "lib")
    assert nearby.module_names("setup.py") == ("setup", "setup")


def test_related_tests_are_named_after_the_module_or_import_it() -> None:
    tests = [
        ("tests/test_other.py", "from pkg import other\n"),
        ("tests/test_uses.py", "import json\nfrom pkg.mod import thing\n"),
        ("tests/test_from_parent.py", "from pkg import other, mod\n"),
        ("tests/test_mod.py", "from somewhere import x\n"),
        ("tests/test_mention.py", "# pkg.mod is tested elsewhere\n"),
    ]
    related = nearby.related_tests(["pkg/mod.py"], tests, limit=5)
    assert related == ["tests/test_mod.py", "tests/test_uses.py", "tests/test_from_parent.py"]  # named first
    assert nearby.related_tests(["pkg/mod.py"], tests, limit=1) == ["tests/test_mod.py"]
    # a change to the tests themselves, or to a file that is not Python, relates to nothing
    assert nearby.related_tests(["tests/test_mod.py", "tests/conftest.py", "README.md"], tests) == []


def test_a_regression_is_a_test_that_passed_before_and_does_not_now() -> None:
    before = {"a": "PASSED", "b": "PASSED", "c": "FAILED", "d": "XFAIL"}
    now = {"a": "PASSED", "b": "FAILED", "c": "FAILED"}  # d is missing: it did not run to a pass
    assert nearby.regressions(before, now, PASSING) == (["b", "d"], 3)
    assert nearby.regressions(before, before, PASSING) == ([], 3)


FILES = {
    "pkg/__init__.py": "",
    "pkg/text.py": "def slug(s):\n    return s.lower().replace(' ', '-')\n\n\ndef words(s):\n    return s.split()\n",
    "pkg/other.py": "def one():\n    return 1\n",
    "tests/test_text.py": (
        "from pkg.text import slug, words\n\n\n"
        "def test_slug():\n    assert slug('A B') == 'a-b'\n\n\n"
        "def test_words():\n    assert words('a b') == ['a', 'b']\n\n\n"
        "def test_already_broken():\n    assert slug('A  B') == 'a-b'\n"
    ),
    "tests/test_other.py": "from pkg.other import one\n\n\ndef test_one():\n    assert one() == 1\n",
}


class CountingSandbox(BwrapSandbox):
    runs: list[str]

    async def run(self, request):  # type: ignore[no-untyped-def]
        self.runs.append(request.command)
        return await super().run(request)


async def nearby_world(tmp_path: Path, files: dict[str, str]) -> tuple[CodeWorld, CountingSandbox]:
    """A code world over `files` that runs the tests next to each change, and its counting sandbox."""
    init_repository(tmp_path / "repo", files)
    sandbox = CountingSandbox(tmp_path / "repo")
    sandbox.runs = []
    world = CodeWorld(
        sandbox,
        task="fix it",
        test_command="python -m pytest -rA -q -p no:cacheprovider",
        test_env={"PYTHONDONTWRITEBYTECODE": "1"},  # as a SWE instance's environment has it
        nearby_tests=True,
    )
    await world.reset()
    return world, sandbox


@needs_bwrap
async def test_the_world_reports_what_a_change_broke_and_counts_only_that(tmp_path: Path) -> None:
    world, sandbox = await nearby_world(tmp_path, FILES)
    kept = "def slug(s):\n    return '-'.join(s.lower().split())\n\n\ndef words(s):\n    return s.split()\n"
    observation = await world.step(Action(tool="write_file", args={"path": "pkg/text.py", "content": kept}))
    assert "tests next to the change (tests/test_text.py, import pkg.text) still pass: 3 of 3" in observation.text
    assert not observation.tests  # what still passes is no reward: changing nothing would earn it too
    assert [c for c in sandbox.runs if "pytest" in c] == [
        "python -m pytest -rA -q -p no:cacheprovider tests/test_text.py"
    ] * 2  # the base commit's results once, then the change's

    broke = "def slug(s):\n    return s.upper()\n\n\ndef words(s):\n    return s.split()\n"
    observation = await world.step(Action(tool="write_file", args={"path": "pkg/text.py", "content": broke}))
    assert observation.tests == {"regression: tests/test_text.py::test_slug": "FAILED"}
    assert "breaks 1 of the 3 tests next to it" in observation.text
    # what the search's fallback weighs
    assert observation.data["nearby"] == {"broken": 1, "passed_before": 2, "broken_imports": 0}  # tests apart
    assert "FAILED tests/test_text.py::test_slug - " in observation.text  # pytest's message for it
    assert "test_already_broken" not in observation.text  # it failed before the change: not the agent's
    assert (tmp_path / "repo" / "pkg" / "text.py").read_text() == broke  # the base run left the change in place

    before = len(sandbox.runs)
    await world.step(Action(tool="shell", args={"command": "true"}))  # changes nothing: nothing runs again
    assert [c for c in sandbox.runs[before:] if "pytest" in c] == []
    again = await world.step(Action(tool="view_file", args={"path": "pkg/other.py"}))
    assert "tests next to" not in again.text  # reading is no change

    off = CodeWorld(BwrapSandbox(tmp_path / "repo"), task="t", test_command="python -m pytest -rA")
    await off.reset()
    plain = await off.step(Action(tool="write_file", args={"path": "pkg/text.py", "content": broke}))
    assert not plain.tests and "tests next to" not in plain.text


def test_changed_modules_are_the_changed_library_sources_by_dotted_name() -> None:
    changed = ["src/pkg/a.py", "pkg/__init__.py", "tests/test_a.py", "README.md", "bad-name/x.py", "pkg/a.py"]
    assert nearby.changed_modules(changed) == ["pkg.a", "pkg"]  # src/ is no part of the name; once each
    assert nearby.changed_modules([f"pkg/m{i}.py" for i in range(9)], limit=2) == ["pkg.m0", "pkg.m1"]
    # importing a script runs it: setup.py, __main__.py, docs and scripts are left out; so are keywords
    scripts = ["setup.py", "pkg/__main__.py", "docs/conf.py", "scripts/release.py", "pkg/async.py", "pkg/docs.py"]
    assert nearby.changed_modules(scripts) == ["pkg.docs"]


def test_deleted_paths_are_the_files_a_diff_deletes() -> None:
    patch = (
        "diff --git a/pkg/old.py b/pkg/old.py\ndeleted file mode 100644\n--- a/pkg/old.py\n+++ /dev/null\n"
        "@@ -1 +0,0 @@\n-x = 1\n"
        "diff --git a/pkg/new.py b/pkg/new.py\n--- a/pkg/new.py\n+++ b/pkg/new.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    )
    assert nearby.changed_paths(patch) == ["pkg/old.py", "pkg/new.py"]
    assert nearby.deleted_paths(patch) == {"pkg/old.py"}


def test_import_results_read_the_importer_output_and_no_answer_is_unknown() -> None:
    error = "ImportError: cannot import name 'x' (most likely due to a circular import)"
    out = "noise\n" + json.dumps({"pkg.a": "", "pkg.b": error, "pkg.d": None})
    statuses, errors = nearby.import_results(out, ["pkg.a", "pkg.b", "pkg.c", "pkg.d"])
    assert statuses == {
        "import pkg.a": "PASSED",
        "import pkg.b": "FAILED",
        "import pkg.c": nearby.UNKNOWN,  # not in the output
        "import pkg.d": nearby.UNKNOWN,  # its import timed out
    }
    assert errors == [f"import pkg.b: {error}"]
    assert nearby.import_results("Traceback ...", ["pkg.a"])[0] == {"import pkg.a": nearby.UNKNOWN}  # no JSON
    assert nearby.import_results(out, ["pkg.a"], timed_out=True)[0] == {"import pkg.a": nearby.UNKNOWN}


CIRCULAR = {
    "pkg/__init__.py": "from pkg.core import value\n",
    "pkg/core.py": "def value():\n    return 1\n",
    "pkg/extra.py": "from pkg.core import value\n\n\ndef double():\n    return 2 * value()\n",
    "pkg/broken.py": "raise ImportError('broken at the base commit')\n",
    "tests/test_core.py": "from pkg.core import value\n\n\ndef test_value():\n    assert value() == 1\n",
}


@needs_bwrap
async def test_a_change_that_breaks_a_modules_import_is_a_regression_with_no_test_next_to_it(tmp_path: Path) -> None:
    world, sandbox = await nearby_world(tmp_path, CIRCULAR)
    # extra.py now imports the package, whose __init__ imports core, which imports extra: circular
    core = "from pkg.extra import double\n\n\ndef value():\n    return 1\n"
    observation = await world.step(Action(tool="write_file", args={"path": "pkg/core.py", "content": core}))
    assert observation.tests is not None and observation.tests["regression: import pkg.core"] == "FAILED"
    assert "import pkg.core: ImportError" in observation.text  # the error line, for the agent to act on

    # no test file is related to extra.py: its import alone is the check
    await world.restore(world.workspace.base_tree)
    extra = "from pkg.core import value\n\nTOTAL = double()\n\n\ndef double():\n    return 2 * value()\n"
    observation = await world.step(Action(tool="write_file", args={"path": "pkg/extra.py", "content": extra}))
    assert observation.tests == {"regression: import pkg.extra": "FAILED"}
    assert observation.data["nearby"] == {"broken": 0, "passed_before": 0, "broken_imports": 1}
    assert "NameError: name 'double' is not defined" in observation.text

    # a module that did not import at the base commit is no evidence either way, and not mentioned
    await world.restore(world.workspace.base_tree)
    worse = "raise ImportError('still broken')\n"
    observation = await world.step(Action(tool="write_file", args={"path": "pkg/broken.py", "content": worse}))
    assert not observation.tests and "next to the change" not in observation.text

    # a deleted module is not imported; a module's base import runs once, however often it changes
    await world.restore(world.workspace.base_tree)
    observation = await world.step(Action(tool="shell", args={"command": "rm pkg/broken.py"}))
    assert not observation.tests and "import pkg.broken" not in observation.text
    imports = [run for run in sandbox.runs if "found[name]" in run]
    assert len(imports) == 2 * 3 - 1  # core, extra: at the base and now; broken: at the base only
    again = "from pkg.core import value\n\n\ndef double():\n    return value() + value()\n"
    observation = await world.step(Action(tool="write_file", args={"path": "pkg/extra.py", "content": again}))
    assert "import pkg.extra) still pass: 1 of 1" in observation.text
    assert len([run for run in sandbox.runs if "found[name]" in run]) == len(imports) + 1  # now only
