"""Reading test logs the way SWE-bench grades them.

Each repository's log is read by the parser the official harness uses for it: pytest's `-rA`
summary lines (`PASSED tests/test_x.py::test_y`) for most, Django's runner (`test_x (module.Class)
... ok`), SymPy's `bin/test` (`test_x ok`, `F`, `E`). A parser maps test id -> one of `STATUSES`.
PASSED and XFAIL count as passing; a test missing from the log counts as failed.

When the `swebench` package imports (`pip install "trellis[swebench]"`), its own parsers are used;
the ones here give the same results for the Python repositories of SWE-bench, so grading works
without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from trellis.errors import UserError

STATUSES = ("FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL")
PASSING = {"PASSED", "XFAIL"}

Parser = Callable[[str], dict[str, str]]

_OPTION = re.compile(r"(.*?)\[(.*)\]")
_SKIP_COUNT = re.compile(r"^\[\d+\]$")


def _is_skip_summary(status: str, name: str) -> bool:
    # "SKIPPED [2] path:line: reason" counts skips; `[2]` is not a test id
    return status == "SKIPPED" and bool(_SKIP_COUNT.match(name))


def parse_pytest_log(log: str, *, shorten_path_options: bool = False) -> dict[str, str]:
    """Map test id -> status from the short test summary lines of a pytest `-rA` run.

    With `shorten_path_options`, a parametrisation that is an absolute path keeps only its last part
    (SWE-bench does this for repositories whose test ids embed temporary paths).
    """
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        if not line.startswith(STATUSES):
            continue
        if line.startswith("FAILED"):
            line = line.replace(" - ", " ")
        parts = line.split()
        if len(parts) <= 1:
            continue
        status, name = parts[0], parts[1]
        if status not in STATUSES or _is_skip_summary(status, name):
            continue
        if shorten_path_options and (match := _OPTION.search(name)):
            main, option = match.groups()
            if option.startswith("/") and not option.startswith("//") and "*" not in option:
                option = "/" + option.split("/")[-1]
            name = f"{main}[{option}]"
        statuses[name] = status
    return statuses


def parse_pytest_options_log(log: str) -> dict[str, str]:
    """pytest, with temporary paths in parametrisations shortened (requests, pylint, pydicom)."""
    return parse_pytest_log(log, shorten_path_options=True)


def parse_matplotlib_log(log: str) -> dict[str, str]:
    """pytest, with `MouseButton` members written as the numbers the dataset's ids use."""
    return parse_pytest_log(log.replace("MouseButton.LEFT", "1").replace("MouseButton.RIGHT", "3"))


_COLOUR_CODE = re.compile(r"\[(\d+)m")
_CONTROL_CHARACTERS = str.maketrans("", "", "".join(chr(code) for code in range(1, 32)))


def parse_pytest_v2_log(log: str) -> dict[str, str]:
    """pytest as astropy, scikit-learn and sphinx print it: colour codes stripped, ids that hold
    spaces kept whole, and older pytest's `test_id STATUS` progress lines read too."""
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        line = _COLOUR_CODE.sub("", line).translate(_CONTROL_CHARACTERS)
        if line.startswith(STATUSES):
            if line.startswith("FAILED"):
                line = line.split(" - ", 1)[0]  # the assertion message is not part of the id
            parts = line.split()
            if len(parts) >= 2 and parts[0] in STATUSES and not _is_skip_summary(parts[0], parts[1]):
                statuses[" ".join(parts[1:])] = parts[0]
        elif line.endswith(STATUSES):
            parts = line.split()
            if len(parts) >= 2 and parts[-1] in STATUSES:
                statuses[" ".join(parts[:-1])] = parts[-1]
    return statuses


def parse_seaborn_log(log: str) -> dict[str, str]:
    """pytest's summary lines plus seaborn's `test_id PASSED [ 50%]` progress lines."""
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        parts = line.split()
        if len(parts) < 2:
            continue
        if line.startswith("FAILED"):
            statuses[parts[1]] = "FAILED"
        elif " PASSED " in line:
            if parts[1] == "PASSED":
                statuses[parts[0]] = "PASSED"
        elif line.startswith("PASSED"):
            statuses[parts[1]] = "PASSED"
    return statuses


