"""Turning model text into actions.

Small models wrap JSON in code fences, add prose around it, write Python dicts with single quotes,
use OpenAI's or Hermes' tool-call shapes, or emit several actions at once; all of those parse. When
nothing parses, or the arguments do not fit the tool, a `FormatError` says what was wrong in words
meant for the model.

Any string is safe input: the answer is actions or a `FormatError`, never another exception, and
never slow. Brackets are found in one linear pass; the candidates handed to the parsers are bounded
in number, length (for `ast.literal_eval`) and depth; what comes out is plain JSON data whose strings
encode as UTF-8. Numbers a model writes as a score or a choice go through `finite_number`.
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from pydantic import ValidationError

from trellis.errors import FormatError
from trellis.tools import ToolSpec
from trellis.tree import Action, utf8_safe

_TOOL_KEYS = ("tool", "name", "tool_name", "action", "function")
_ARG_KEYS = ("args", "arguments", "parameters", "params", "action_input", "input", "tool_input")
_THOUGHT_KEYS = ("thought", "thoughts", "reasoning", "reason", "explanation")
# Neither pattern lets two greedy runs compete for the same characters, so both match in linear time.
_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```[a-zA-Z0-9_-]*[^\S\n]*\n(.*?)```", re.DOTALL)

_MAX_DEPTH = 64
"""Deepest bracket nesting a candidate may have; no tool call nests deeper, and parsers recurse."""
_MAX_LITERAL = 100_000
"""Longest candidate handed to `ast.literal_eval`, whose syntax tree costs far more than the text."""
_MAX_CANDIDATES = 256
"""Most bracket groups one text may make the parsers try."""
_STRING_START = "{[(,:"
"""Characters after which a quote opens a string in JSON or a Python literal (prose apostrophes follow letters)."""
_NOT_JSON = object()


def finite_number(value: object, *, low: float, high: float) -> float | None:
    """`value` as a float clamped to [low, high], or None when it is not a finite number.

    The one way model-written numbers (a critic's score, a discriminator's choice) are read: ints of
    any size, finite floats and numeric strings are taken, clamped before any conversion can overflow;
    booleans, NaN, infinities and anything else give None.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:  # also raised for ints longer than Python converts
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    # Comparing an int with a float is exact in Python, so a 400-digit int clamps without overflow.
    return float(min(max(value, low), high))


