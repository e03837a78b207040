"""Grading as the official SWE-bench harness grades: its chain of commands for applying a patch, its
parsers for pytest's, Django's and SymPy's logs (ours, and the same results as the `swebench`
package's when it is installed), and a log without any test result reported as an error."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trellis.envs.code.testlog import (
    PARSERS,
    REPO_PARSERS,
    STATUSES,
    our_parser,
    parse_django_log,
    parse_pytest_log,
    parse_pytest_v2_log,
    parse_sympy_log,
    parser_for,
)
from trellis.envs.code.workspace import init_repository
from trellis.envs.swebench.environment import SWEEnvironment
from trellis.envs.swebench.harness import evaluate, modified_files, run_report
from trellis.envs.swebench.instance import SWEInstance

from trellis.errors import UserError

# ---------------------------------------------------------------------------------------------
# Sample logs, in the shapes the harness's test commands print.

DJANGO_LOG = """\
Testing against Django installed in '/testbed/django' with up to 1 processes
Importing application calc_tests
Operations to perform:
  Synchronize unmigrated apps: auth, calc_tests, contenttypes, messages, sessions, staticfiles
  Apply all migrations: admin, sites
Running migrations:
  Applying admin.0001_initial... OK
  Applying sites.0001_initial... OK
System check identified no issues (0 silenced).
test_add (calc_tests.CalcTests) ... ok
test_docstring (calc_tests.CalcTests)
A test with a docstring. ... ok
test_multiline (calc_tests.CalcTests)
First line of a longer docstring ... FAIL
test_error (calc_tests.CalcTests) ... ERROR
test_skip (calc_tests.CalcTests) ... skipped 'needs a real database'
test_prints (calc_tests.CalcTests) ... something the test printed
ok
test_server (view_tests.tests.ViewTests) ... Internal Server Error: /broken/
ok
test_version (admin_scripts.tests.CommandTypes)
--version is equivalent to version ... ok
test_check (check_framework.tests.Tests) ... System check identified no issues (0 silenced)
ok
test_runner (test_runner.tests.Tests) ... Testing against Django installed in '/testbed/django' with up to 8 processes
System check identified no issues (0 silenced).
ok
Applying sites.0002_alter_domain_unique...test_no_migrations (migrations.test_commands.Tests) ... ok

======================================================================
ERROR: test_error (calc_tests.CalcTests)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/testbed/tests/calc_tests/tests.py", line 30, in test_error
    raise ValueError("boom")
ValueError: boom

======================================================================
FAIL: test_multiline (calc_tests.CalcTests)
First line of a longer docstring
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/testbed/tests/calc_tests/tests.py", line 22, in test_multiline
    self.assertEqual(1, 2)
AssertionError: 1 != 2

----------------------------------------------------------------------
Ran 12 tests in 0.051s

FAILED (failures=1, errors=1, skipped=1)
"""

DJANGO_EXPECTED = {
    "test_add (calc_tests.CalcTests)": "PASSED",
    "A test with a docstring.": "PASSED",
    "First line of a longer docstring": "FAILED",
    "test_error (calc_tests.CalcTests)": "ERROR",
    "test_skip (calc_tests.CalcTests)": "SKIPPED",
    "test_prints (calc_tests.CalcTests)": "PASSED",
    "test_server (view_tests.tests.ViewTests)": "PASSED",
    "--version is equivalent to version": "PASSED",
    "test_check (check_framework.tests.Tests)": "PASSED",
    "test_runner (test_runner.tests.Tests)": "PASSED",
    "test_no_migrations (migrations.test_commands.Tests)": "PASSED",
    # the failure report's headers name the method only
    "test_error": "ERROR",
    "test_multiline": "FAILED",
}

SYMPY_LOG = """\
============================= test process starts ==============================
executable:         /opt/miniconda3/envs/testbed/bin/python  (3.9.19-final-0) [CPython]
architecture:       64-bit
cache:              no
ground types:       python
numpy:              None
random seed:        46302618
hash randomization: on (PYTHONHASHSEED=2753403475)

sympy/core/tests/test_basic.py[4]
test_structure ok
test_equality F
test_atoms E
test_free_symbols ok                                                          [FAIL]

sympy/core/tests/test_expr.py[2]
test_basic ok
test_ibasic f                                                                 [OK]