_DJANGO_PASSED = (" ... ok", " ... OK", " ...  OK")
# A migration's progress line that runs into a test's line in one instance (django__django-7188).
_DJANGO_GLUED = "Applying sites.0002_alter_domain_unique...test_no_migrations"
# Output that a test prints between its " ... " and its verdict, so the verdict ("ok") stands on
# the next line; the first group is the test.
_DJANGO_INTERRUPTED = tuple(
    re.compile(pattern, re.MULTILINE)
    for pattern in (
        r"^(.*?)\s\.\.\.\sTesting\ against\ Django\ installed\ in\ ((?s:.*?))\ silenced\)\.\nok$",
        r"^(.*?)\s\.\.\.\sInternal\ Server\ Error:\ \/(.*)\/\nok$",
        r"^(.*?)\s\.\.\.\sSystem check identified no issues \(0 silenced\)\nok$",
    )
)


def parse_django_log(log: str) -> dict[str, str]:
    """Django's runner at verbosity 2: `test_x (module.Class) ... ok|FAIL|ERROR|skipped 'why'`.

    A test with a docstring is named by its docstring's first line (`Docstring. ... ok`, under a
    line with the method's name); a verdict that a test's own output pushed onto a later line
    (`ok` alone) belongs to the last test that printed ` ... `; the `FAIL:`/`ERROR:` headers of the
    failure report count too.
    """
    statuses: dict[str, str] = {}
    pending: str | None = None
    for raw in log.split("\n"):
        line = raw.strip()
        if "--version is equivalent to version" in line:
            statuses["--version is equivalent to version"] = "PASSED"
        if " ... " in line:
            pending = line.split(" ... ")[0]
        passed = next((suffix for suffix in _DJANGO_PASSED if line.endswith(suffix)), None)
        if passed is not None:
            if line.startswith(_DJANGO_GLUED):
                line = line.split("...", 1)[-1].strip()
            statuses[line.rsplit(passed, 1)[0]] = "PASSED"
        if " ... skipped" in line:
            statuses[line.split(" ... skipped")[0]] = "SKIPPED"
        for verdict, status in ((" ... FAIL", "FAILED"), (" ... ERROR", "ERROR")):
            if line.endswith(verdict):
                statuses[line.split(verdict)[0]] = status
            header = verdict.removeprefix(" ... ") + ":"
            if line.startswith(header) and len(line.split()) > 1:
                statuses[line.split()[1]] = status
        if line.startswith("ok") and pending is not None:
            statuses[pending] = "PASSED"
    for pattern in _DJANGO_INTERRUPTED:
        for match in pattern.finditer(log):
            statuses[match.group(1)] = "PASSED"
    return statuses


# The header of a failure's report: "____ sympy/core/tests/test_x.py:test_y ____".
_SYMPY_FAILURE = re.compile(r"(_*) (.*)\.py:(.*) (_*)")
_SYMPY_VERDICTS = ((" E", "ERROR"), (" F", "FAILED"), (" ok", "PASSED"))


def parse_sympy_log(log: str) -> dict[str, str]:
    """SymPy's `bin/test --verbose`: one `test_name ok|F|E` line per test under its file's name,
    then a `____ path.py:test_name ____` header per failure."""
    statuses: dict[str, str] = {}
    for match in _SYMPY_FAILURE.finditer(log):
        statuses[f"{match.group(2)}.py:{match.group(3)}"] = "FAILED"
    for raw in log.split("\n"):
        line = raw.strip()
        if not line.startswith("test_"):
            continue
        for ending, status in _SYMPY_VERDICTS:
            if line.endswith(ending):
                statuses[line.split()[0]] = status
    return statuses


PARSERS: dict[str, Parser] = {
    "parse_log_pytest": parse_pytest_log,
    "parse_log_pytest_options": parse_pytest_options_log,
    "parse_log_pytest_v2": parse_pytest_v2_log,
    "parse_log_django": parse_django_log,
    "parse_log_sympy": parse_sympy_log,
    "parse_log_seaborn": parse_seaborn_log,
    "parse_log_matplotlib": parse_matplotlib_log,
}
"""Our parsers, by the names of the harness's registry (an instance's `log_parser` field)."""