def _json_data(value: Any, depth: int = 0) -> Any:
    """`value` as plain JSON data, or `_NOT_JSON`.

    Tuples become lists and scalar keys strings (as `json.dumps` writes them); every string is made
    UTF-8-safe. Sets, bytes, complex numbers, NaN, infinities and nesting past `_MAX_DEPTH` are not JSON.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else _NOT_JSON
    if depth >= _MAX_DEPTH:
        return _NOT_JSON
    if isinstance(value, list | tuple):
        items = [_json_data(item, depth + 1) for item in value]
        return _NOT_JSON if any(item is _NOT_JSON for item in items) else items
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str):
                name = utf8_safe(key)
            elif key is None or isinstance(key, bool | int) or (isinstance(key, float) and math.isfinite(key)):
                name = json.dumps(key)
            else:
                return _NOT_JSON
            out[name] = _json_data(item, depth + 1)
            if out[name] is _NOT_JSON:
                return _NOT_JSON
        return out
    return _NOT_JSON


def _scan(text: str) -> tuple[list[tuple[int, int]], int]:
    """Spans of the top-level {...} and [...] groups in `text`, and its deepest nesting; one pass.

    Quoted brackets do not count, and a quote opens a string only inside brackets and where a string
    can start (`_STRING_START`), so an apostrophe in prose hides nothing. When a bracket never closes,
    the complete groups inside it count as top-level. Groups nested deeper than `_MAX_DEPTH` are left out.
    """
    stack: list[list[int]] = []  # [start, deepest stack height reached while open]
    spans: list[tuple[int, int]] = []
    inside: list[tuple[int, int, int]] = []  # (start, end, start of the enclosing group)
    deepest, quote, prev = 0, "", ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote, prev = "", ch
        elif ch in "{[":
            stack.append([i, len(stack) + 1])
            deepest = max(deepest, len(stack))
            prev = ch
        elif ch in "}]":
            if stack:
                start, reached = stack.pop()
                if reached - len(stack) <= _MAX_DEPTH:
                    if stack:
                        inside.append((start, i + 1, stack[-1][0]))
                    else:
                        spans.append((start, i + 1))
                if stack:
                    stack[-1][1] = max(stack[-1][1], reached)
            prev = ch
        elif ch in "\"'" and stack and prev in _STRING_START:
            quote = ch
        elif not ch.isspace():
            prev = ch
        i += 1
    unclosed = {start for start, _ in stack}
    spans += [(start, end) for start, end, outer in inside if outer in unclosed]
    return sorted(spans), deepest


def _loads(candidate: str) -> Any:
    """`candidate` parsed as JSON or a Python literal and made plain JSON data; None when it is neither."""
    value: Any = _NOT_JSON
    try:
        value = json.loads(candidate)
    except (ValueError, RecursionError):
        if len(candidate) <= _MAX_LITERAL:
            value = _literal(candidate)
    value = _json_data(value) if value is not _NOT_JSON else _NOT_JSON
    return None if value is _NOT_JSON else value


def literal_data(text: str) -> Any:
    """`text` read as a JSON value or Python literal, as plain JSON data; None when it is neither."""
    return _loads(text)


def _literal(candidate: str) -> Any:
    pythonic = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", candidate)))
    for source in (candidate, pythonic):
        try:
            # Model text is no Python source: its invalid escapes ("\\[") are no news, and a warning
            # turned into an error by the host's settings must not escape either.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ast.literal_eval(source)
        # Every way a literal can fail: bad syntax, a dict in a set ({{}}), too deep, too big.
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
            continue
    return _NOT_JSON


class _Budget:
    """How many more candidates the parsers may try for one text."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _values(chunk: str, budget: _Budget) -> Iterator[Any]:
    """Parsed JSON (or Python-literal) objects and lists found in `chunk`, in order."""
    stripped = chunk.strip()
    spans, deepest = _scan(stripped)
    if stripped.startswith(("{", "[")) and deepest <= _MAX_DEPTH:
        spans.insert(0, (0, len(stripped)))
    seen: set[str] = set()
    for start, end in spans:
        piece = stripped[start:end]
        if piece in seen:
            continue
        if not budget.take():
            return
        seen.add(piece)
        value = _loads(piece)
        if isinstance(value, dict | list):
            yield value


def _candidate_groups(text: str) -> Iterator[list[Any]]:
    """Groups of candidate values, most explicit first: all tool-call tags, all fences, then bare JSON."""
    budget = _Budget(_MAX_CANDIDATES)
    for pattern in (_TAGGED, _FENCED):
        chunks = [m.group(1) for m in pattern.finditer(text)]
        if chunks:
            yield [value for chunk in chunks for value in islice(_values(chunk, budget), 1)]
    for value in _values(text, budget):
        yield [value]


def json_objects(text: str) -> Iterator[dict[str, Any]]:
    """Every JSON (or Python-literal) object found in `text`, most explicit places first.

    Objects are plain JSON data: string keys, finite numbers, UTF-8-safe strings, bounded nesting.
    """
    for group in _candidate_groups(utf8_safe(text)):
        for value in group:
            if isinstance(value, dict):
                yield value


