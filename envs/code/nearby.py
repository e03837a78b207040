"""The repository's own tests next to a change: regressions a small model can see.

An issue's hidden tests stay hidden, but the tests a repository already has are the agent's to run.
After each change, the test files that exercise the changed modules (named after them, or importing
them; at most `MAX_FILES`) run in the sandbox. A test that passed at the base commit and does not
pass now is a regression: the agent is told which, and each counts as a failing visible test, so a
change that breaks what worked is valued below one that does not. Tests that passed before and
still pass are reported but not counted (they would reward changing nothing), and tests that failed
at the base commit are no evidence either way.

Each changed module is also imported on its own, in a fresh interpreter (`IMPORTER`): a change that
makes a module fail to import (a circular import, a name used at module level before it exists)
breaks everything that uses it, even where no test file is related to it. A module that imported
at the base commit and does not now is a regression like a broken test (`import pkg.mod`); one that
did not import at the base is not mentioned, and an import that gave no answer (it timed out) is
no evidence either way. Scripts are not imported (`setup.py`, `__main__.py`, files under `docs/`,
`scripts/`, ...): importing runs them.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Sequence
from pathlib import PurePosixPath

MAX_FILES = 3
MAX_MODULES = 5
PREFIX = "regression: "
"""How a broken test is named among an observation's tests."""
IMPORT = "import "
"""How a module's import check is named among the tests next to a change (`import pkg.mod`)."""

UNKNOWN = "UNKNOWN"
"""The status of an import check that gave no answer (it timed out, or printed nothing)."""
IMPORT_TIMEOUT = 30

# -B: no bytecode written at the base commit can stand in for a same-sized change made within the same
# second (the import of a change must compile the change)
IMPORTER = f"""
import json, subprocess, sys
found = {{}}
for name in json.load(sys.stdin):
    try:
        run = subprocess.run(
            [sys.executable, "-B", "-c", "import " + name], capture_output=True, text=True, timeout={IMPORT_TIMEOUT}
        )
    except subprocess.TimeoutExpired:
        found[name] = None
        continue
    lines = run.stderr.strip().splitlines()
    error = lines[-1] if lines else "exit status " + str(run.returncode)
    where = [line.strip() for line in lines if line.strip().startswith('File "')]
    found[name] = "" if run.returncode == 0 else error + (" (" + where[-1] + ")" if where else "")
print(json.dumps(found))
"""
"""Imports each module named on stdin (a JSON list) in a fresh interpreter and prints, as JSON, each
one's error line with the innermost place it names ("" where it imported, null where it did not
finish): run in the sandbox, where a module's code may do anything."""

SCRIPT_NAMES = {"__main__", "setup", "conftest", "noxfile", "fabfile", "manage"}
"""Files whose import runs a program, not a library's code."""
SCRIPT_FOLDERS = {"docs", "doc", "scripts", "script", "examples", "example", "benchmarks", "tools", "bin", "ci"}
"""Top-level folders of programs and documentation rather than the library."""

_TEST_FILE = re.compile(r"(^|/)(test_[^/]*|[^/]*_test)\.py$")


def is_test_file(path: str) -> bool:
    """A file pytest collects by its name (`test_*.py`, `*_test.py`)."""
    return bool(_TEST_FILE.search(path))


def is_test_code(path: str) -> bool:
    """A test file, or anything under a `tests`/`test` folder (conftest.py, helpers)."""
    return is_test_file(path) or any(part in ("tests", "test", "testing") for part in PurePosixPath(path).parts[:-1])


def changed_paths(patch: str) -> list[str]:
    """The files a unified diff changes (their new paths), in order."""
    paths: list[str] = []
    for line in patch.splitlines():
        if line.startswith("diff --git ") and " b/" in line:
            path = line.rsplit(" b/", 1)[1]
            if path not in paths:
                paths.append(path)
    return paths