REPO_PARSERS: dict[str, str] = {
    "astropy/astropy": "parse_log_pytest_v2",
    "django/django": "parse_log_django",
    "marshmallow-code/marshmallow": "parse_log_pytest",
    "matplotlib/matplotlib": "parse_log_matplotlib",
    "mwaskom/seaborn": "parse_log_seaborn",
    "pallets/flask": "parse_log_pytest",
    "psf/requests": "parse_log_pytest_options",
    "pvlib/pvlib-python": "parse_log_pytest",
    "pydata/xarray": "parse_log_pytest",
    "pydicom/pydicom": "parse_log_pytest_options",
    "pylint-dev/astroid": "parse_log_pytest",
    "pylint-dev/pylint": "parse_log_pytest_options",
    "pytest-dev/pytest": "parse_log_pytest",
    "pyvista/pyvista": "parse_log_pytest",
    "scikit-learn/scikit-learn": "parse_log_pytest_v2",
    "sqlfluff/sqlfluff": "parse_log_pytest",
    "sphinx-doc/sphinx": "parse_log_pytest_v2",
    "sympy/sympy": "parse_log_sympy",
}
"""The parser the harness uses for each repository of SWE-bench; any other repository gets pytest's."""


def swebench_parser(repo: str, name: str | None = None) -> Parser | None:
    """The `swebench` package's parser for `repo` (or the one called `name`), or None when that
    package is not installed or has none. Entries whose status is not one of `STATUSES` (the harness
    also keeps `ERROR:` from a failure report's header) are dropped: they can neither pass nor fail
    a test."""
    try:
        from swebench.harness.log_parsers import PARSER_REGISTRY
        from swebench.harness.log_parsers.python import MAP_REPO_TO_PARSER_PY
    except Exception:  # not installed, too old, or one of its many dependencies is broken
        return None
    theirs = PARSER_REGISTRY.get(name) if name else MAP_REPO_TO_PARSER_PY.get(repo)
    if theirs is None:
        return None
    return lambda log: {test: status for test, status in theirs(log, None).items() if status in STATUSES}


def our_parser(repo: str, name: str | None = None) -> Parser:
    """Our parser for `repo` (or the one called `name`)."""
    if name:
        if name not in PARSERS:
            raise UserError(
                f"the instance's tests are read with the harness's {name!r}, which trellis does not have; "
                'install the harness\'s parsers with `pip install "trellis[swebench]"`'
            )
        return PARSERS[name]
    return PARSERS[REPO_PARSERS.get(repo, "parse_log_pytest")]


def parser_for(repo: str, name: str | None = None) -> Parser:
    """The log parser the harness uses for `repo`, or the one an instance names in its `log_parser`
    field: the `swebench` package's own when it imports, else ours. Where theirs fails on a log
    (Django's raises IndexError on a bare `FAIL:` line), ours reads it."""
    theirs = swebench_parser(repo, name)
    if theirs is None:
        return our_parser(repo, name)
    ours = our_parser(repo, name) if not name or name in PARSERS else None

    def parse(log: str) -> dict[str, str]:
        try:
            return theirs(log)
        except Exception:
            if ours is None:
                raise
            return ours(log)

    return parse


def _resolve(case: str, statuses: dict[str, str]) -> str | None:
    if case in statuses:
        return case
    # Some dataset ids are cut inside a parametrisation; match by prefix when the matches agree.
    if case.count("[") > case.count("]"):
        matches = [k for k in statuses if k.startswith(case)]
        if matches and len({statuses[k] in PASSING for k in matches}) == 1:
            return matches[0]
    return None


def passed(case: str, statuses: dict[str, str]) -> bool:
    key = _resolve(case, statuses)
    return key is not None and statuses[key] in PASSING


def maintained(case: str, statuses: dict[str, str]) -> bool:
    """Passing, or skipped: a PASS_TO_PASS test that is skipped did not regress."""
    key = _resolve(case, statuses)
    return key is not None and (statuses[key] in PASSING or statuses[key] == "SKIPPED")


def split(cases: Iterable[str], statuses: dict[str, str], *, skipped_ok: bool = False) -> tuple[list[str], list[str]]:
    """(passing, failing) of `cases`; a case missing from the log fails, and so does a skipped one
    unless `skipped_ok` (the harness's rule for PASS_TO_PASS)."""
    check = maintained if skipped_ok else passed
    ok: list[str] = []
    bad: list[str] = []
    for case in cases:
        (ok if check(case, statuses) else bad).append(case)
    return ok, bad