def _first(obj: dict[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for key in keys:
        if key in obj:
            return key, obj[key]
    return None, None


def _to_action(obj: Any) -> Action | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # OpenAI: {"type": "function", "function": {...}}
        inner = dict(obj["function"])
        inner.setdefault("thought", obj.get("thought", ""))
        obj = inner
    tool_key, tool = _first(obj, _TOOL_KEYS)
    if not isinstance(tool, str) or not tool.strip():
        return None
    arg_key, args = _first(obj, _ARG_KEYS)
    if arg_key is None:
        skip = {tool_key, *_THOUGHT_KEYS, "type", "id"}
        args = {k: v for k, v in obj.items() if k not in skip}
    elif isinstance(args, str):
        parsed = _loads(args)
        args = parsed if isinstance(parsed, dict | list) else args
    _, thought = _first(obj, _THOUGHT_KEYS)
    return Action(tool=tool.strip(), args=_normal_args(args), thought=thought if isinstance(thought, str) else "")


def _normal_args(args: Any) -> dict[str, Any]:
    """Arguments as a dict: `null` is no arguments, a list or a single value are positional."""
    if isinstance(args, dict):
        return args
    if args is None:
        return {}
    return {"__positional__": args if isinstance(args, list) else [args]}


def _fit_args(action: Action, tool: ToolSpec) -> Action:
    args = dict(action.args)
    fields = list(tool.args.model_fields)
    if "__positional__" in args:
        values = args.pop("__positional__")
        values = values if isinstance(values, list) else [values]
        if len(values) > len(fields):
            raise FormatError(
                f"{tool.name} takes the arguments {fields}, but got a list of {len(values)} values; "
                f'pass an object such as {{"tool": "{tool.name}", "args": {{"{fields[0] if fields else "x"}": ...}}}}'
            )
        args.update(zip(fields, values, strict=False))
    try:
        validated = tool.args.model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {err['msg']}" for err in exc.errors())
        raise FormatError(f"invalid arguments for {tool.name}: {problems}. Arguments: {tool.describe()}") from exc
    return action.model_copy(update={"args": validated.model_dump(mode="json", exclude_unset=False)})


def parse_actions(text: str, tools: Sequence[ToolSpec] | None = None) -> list[Action]:
    """Every action in `text`, in order; validated against `tools` when given.

    Raises FormatError when no action can be found or an action names an unknown tool or has
    arguments that do not fit.
    """
    text = utf8_safe(text)
    by_name = {tool.name: tool for tool in tools or ()}
    actions: list[Action] = []
    for group in _candidate_groups(text):
        items = [item for value in group for item in (value if isinstance(value, list) else [value])]
        actions = [a for a in (_to_action(item) for item in items) if a is not None]
        if actions:
            break
    if not actions:
        expected = f" naming one of: {', '.join(by_name)}" if by_name else ""
        raise FormatError(
            'no tool call found. Reply with one JSON object {"thought": "...", "tool": "...", "args": {...}}'
            + expected,
            text=text,
        )
    if not actions[0].thought:
        cut = min((i for i in (text.find(m) for m in ("{", "[", "```", "<tool_call>")) if i >= 0), default=0)
        prose = text[:cut].strip()
        if prose:
            actions[0] = actions[0].model_copy(update={"thought": prose})
    if not by_name:
        return actions
    out = []
    for action in actions:
        tool = by_name.get(action.tool)
        if tool is None:
            raise FormatError(f"unknown tool {action.tool[:80]!r}; use one of: {', '.join(by_name)}", text=text)
        try:
            out.append(_fit_args(action, tool))
        except FormatError as exc:
            exc.text = text
            raise
    return out


def parse_action(text: str, tools: Sequence[ToolSpec] | None = None) -> Action:
    """The first action in `text` (see `parse_actions`)."""
    return parse_actions(text, tools)[0]


_JUDGE_TAG = re.compile(r"<\s*judge\s*>\s*(yes|no)\b(?:\s*<\s*/\s*judge\s*>)?", re.I)
_JUDGE_KEY = re.compile(r"[\"']judge[\"']\s*:\s*[\"']?\s*(yes|no|true|false)\b", re.I)
_JUDGE_LINE = re.compile(r"\A\s*\**(yes|no)[.!]?\**[.!]?\s*(?:\n|\Z)", re.I)


def parse_judge(text: str) -> tuple[bool | None, str]:
    """A reply's verdict on the observation it answers (ReSeek's JUDGE), and the reply without its tag.

    The verdict is `<judge>Yes</judge>` or `<judge>No</judge>` anywhere in the reply (the closing tag
    may be missing), a `"judge": "yes"|"no"` field of a JSON reply, or a first line that is Yes or No
    alone (what a small model writes when asked for the tag). True keeps the observation, False drops
    it from later prompts, None: the reply gives no verdict. The first verdict counts.
    """
    tag = _JUDGE_TAG.search(text)
    if tag is not None:
        cleaned = (text[: tag.start()] + text[tag.end() :]).strip()
        return tag.group(1).lower() == "yes", cleaned
    key = _JUDGE_KEY.search(text)
    if key is not None:
        return key.group(1).lower() in ("yes", "true"), text
    line = _JUDGE_LINE.match(text)
    if line is not None:
        return line.group(1).lower() == "yes", text[line.end() :].strip()
    return None, text