def module_names(path: str) -> tuple[str, str]:
    """(dotted module name, its last part) of a source file: `pkg/sub/mod.py` -> (`pkg.sub.mod`,
    `mod`); a package's `__init__.py` is the package (`pkg/__init__.py` -> (`pkg`, `pkg`)); a `src/`
    or `lib/` folder in front is no part of the name."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    if parts and parts[0] in ("src", "lib"):
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts:
        return "", ""
    return ".".join(parts), parts[-1]


def deleted_paths(patch: str) -> set[str]:
    """The files a unified diff deletes."""
    deleted: set[str] = set()
    current = ""
    for line in patch.splitlines():
        if line.startswith("diff --git ") and " b/" in line:
            current = line.rsplit(" b/", 1)[1]
        elif line.startswith("deleted file mode") and current:
            deleted.add(current)
    return deleted


def changed_modules(changed: Sequence[str], limit: int = MAX_MODULES) -> list[str]:
    """The dotted names of the changed library modules (`module_names`), at most `limit`: test code,
    scripts (`SCRIPT_NAMES`, `SCRIPT_FOLDERS`) and paths that are no module name left out."""
    found: list[str] = []
    for source in changed:
        if not source.endswith(".py") or is_test_code(source):
            continue
        parts = PurePosixPath(source).parts
        if PurePosixPath(source).stem in SCRIPT_NAMES or (len(parts) > 1 and parts[0] in SCRIPT_FOLDERS):
            continue
        dotted, _ = module_names(source)
        names = dotted.split(".") if dotted else []
        if names and all(n.isidentifier() and not keyword.iskeyword(n) for n in names) and dotted not in found:
            found.append(dotted)
    return found[:limit]


def import_results(output: str, modules: Sequence[str], timed_out: bool = False) -> tuple[dict[str, str], list[str]]:
    """`IMPORTER`'s output read as test results (`import pkg.mod`: PASSED, FAILED, or `UNKNOWN` where
    it gave no answer: the run timed out, or its output does not mention the module) and a line per
    failed import with its error."""
    try:
        found = json.loads(output.strip().splitlines()[-1]) if output.strip() and not timed_out else {}
    except ValueError:
        found = {}
    if not isinstance(found, dict):
        found = {}
    statuses: dict[str, str] = {}
    errors: list[str] = []
    for module in modules:
        error = found.get(module)
        if not isinstance(error, str):
            statuses[f"{IMPORT}{module}"] = UNKNOWN
        elif error:
            statuses[f"{IMPORT}{module}"] = "FAILED"
            errors.append(f"{IMPORT}{module}: {error[:300]}")
        else:
            statuses[f"{IMPORT}{module}"] = "PASSED"
    return statuses, errors


def related_tests(changed: Sequence[str], tests: Sequence[tuple[str, str]], limit: int = MAX_FILES) -> list[str]:
    """The test files (of `tests`: path and text) that exercise the changed source files: named after
    a changed module first (`test_mod.py`, `mod_test.py`), then importing it; at most `limit`."""
    named: list[str] = []
    importing: list[str] = []
    for source in changed:
        if not source.endswith(".py") or is_test_code(source):
            continue
        dotted, leaf = module_names(source)
        if not dotted:
            continue
        parent, _, _ = dotted.rpartition(".")
        patterns = [rf"^\s*(?:from|import)\s+{re.escape(dotted)}\b"]
        if parent:
            patterns.append(rf"^\s*from\s+{re.escape(parent)}\s+import\s+[^\n]*\b{re.escape(leaf)}\b")
        imports = re.compile("|".join(patterns), re.M)
        for path, text in tests:
            name = PurePosixPath(path).name
            if name in (f"test_{leaf}.py", f"{leaf}_test.py", f"test_{leaf}s.py"):
                named.append(path)
            elif imports.search(text):
                importing.append(path)
    chosen: list[str] = []
    for path in [*named, *importing]:
        if path not in chosen:
            chosen.append(path)
    return chosen[:limit]


def regressions(before: dict[str, str], now: dict[str, str], passing: set[str]) -> tuple[list[str], int]:
    """The tests that passed before and do not now (missing from `now` counts as not passing), and
    how many passed before."""
    passed_before = [name for name, status in before.items() if status in passing]
    broken = [name for name in passed_before if now.get(name) not in passing]
    return broken, len(passed_before)


def failure_lines(log: str, broken: Sequence[str], limit: int = 5, imports: Sequence[str] = ()) -> str:
    """pytest's summary lines (`FAILED id - message`) of the broken tests only, after the error of
    each broken import (of `imports`, `import_results`' lines): failures that were there before the
    change are not the agent's to fix."""
    wanted = set(broken)
    lines = [line for line in imports if line.split(":", 1)[0] in wanted]
    for line in log.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) >= 2 and parts[0] in ("FAILED", "ERROR") and parts[1] in wanted:
            lines.append(line[:300])
    return "\n".join(lines[:limit])


def report(files: Sequence[str], broken: Sequence[str], passed_before: int, tail: str) -> str:
    """What the agent is told about the tests next to its change."""
    where = ", ".join(files)
    if not passed_before:
        return f"The repository's tests next to the change ({where}): none of them passed before the change."
    if not broken:
        return f"The repository's tests next to the change ({where}) still pass: {passed_before} of {passed_before}."
    lines = [
        f"The change breaks {len(broken)} of the {passed_before} tests next to it ({where}) that passed before:",
        *(f"  {name}" for name in broken[:5]),
    ]
    if len(broken) > 5:
        lines.append(f"  ({len(broken) - 5} more)")
    if tail:
        lines.append(tail)
    lines.append("Keep what worked working: fix the change so that these pass again.")
    return "\n".join(lines)