________________________________________________________________________________
_____________ sympy/core/tests/test_basic.py:test_atoms ________________________
Traceback (most recent call last):
  File "/testbed/sympy/core/tests/test_basic.py", line 40, in test_atoms
    raise TypeError
TypeError
________________________________________________________________________________
___________ sympy/core/tests/test_basic.py:test_equality _______________________
Traceback (most recent call last):
  File "/testbed/sympy/core/tests/test_basic.py", line 20, in test_equality
    assert b21 != b2
AssertionError

= tests finished: 3 passed, 1 failed, 1 expected to fail, 1 exceptions, in 0.21 seconds =
DO *NOT* COMMIT!
"""

SYMPY_EXPECTED = {
    "test_structure": "PASSED",
    "test_equality": "FAILED",
    "test_atoms": "ERROR",
    "test_basic": "PASSED",
    # as in the harness, a file's last line (with its "[OK]"/"[FAIL]" tag) is not read
    "sympy/core/tests/test_basic.py:test_atoms": "FAILED",
    "sympy/core/tests/test_basic.py:test_equality": "FAILED",
}

PYTEST_LOG = """\
============================= test session starts ==============================
collected 7 items

tests/test_a.py ..F.sx                                                   [ 85%]
tests/test_b.py E                                                        [100%]

