"""How an answer behaves beyond the examples it was shown: probe inputs for a code task.

Answers that pass every docstring example can still differ (an empty input, a longer run, a
negative number). Running each on the same probe calls and comparing what comes back groups them
by behaviour, as execution-based voting does (AlphaCode's clustering, MBR-exec): when independent
samples behave alike on inputs nobody checked, that agreement is evidence, and an answer that
behaves like no other is suspect. The probes are the examples' own calls with one argument changed
at a time to a neighbouring value (empty, shorter, reversed, doubled, zero, one more), so nothing
about the expected outputs is needed. They stay near what the examples show: a value the task
leaves unspecified (a negative number where the examples have none) would split right answers.

The smallest of them (an empty or one-item sequence, zero, one: `boundary_calls`) are inputs a
right answer takes: one that crashes there (an error no `raise` or `assert` of its own raised, such
as `s[0]` on an empty string) or never returns has a bug, the implicit oracle fuzzers use (see
`crashes`). A changed input of another kind (a reversed token list, a doubled numeral) may be one
the task does not allow, so an error there is only behaviour.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Sequence
from typing import Any

MAX_PROBES = 16
RESULT_FORMS = ("= ", "raised ", "crashed ", "timeout")
"""A probe call's result: its value, the type of an error a statement of the answer raised on
purpose (`raise`, `assert`), the type of an error nothing in the answer raised on purpose (a crash:
`s[0]` on an empty string; its message goes to the report's `details`), or no result in time."""
PROBE_SECONDS = 1.0
"""Each probe call's own time limit; one that runs out reads as `timeout`."""

# Runs in the sandbox: every probe call (JSON list on stdin) against solution.py, one JSON line back
# with what each returned (its canonical repr, hashed past a length), raised on purpose, crashed with
# (an error no `raise` or `assert` line of the answer raised, with its message) or did when it ran
# out of time. The answer's own output goes to /dev/null (fd 1 is moved away before it is imported), and
# the report is written to a descriptor of the runner's own, so printing cannot pass for it. The
# alarm repeats, so an answer that swallows one `Timeout` still gets the next.
PROBE_RUNNER = r"""
import hashlib, json, linecache, os, re, signal, sys, traceback
CALLS = json.loads(sys.stdin.read())
SECONDS = float(sys.argv[1])
report = os.fdopen(os.dup(1), "w")
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1)
sys.stdout = open(os.devnull, "w")

class Timeout(BaseException):
    pass

def alarm(signum, frame):
    raise Timeout()

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

def canon(value, depth=0):
    # dicts and sets by their sorted items: answers that build them in another order behave alike;
    # an object by its type and attributes, not its address
    if depth > 6:
        return "..."
    if isinstance(value, dict):
        items = sorted(canon(k, depth + 1) + ": " + canon(v, depth + 1) for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(canon(v, depth + 1) for v in value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(canon(v, depth + 1) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(canon(v, depth + 1) for v in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (str, bytes, int, float, complex, bool, type(None))):
        return repr(value)
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        return type(value).__name__ + canon(attributes, depth + 1)
    return ADDRESS.sub("", repr(value))

def deliberate(exc):
    # raised by a `raise` or `assert` statement of the answer itself, rather than by an operation
    # that failed (an index out of range, a key missing, a builtin given an empty sequence), also one
    # inside such a statement (`raise ValueError(s[0])`): the error must point at the statement
    frames = traceback.extract_tb(exc.__traceback__, limit=-1)
    if not frames or os.path.basename(frames[-1].filename) != "solution.py":
        return False
    frame = frames[-1]
    line = linecache.getline(frame.filename, frame.lineno or 0)  # the frame's own line is stripped
    indent = len(line) - len(line.lstrip())
    at_statement = getattr(frame, "colno", None) in (None, indent)
    if line.lstrip().startswith("assert"):
        return isinstance(exc, AssertionError) and at_statement
    return line.lstrip().startswith("raise") and at_statement

def short(text):
    return text if len(text) <= 300 else text[:200] + " #" + hashlib.sha256(text.encode()).hexdigest()[:16]

signal.signal(signal.SIGALRM, alarm)
try:
    import solution
except BaseException as exc:
    report.write(json.dumps({"import_error": type(exc).__name__}) + "\n")
    report.flush()
    os._exit(0)
results, details = [], {}
for call in CALLS:
    namespace = dict(vars(solution))
    try:
        signal.signal(signal.SIGALRM, alarm)  # the answer may have replaced the handler
        signal.setitimer(signal.ITIMER_REAL, SECONDS, SECONDS)
        value = eval(call, namespace)
        result = "= " + short(canon(value))
        signal.setitimer(signal.ITIMER_REAL, 0)
    except Timeout:
        result = "timeout"
    except BaseException as exc:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)  # no alarm while the error is read
        except BaseException:
            pass
        if deliberate(exc):
            result = "raised " + type(exc).__name__
        else:
            result = "crashed " + type(exc).__name__
            details[str(len(results))] = ADDRESS.sub("", str(exc)).replace("\n", " ")[:100]
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException:
            pass
    results.append(result)
report.write(json.dumps({"results": results, "details": details}) + "\n")
report.flush()
os._exit(0)
"""


def probe_calls(examples: Iterable[str], entry_point: str, *, limit: int = MAX_PROBES) -> list[str]:
    """Calls of `entry_point` (Python source) near the ones the examples make: each call with literal
    arguments, one argument at a time changed to a neighbouring value. The examples' own calls are
    left out (every answer compared already passes them). Examples whose arguments are not literals
    (a variable, an expression) give no probes."""
    return _spread([call for call, _ in _probes(examples, entry_point)], limit)


def boundary_calls(examples: Iterable[str], entry_point: str) -> list[str]:
    """The probe calls (see `probe_calls`) whose changed argument is the smallest of its kind: an
    empty or one-item sequence, an empty mapping, zero or one."""
    return [call for call, smallest in _probes(examples, entry_point) if smallest]


def _probes(examples: Iterable[str], entry_point: str) -> list[tuple[str, bool]]:
    """Every probe call, in order, with whether its changed argument is a smallest value."""
    examples = list(examples)
    seen: set[str] = set()
    probes: list[tuple[str, bool]] = []
    for source in examples:
        for call in _calls(source, entry_point):
            seen.add(_source(entry_point, call))
    for source in examples:
        for args in _calls(source, entry_point):
            for index, value in enumerate(args):
                for variant, smallest in _neighbours(value):
                    changed = [*args[:index], variant, *args[index + 1 :]]
                    text = _source(entry_point, changed)
                    if text not in seen:
                        seen.add(text)
                        probes.append((text, smallest))
    return probes


def last_report(stdout: str) -> dict[str, Any] | None:
    """The JSON object on the last line of a check script's output that starts one; None when there
    is none (a script that died, or output that only looks like one)."""
    last = next((line for line in reversed(stdout.splitlines()) if line.startswith("{")), "")
    try:
        report = json.loads(last)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def signature(report: dict[str, Any] | None, count: int) -> str | None:
    """The behaviour a probe run of `count` calls reported (its `last_report`), as one comparable
    string; None when it gave nothing usable (no report, or one of another shape)."""
    results = None if report is None else report.get("results")
    if not isinstance(results, list) or len(results) != count:
        return None
    if not all(isinstance(r, str) and r.startswith(RESULT_FORMS) for r in results):
        return None
    return json.dumps(results)


def crashes(calls: Sequence[str], report: dict[str, Any] | None, boundary: Iterable[str]) -> list[str]:
    """The `boundary` calls (see `boundary_calls`) on which the answer that gave `report` (a probe
    run's `last_report`) crashed or gave no result in time, each with what happened, for a reader:
    `f('') raised IndexError: string index out of range`. A right answer takes the smallest inputs
    of the examples' kind (the implicit oracle fuzzers use); an error the answer raises on purpose,
    or one on an input the task may not allow, is no such failure."""
    if report is None or signature(report, len(calls)) is None:
        return []
    details = report.get("details")
    details = details if isinstance(details, dict) else {}
    smallest = set(boundary)
    found = []
    for index, (call, result) in enumerate(zip(calls, report["results"], strict=True)):
        if call not in smallest:
            continue
        if result.startswith("crashed "):
            message = details.get(str(index))
            found.append(f"{call} raised {result[len('crashed ') :]}" + (f": {message}" if message else ""))
        elif result == "timeout":
            found.append(f"{call} gave no result within {PROBE_SECONDS:g} s")
    return found


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


def _neighbours(value: Any) -> list[tuple[Any, bool]]:
    """Values next to `value`, each with whether it is a smallest of its kind: the empty and the
    shortest, zero and one, then small changes of it (reversed, upper-case, doubled, one more)."""
    if isinstance(value, bool):
        return [(not value, False)]
    if isinstance(value, int):  # no sign flips: what a negative does is often left unsaid
        return [(v, v in (0, 1)) for v in (0, 1, value + 1) if v != value]
    if isinstance(value, float):
        return [(v, v == 0.0) for v in (0.0, value * 2) if v != value]
    if isinstance(value, str):
        smallest = ["", value[:1]]
        changed = [value[::-1], value.upper(), value + " " + value]
        return [(v, v in smallest) for v in [*smallest, *changed] if v != value]
    if isinstance(value, (list, tuple)):
        items = list(value)
        kind = type(value)
        return [(kind(v), i < 2) for i, v in enumerate(([], items[:1], items[::-1], items + items)) if v != items]
    if isinstance(value, dict):
        return [({}, True)] if value else []
    return []


def _spread(probes: list[str], limit: int) -> list[str]:
    """At most `limit` probes, taken evenly across the list (every example and argument keeps some)."""
    if len(probes) <= limit:
        return probes
    step = len(probes) / limit
    return [probes[int(i * step)] for i in range(limit)]
