"""Checks read from an issue: the calls it shows and the values it says they should return.

An issue such as "`tinycalc.add(2, 3)` returns -1 instead of 5" carries its own reproduction test.
`issue_checks` finds such calls (inline code of the form `module.function(...)`) and, where the
sentence says what the call should give ("instead of 5", "should return 'hello-world'", "expected
[1, 2]"), the expected value. A code world runs the calls in the sandbox after every change and
shows what they return; calls with an expected value count as visible tests, the only ones a small
model gets for an issue whose tests are hidden; a call that still fails but now returns a value
nearer the expected one than the original code did reports how much nearer (`progress`), partial
credit for the search's value. Everything runs inside the sandbox: the issue's text is data for the
sandboxed interpreter, never for the host.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass

from trellis.parsing import literal_data

_CALL = re.compile(r"`([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+\([^`\n]{0,200}\))`")
_EXPECT = re.compile(
    r"\b(?:instead of|should (?:return|be|give|print|equal)|but should (?:return|be)|expected(?: to (?:be|return))?"
    r"|must (?:return|be))\s*:?\s*",
    re.I,
)
_LITERAL = re.compile(r"""`?(-?\d+(?:\.\d+)?|'[^'\n]*'|"[^"\n]*"|True|False|None|\[[^\]\n]*\]|\([^)\n]*\))`?""")
MAX_CHECKS = 5


@dataclass(frozen=True)
class IssueCheck:
    expression: str
    """A call as the issue writes it: `tinycalc.add(2, 3)`."""
    expected: str | None
    """The repr of the value the issue says it should give, where it says so."""

    @property
    def name(self) -> str:
        return f"issue: {self.expression}"


def issue_checks(issue: str) -> list[IssueCheck]:
    """The calls an issue shows, each with the value it should give when the issue says so."""
    checks: list[IssueCheck] = []
    for match in _CALL.finditer(issue):
        expression = match.group(1)
        sentence_end = re.search(r"(?<!\d)[.;!?](?:\s|$)|\n\n|`[A-Za-z_]\w*(?:\.\w+)+\(", issue[match.end() :])
        rest = issue[match.end() : match.end() + (sentence_end.start() if sentence_end else 300)]
        expected = None
        cue = _EXPECT.search(rest)
        if cue is not None and (literal := _LITERAL.match(rest[cue.end() :])) is not None:
            value = literal_data(literal.group(1))
            if value is not None or literal.group(1) == "None":
                expected = repr(tuple(value) if literal.group(1).startswith("(") and isinstance(value, list) else value)
        if all(c.expression != expression for c in checks):
            checks.append(IssueCheck(expression, expected))
    return checks[:MAX_CHECKS]


# Runs in the sandbox: each call with its top-level module imported; one JSON line of reprs.
RUNNER = r"""
import importlib, json, sys
results = []
for expression in json.loads(sys.stdin.read()):
    parts = expression.split("(")[0].split(".")
    try:
        for end in range(len(parts) - 1, 0, -1):  # the longest importable prefix: pkg.mod for pkg.mod.f
            try:
                importlib.import_module(".".join(parts[:end]))
                break
            except ImportError:
                if end == 1:
                    raise
        value = eval(expression, {parts[0]: importlib.import_module(parts[0])})
        results.append({"ok": True, "repr": repr(value)})
    except BaseException as exc:
        results.append({"ok": False, "repr": f"{type(exc).__name__}: {exc}"[:300]})
