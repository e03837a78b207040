"""How an answer behaves beyond the examples it was shown: probe inputs for a code task.

Answers that pass every docstring example can still differ (an empty input, a longer run, a
negative number). Running each on the same probe calls and comparing what comes back groups them
by behaviour, as execution-based voting does (AlphaCode's clustering, MBR-exec): when independent
samples behave alike on inputs nobody checked, that agreement is evidence, and an answer that
behaves like no other is suspect. The probes are the examples' own calls with one argument changed
at a time to a neighbouring value (empty, shorter, reversed, doubled, zero, one more), so nothing
about the expected outputs is needed. They stay near what the examples show: a value the task
leaves unspecified (a negative number where the examples have none) would split right answers.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Sequence
from typing import Any

MAX_PROBES = 16
PROBE_SECONDS = 1.0
"""Each probe call's own time limit; one that runs out reads as `timeout`."""

# Runs in the sandbox: every probe call (JSON list on stdin) against solution.py, one JSON line back
# with what each returned (its repr, cut), raised or did when it ran out of time. What a call
# prints is swallowed so that it cannot pass for the result line.
PROBE_RUNNER = r"""
import contextlib, io, json, signal, sys
CALLS = json.loads(sys.stdin.read())
SECONDS = float(sys.argv[1])

class Timeout(BaseException):
    pass

def alarm(signum, frame):
    raise Timeout()

def canon(value, depth=0):
    # dicts and sets by their sorted items: answers that build them in another order behave alike
    if depth > 6:
        return repr(value)
    if isinstance(value, dict):
        items = sorted(canon(k, depth + 1) + ": " + canon(v, depth + 1) for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(canon(v, depth + 1) for v in value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(canon(v, depth + 1) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(canon(v, depth + 1) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)

signal.signal(signal.SIGALRM, alarm)
out = sys.stdout
try:
    with contextlib.redirect_stdout(io.StringIO()):
        import solution
except BaseException as exc:
    print(json.dumps({"import_error": type(exc).__name__}), file=out)
    sys.exit(0)
results = []
for call in CALLS:
    namespace = dict(vars(solution))
    try:
        signal.setitimer(signal.ITIMER_REAL, SECONDS)
        with contextlib.redirect_stdout(io.StringIO()):
            value = eval(call, namespace)
        signal.setitimer(signal.ITIMER_REAL, 0)
        results.append("= " + canon(value)[:300])
    except Timeout:
        results.append("timeout")
    except BaseException as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        results.append("raised " + type(exc).__name__)
print(json.dumps({"results": results}), file=out)
"""


def probe_calls(examples: Iterable[str], entry_point: str, *, limit: int = MAX_PROBES) -> list[str]:
    """Calls of `entry_point` (Python source) near the ones the examples make: each call with literal
    arguments, one argument at a time changed to a neighbouring value. The examples' own calls are
    left out (every answer compared already passes them). Examples whose arguments are not literals
    (a variable, an expression) give no probes."""
    examples = list(examples)
    seen: set[str] = set()
    probes: list[str] = []
    for source in examples:
        for call in _calls(source, entry_point):
            seen.add(_source(entry_point, call))
    for source in examples:
        for args in _calls(source, entry_point):
            for index, value in enumerate(args):
                for variant in _neighbours(value):
                    changed = [*args[:index], variant, *args[index + 1 :]]
                    text = _source(entry_point, changed)
                    if text not in seen:
                        seen.add(text)
                        probes.append(text)
    return _spread(probes, limit)


def signature(stdout: str) -> str | None:
    """The behaviour a probe run printed, as one comparable string; None when it gave nothing usable."""
    last = next((line for line in reversed(stdout.splitlines()) if line.startswith("{")), "")
    try:
        report = json.loads(last)
    except ValueError:
        return None
    if "import_error" in report:
        return "import error " + str(report["import_error"])
    results = report.get("results")
    if not isinstance(results, list):
        return None
    return json.dumps(results)


def _calls(source: str, entry_point: str) -> list[list[Any]]:
    """The literal argument lists of the calls of `entry_point` in one example's source."""
    try:
        tree = ast.parse(source.strip(), mode="exec")
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == entry_point
            and not node.keywords
        ):
            try:
                found.append([ast.literal_eval(arg) for arg in node.args])
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
    return found


def _source(entry_point: str, args: Sequence[Any]) -> str:
    return f"{entry_point}({', '.join(repr(a) for a in args)})"


def _neighbours(value: Any) -> list[Any]:
    """Values next to `value`: the empty and the smallest of its kind, and small changes of it."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):  # no sign flips: what a negative does is often left unsaid
        return [v for v in (0, 1, value + 1) if v != value]
    if isinstance(value, float):
        return [v for v in (0.0, value * 2) if v != value]
    if isinstance(value, str):
        return [v for v in ("", value[:1], value[::-1], value.upper(), value + " " + value) if v != value]
    if isinstance(value, (list, tuple)):
        items = list(value)
        kind = type(value)
        return [kind(v) for v in ([], items[:1], items[::-1], items + items) if v != items]
    if isinstance(value, dict):
        return [{}] if value else []
    return []


def _spread(probes: list[str], limit: int) -> list[str]:
    """At most `limit` probes, taken evenly across the list (every example and argument keeps some)."""
    if len(probes) <= limit:
        return probes
    step = len(probes) / limit
    return [probes[int(i * step)] for i in range(limit)]
