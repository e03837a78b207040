"""Reading test logs the way SWE-bench grades them.

A pytest `-rA` log has one summary line per test (`PASSED tests/test_x.py::test_y`); FAILED lines
carry ` - reason`. PASSED and XFAIL count as passing; a test missing from the log counts as failed.
When the `swebench` package imports cleanly, its own per-repository parsers are used instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

STATUSES = ("FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL")
PASSING = {"PASSED", "XFAIL"}

_OPTION = re.compile(r"(.*?)\[(.*)\]")


def parse_pytest_log(log: str, *, shorten_path_options: bool = False) -> dict[str, str]:
    """Map test id -> status from the short test summary lines of a pytest `-rA` run.

    With `shorten_path_options`, a parametrisation that is an absolute path keeps only its last part
    (SWE-bench does this for repositories whose test ids embed temporary paths).
    """
    statuses: dict[str, str] = {}
    for line in log.splitlines():
        if not line.startswith(STATUSES):
            continue
        if line.startswith("FAILED"):
            line = line.replace(" - ", " ")
        parts = line.split()
        if len(parts) <= 1:
            continue
        status, name = parts[0], parts[1]
        if status not in STATUSES:
            continue
        if status == "SKIPPED" and name.startswith("[") and name.endswith("]"):
            continue  # "SKIPPED [2] path:line: reason" is a summary, not a test id
        if shorten_path_options and (match := _OPTION.search(name)):
            main, option = match.groups()
            if option.startswith("/") and not option.startswith("//") and "*" not in option:
                option = "/" + option.split("/")[-1]
            name = f"{main}[{option}]"
        statuses[name] = status
    return statuses


_PATH_OPTION_REPOS = {"pydicom/pydicom"}


def parser_for(repo: str) -> Callable[[str], dict[str, str]]:
    """The log parser SWE-bench uses for `repo`, falling back to ours when swebench is not importable."""
    try:
        from swebench.harness.log_parsers import MAP_REPO_TO_PARSER

        theirs = MAP_REPO_TO_PARSER.get(repo)
        if theirs is not None:
            return lambda log: dict(theirs(log, None))
    except Exception:  # swebench pulls heavy optional dependencies; any import failure means "use ours"
        pass
    shorten = repo in _PATH_OPTION_REPOS
    return lambda log: parse_pytest_log(log, shorten_path_options=shorten)


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


def split(cases: Iterable[str], statuses: dict[str, str]) -> tuple[list[str], list[str]]:
    """(passing, failing) of `cases`; a case missing from the log fails."""
    ok: list[str] = []
    bad: list[str] = []
    for case in cases:
        (ok if passed(case, statuses) else bad).append(case)
    return ok, bad