print(json.dumps(results))
"""


@dataclass(frozen=True)
class ChecksReport:
    """What running an issue's calls showed."""

    statuses: dict[str, str]
    """PASSED or FAILED for each check with an expected value."""
    text: str
    """What the agent is shown."""
    progress: dict[str, float]
    """For each failing check whose call now returns a value nearer the expected one than the value
    the original code returned, how much nearer (`progress`)."""
    returned: dict[str, str]
    """The repr of what each call returned, by check name; a call that raised, or that the runner gave
    no result for (it timed out, the runner crashed), is missing."""


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def _number(text: str) -> float | None:
    if len(text) > 40:  # no number; and a long repr is not parsed for nothing
        return None
    value = literal_data(text)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def progress(got: str, expected: str, before: str) -> float:
    """How far `got` moved from `before` (what the original code returned) toward `expected`, from 0
    to 1 (`expected` itself), all three reprs: the share of the original's distance from the
    expected value that is gone. Numbers by their difference (the original -1 and 5 due: 4 is 0.83
    of the way, 50 none); anything else by `difflib`'s ratio of the reprs, memory addresses masked
    ('hello-world-' for 'hello-world', the original 'hello---world-': 0.64). The original value
    itself, or anything no nearer, is 0; a number where none is due, or the other way round, 0; so
    is a value more than ten times the expected one's length."""
    got, expected, before = (_ADDRESS.sub("0x", text) for text in (got, expected, before))
    if got == before:
        return 0.0
    now, due, start = (_number(text) for text in (got, expected, before))
    if now is not None or due is not None or start is not None:  # numbers as numbers, or not at all
        if now is None or due is None or start is None or start == due:
            return 0.0
        return max(1.0 - abs(now - due) / abs(start - due), 0.0)
    # a value many times the expected one's length is not near it, and is not compared (quadratic)
    limit = 10 * len(expected) + 200
    if len(got) > limit:
        return 0.0
    near = difflib.SequenceMatcher(None, got, expected, autojunk=False).ratio()
    away = difflib.SequenceMatcher(None, before, expected, autojunk=False).ratio() if len(before) <= limit else 0.0
    return max((near - away) / (1.0 - away), 0.0) if away < 1.0 else 0.0


def checks_report(
    checks: list[IssueCheck], stdout: str, timed_out: bool, before: dict[str, str] | None = None
) -> ChecksReport:
    """What the runner's output says: a status per check with an expected value, text for the agent,
    and the progress of failing checks against `before` (what each call gave on the original code,
    by check name, from an earlier report's `returned`). A check makes progress only from a value the
    original code returned: where it raised, or gave no result, how near an answer came is not
    measured."""
    if timed_out:
        timed = {c.name: "FAILED" for c in checks if c.expected}
        return ChecksReport(timed, "The issue's examples did not finish in time.", {}, {})
    last = next((line for line in reversed(stdout.splitlines()) if line.startswith("[")), "[]")
    try:
        results = json.loads(last)
    except ValueError:
        results = []
    statuses: dict[str, str] = {}
    moved: dict[str, float] = {}
    returned: dict[str, str] = {}
    lines = ["The issue's examples now give:"]
    for check, result in zip(checks, results, strict=False):
        got = str(result.get("repr", ""))
        if result.get("ok"):
            returned[check.name] = got
        if check.expected is None:
            lines.append(f"  {check.expression} -> {got}")
            continue
        passed = bool(result.get("ok")) and got == check.expected
        statuses[check.name] = "PASSED" if passed else "FAILED"
        verdict = "as the issue expects" if passed else f"but the issue expects {check.expected}"
        original = (before or {}).get(check.name)
        if not passed and result.get("ok") and original is not None:
            share = round(min(progress(got, check.expected, original), 0.99), 3)  # a failing check stays below 1
            if share > 0:
                moved[check.name] = share
                verdict += f"; nearer than the original code's {original}"
        lines.append(f"  {check.expression} -> {got} ({verdict})")
    if len(results) < len(checks):
        lines.append("  (the examples could not be run: " + (stdout.strip()[-300:] or "no output") + ")")
        statuses.update({c.name: "FAILED" for c in checks if c.expected and c.name not in statuses})
    if statuses and all(status == "PASSED" for status in statuses.values()):
        lines.append("Every example now gives what the issue expects. If the change is complete, reply with: finish")
    elif statuses:
        lines.append("Change the source so that the examples give what the issue expects.")
    return ChecksReport(statuses, "\n".join(lines), moved, returned)