=========================== short test summary info ============================
PASSED tests/test_a.py::test_one
PASSED tests/test_a.py::test_param[/tmp/pytest-of-root/pytest-0/data.csv]
PASSED tests/test_a.py::test_click[MouseButton.LEFT]
FAILED tests/test_a.py::test_two - AssertionError: boom - really
SKIPPED [1] tests/test_a.py:40: no network
XFAIL tests/test_a.py::test_three - reason
ERROR tests/test_b.py::test_setup - RuntimeError
PASSED tests/test_c.py::test_with space in its id
=============== 1 failed, 4 passed, 1 skipped, 1 xfailed, 1 error in 0.12s ===============
"""

# astropy, scikit-learn and sphinx: colours, and older pytest's "id STATUS" progress lines
PYTEST_V2_LOG = (
    "\x1b[1mtests/test_a.py::test_one PASSED\x1b[0m\n"
    "tests/test_a.py::test_old_style FAILED\n"
    "\x1b[32mPASSED\x1b[0m tests/test_a.py::test_coloured\n"
    "FAILED tests/test_a.py::test_two - AssertionError: boom\n"
    "PASSED tests/test_c.py::test_with space in its id\n"
    "SKIPPED [2] tests/test_a.py:40: no network\n"
)

SEABORN_LOG = """\
tests/test_core.py::test_one PASSED [ 50%]
PASSED tests/test_core.py::test_two
FAILED tests/test_core.py::test_three - AssertionError
PASSED
"""

SAMPLE_LOGS = {
    "django": DJANGO_LOG,
    "sympy": SYMPY_LOG,
    "pytest": PYTEST_LOG,
    "pytest_v2": PYTEST_V2_LOG,
    "seaborn": SEABORN_LOG,
    "empty": "",
    "no results": "Traceback (most recent call last):\nImportError: cannot import name 'x'\n",
}


def test_django_log() -> None:
    assert parse_django_log(DJANGO_LOG) == DJANGO_EXPECTED
    assert our_parser("django/django") is parse_django_log


def test_sympy_log() -> None:
    assert parse_sympy_log(SYMPY_LOG) == SYMPY_EXPECTED
    assert our_parser("sympy/sympy") is parse_sympy_log


def test_pytest_logs() -> None:
    assert parse_pytest_log(PYTEST_LOG) == {
        "tests/test_a.py::test_one": "PASSED",
        "tests/test_a.py::test_param[/tmp/pytest-of-root/pytest-0/data.csv]": "PASSED",
        "tests/test_a.py::test_click[MouseButton.LEFT]": "PASSED",
        "tests/test_a.py::test_two": "FAILED",
        "tests/test_a.py::test_three": "XFAIL",
        "tests/test_b.py::test_setup": "ERROR",
        "tests/test_c.py::test_with": "PASSED",
    }
    shortened = our_parser("psf/requests")(PYTEST_LOG)
    assert shortened["tests/test_a.py::test_param[/data.csv]"] == "PASSED"
    assert our_parser("matplotlib/matplotlib")(PYTEST_LOG)["tests/test_a.py::test_click[1]"] == "PASSED"
    assert parse_pytest_v2_log(PYTEST_V2_LOG) == {
        "tests/test_a.py::test_one": "PASSED",
        "tests/test_a.py::test_old_style": "FAILED",
        "tests/test_a.py::test_coloured": "PASSED",
        "tests/test_a.py::test_two": "FAILED",
        "tests/test_c.py::test_with space in its id": "PASSED",
    }
    assert our_parser("scikit-learn/scikit-learn") is parse_pytest_v2_log
    assert our_parser("example/anything") is parse_pytest_log


def test_parser_named_by_the_instance() -> None:
    assert our_parser("example/x", "parse_log_django") is parse_django_log
    with pytest.raises(UserError, match=r"trellis\[swebench\]"):
        our_parser("example/x", "parse_log_some_other_runner")
    # with or without the swebench package, the harness's parser for the repository reads its log
    assert parser_for("django/django")(DJANGO_LOG) == DJANGO_EXPECTED
    assert parser_for("sympy/sympy")(SYMPY_LOG) == SYMPY_EXPECTED


# ---------------------------------------------------------------------------------------------
# The same results as the swebench package's parsers (when it is installed).


def _outcomes(statuses: dict[str, str]) -> dict[str, str]:
    # The harness also keeps what only looks like a status (Django's "ERROR: test_x (m.C)" header
    # read by a pytest parser gives {"test_x": "ERROR:"}): such an entry can neither pass nor fail a
    # test, and ours drop it.
    return {test: status for test, status in statuses.items() if status in STATUSES}


def _theirs() -> tuple[dict, dict]:
    pytest.importorskip("swebench.harness.log_parsers", reason="swebench is not installed (`trellis[swebench]`)")
    from swebench.harness.log_parsers import PARSER_REGISTRY
    from swebench.harness.log_parsers.python import MAP_REPO_TO_PARSER_PY

    return PARSER_REGISTRY, MAP_REPO_TO_PARSER_PY


@pytest.mark.parametrize("log", SAMPLE_LOGS.values(), ids=list(SAMPLE_LOGS))
@pytest.mark.parametrize("name", sorted(PARSERS))
def test_same_results_as_swebench(name: str, log: str) -> None:
    registry, _ = _theirs()
    assert PARSERS[name](log) == _outcomes(registry[name](log, None))


def test_same_parser_per_repository_as_swebench() -> None:
    registry, by_repo = _theirs()
    assert set(REPO_PARSERS) == set(by_repo)
    for repo, theirs in by_repo.items():
        assert registry[REPO_PARSERS[repo]] is theirs, repo


_FRAGMENTS = [
    "test_a (m.C)",
    "test_b",
    "Docstring line.",
    " ... ",
    "ok",
    "OK",
    "FAIL",
    "ERROR",
    "skipped 'why'",
    "FAIL: ",
    "ERROR: ",
    "PASSED ",
    "FAILED ",
    "SKIPPED ",
    "XFAIL ",
    " - ",
    "[1] ",
    "tests/t.py::test_x",
    "[/tmp/a/b]",
    " F",
    " E",
    " ok",
    "____ ",
    "sympy/t.py:test_y",
    " ____",
    "\x1b[31m",
    "[0m",
    " ",
    "  ",
    "Internal Server Error: /x/",
    "System check identified no issues (0 silenced)",
    "MouseButton.LEFT",
]


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_same_results_as_swebench_on_generated_logs(name: str) -> None:
    registry, _ = _theirs()
    lines = st.lists(st.sampled_from(_FRAGMENTS), max_size=6).map("".join)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(lines, max_size=12).map("\n".join))
    def same(log: str) -> None:
        try:
            theirs = registry[name](log, None)
        except IndexError:  # theirs fails on some lines (Django's on a bare "FAIL:"); ours do not
            assert isinstance(PARSERS[name](log), dict)
            assert parser_for("", name)(log) == PARSERS[name](log)
            return
        assert PARSERS[name](log) == _outcomes(theirs)

    same()


# ---------------------------------------------------------------------------------------------
# Grading end to end, on small repositories built here, in the sandbox.

CALC = (
    '"""Arithmetic."""\n\n\ndef add(a, b):\n    # the sum\n    result = a - b\n    return result\n\n\n'
    "def mul(a, b):\n    return a * b\n"
)
GOLD = (
    "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -3,7 +3,7 @@\n \n def add(a, b):\n"
    "     # the sum\n-    result = a - b\n+    result = a + b\n     return result\n \n \n"
)
# The same change with a context line the file does not have: `git apply` refuses it, `patch
# --fuzz=5` applies it (with fuzz 1).
FUZZY = GOLD.replace("@@ -3,7 +3,7 @@\n \n", "@@ -3,7 +3,7 @@\n # a comment the file does not have\n")
# A line to remove that the file does not have: nothing applies it.
BROKEN = GOLD.replace("-    result = a - b", "-    result = a / b")

# What the test patch makes `check.sh` print, per log format; $add is "ok" when add() is fixed.
CHECKS = {
    "pytest": (
        "example/calc",
        'if [ "$add" = ok ]; then echo "PASSED t.py::test_add"; else echo "FAILED t.py::test_add - boom"; fi\n'
        'echo "PASSED t.py::test_keep"\necho "SKIPPED t.py::test_gpu"\n',
        ["t.py::test_add"],
        ["t.py::test_keep", "t.py::test_gpu"],
    ),
    "django": (
        "django/django",
        'echo "test_add (calc_tests.CalcTests) ... $(if [ "$add" = ok ]; then echo ok; else echo FAIL; fi)"\n'
        'echo "test_keep (calc_tests.CalcTests)"\necho "Keep the product. ... ok"\n'
        'echo "test_noisy (calc_tests.CalcTests) ... something it printed"\necho ok\n'
        "echo \"test_skip (calc_tests.CalcTests) ... skipped 'no database'\"\n",
        ["test_add (calc_tests.CalcTests)"],
        ["Keep the product.", "test_noisy (calc_tests.CalcTests)", "test_skip (calc_tests.CalcTests)"],
    ),
    "sympy": (
        "sympy/sympy",
        'echo "sympy/calc/tests/test_calc.py[3] "\n'
        'if [ "$add" = ok ]; then echo "test_add ok"; else echo "test_add F"; fi\n'
        'echo "test_keep ok"\necho "test_last ok                                       [OK]"\n'
        'if [ "$add" != ok ]; then echo "____ sympy/calc/tests/test_calc.py:test_add ____"; fi\n',
        ["test_add"],
        ["test_keep"],
    ),
}
SANDBOXES = ["local", pytest.param("bwrap", marks=pytest.mark.skipif(not shutil.which("bwrap"), reason="no bwrap"))]


def _diff(repo: Path, path: str, content: str) -> str:
    original = (repo / path).read_text()
    (repo / path).write_text(content)
    patch = subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True, check=True).stdout
    (repo / path).write_text(original)
    return patch


def make_env(root: Path, kind: str, sandbox: str, test_cmd: str = "sh check.sh #") -> SWEEnvironment:
    """A SWE-bench-format task whose "test suite" is a shell script that prints `kind`'s log format
    (and exits 1 when a test fails, as the real runners do), in an environment ready to grade."""
    repo_name, body, f2p, p2p = CHECKS[kind]
    env_root = root / "env"
    repo = env_root / "repo"  # where SWEEnvironment keeps the workspace
    commit = init_repository(repo, {"calc.py": CALC, "check.sh": "echo 'no tests yet'\n"})
    check = f"if grep -q 'a + b' calc.py; then add=ok; else add=no; fi\n{body}[ \"$add\" = ok ]\n"
    instance = SWEInstance(
        instance_id=f"{repo_name.replace('/', '__')}-1",
        repo=repo_name,
        base_commit=commit,
        patch=GOLD,
        test_patch=_diff(repo, "check.sh", check),
        FAIL_TO_PASS=json.dumps(f2p),
        PASS_TO_PASS=json.dumps(p2p),
        test_cmd=test_cmd,
    )
    env = SWEEnvironment(instance, env_root, sandbox=sandbox)
    assert env.repo_dir == repo.resolve()
    env.env_dir.mkdir(parents=True)
    return env


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_CACHE_DIR", str(tmp_path / "cache"))


def _clean(env: SWEEnvironment) -> str:
    """`git status` of the repository: empty when grading left it at its base commit."""
    return subprocess.run(
        ["git", "-c", "safe.directory=*", "status", "--porcelain", "--ignored"],
        cwd=env.repo_dir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.filterwarnings("ignore:the local sandbox does not isolate")
@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_patch_that_only_patch_fuzz_applies_is_graded(tmp_path: Path, sandbox: str) -> None:
    env = make_env(tmp_path, "pytest", sandbox)
    refused = subprocess.run(
        ["git", "apply", "--check", "-"], cwd=env.repo_dir, input=FUZZY, text=True, capture_output=True
    )
    assert refused.returncode != 0  # git alone would call it unresolved

    report = await evaluate(env, FUZZY, name="fuzzy")
    assert report.patch_successfully_applied and report.error is None, report.error
    assert report.resolved
    assert report.tests_status["FAIL_TO_PASS"].success == ["t.py::test_add"]
    # a skipped PASS_TO_PASS test is maintained, as in the harness
    assert report.tests_status["PASS_TO_PASS"].success == ["t.py::test_keep", "t.py::test_gpu"]
    assert _clean(env) == ""  # no .orig or .rej left behind

    broken = await evaluate(env, BROKEN, name="broken")
    assert not broken.patch_successfully_applied and not broken.resolved
    assert broken.error_kind == "patch" and "does not apply" in (broken.error or "")
    assert "patch --batch --forward --fuzz=5" in (broken.error or "")
    assert _clean(env) == ""


@pytest.mark.filterwarnings("ignore:the local sandbox does not isolate")
@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_test_files_are_reset_before_the_test_patch(tmp_path: Path, sandbox: str) -> None:
    env = make_env(tmp_path, "pytest", sandbox)
    assert modified_files(env.instance.test_patch) == ["check.sh"]
    # the model also edited the test file: the harness checks it out at the base commit first
    edits_tests = GOLD + _diff(env.repo_dir, "check.sh", "echo 'PASSED t.py::test_add'\n")
    report = await evaluate(env, edits_tests, name="edits-tests")
    assert report.resolved, report.error
    assert _clean(env) == ""


@pytest.mark.filterwarnings("ignore:the local sandbox does not isolate")
@pytest.mark.parametrize("kind", ["django", "sympy"])
@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_repository_log_formats(tmp_path: Path, sandbox: str, kind: str) -> None:
    env = make_env(tmp_path, kind, sandbox)
    gold = await evaluate(env, GOLD, name="gold")
    assert gold.resolved and gold.error is None, (gold.error, gold.tests_status)
    assert gold.tests_status["PASS_TO_PASS"].failure == []
    empty = await evaluate(env, "", name="empty")
    assert not empty.resolved and empty.error is None
    assert empty.tests_status["FAIL_TO_PASS"].failure == env.instance.FAIL_TO_PASS
    assert empty.tests_status["PASS_TO_PASS"].success == env.instance.PASS_TO_PASS


@pytest.mark.filterwarnings("ignore:the local sandbox does not isolate")
@pytest.mark.parametrize("sandbox", SANDBOXES)
async def test_a_log_without_results_is_an_error(tmp_path: Path, sandbox: str) -> None:
    env = make_env(tmp_path, "pytest", sandbox, test_cmd="echo 'ImportError: no module named calc'; exit 4 #")
    report = await evaluate(env, GOLD, name="gold")
    assert report.error_kind == "no_test_results" and not report.resolved
    assert report.error == f"the test command produced no test results; look at the log at {report.log_path}"
    assert "ImportError" in Path(report.log_path or "").read_text()
    assert report.tests_status == {}  # not "every test missing"
    summary = run_report([report], 1)
    assert summary["error_ids"] == [env.instance.instance_id] and summary["completed_instances"] == 0


@pytest.mark.filterwarnings("ignore:the local sandbox does not isolate")
async def test_results_that_contradict_the_exit_status_are_an_error(tmp_path: Path) -> None:
    printed = "echo 'PASSED t.py::test_add'; echo 'PASSED t.py::test_keep'; exit 1 #"
    env = make_env(tmp_path, "pytest", "local", test_cmd=printed)
    report = await evaluate(env, GOLD, name="gold")
    assert report.error_kind == "inconsistent_log" and not report.resolved
    assert "exited with status 1" in (report.error or "")
