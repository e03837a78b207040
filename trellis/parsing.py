"""Turning model text into actions.

Small models wrap JSON in code fences, add prose around it, write Python dicts with single quotes,
use OpenAI's or Hermes' tool-call shapes, or emit several actions at once; all of those parse. When
nothing parses, or the arguments do not fit the tool, a `FormatError` says what was wrong in words
meant for the model.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from pydantic import ValidationError

from trellis.errors import FormatError
from trellis.tools import ToolSpec
from trellis.tree import Action

_TOOL_KEYS = ("tool", "name", "tool_name", "action", "function")
_ARG_KEYS = ("args", "arguments", "parameters", "params", "action_input", "input", "tool_input")
_THOUGHT_KEYS = ("thought", "thoughts", "reasoning", "reason", "explanation")
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```[a-zA-Z0-9_-]*\s*\n(.*?)```", re.DOTALL)


def _closing(text: str, start: int) -> int | None:
    """Index just past the bracket that closes the one at `start`, ignoring quoted brackets."""
    depth, quote = 0, ""
    j = start
    while j < len(text):
        ch = text[j]
        if quote:
            if ch == "\\":
                j += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return None


def _balanced_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of top-level {...} and [...] groups in `text`."""
    i = 0
    while i < len(text):
        if text[i] in "{[" and (end := _closing(text, i)) is not None:
            yield i, end
            i = end
        else:
            i += 1


def _loads(candidate: str) -> Any:
    try:
        return json.loads(candidate)
    except ValueError:
        pass
    pythonic = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", candidate)))
    for source in (candidate, pythonic):
        try:
            return ast.literal_eval(source)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    return None


def _values(chunk: str) -> Iterator[Any]:
    """Parsed JSON (or Python-literal) objects and lists found in `chunk`, in order."""
    stripped = chunk.strip()
    spans = [(0, len(stripped))] if stripped[:1] in "{[" else []
    spans += list(_balanced_spans(stripped))
    seen: set[str] = set()
    for start, end in spans:
        piece = stripped[start:end]
        if piece not in seen:
            seen.add(piece)
            value = _loads(piece)
            if isinstance(value, dict | list):
                yield value


def _candidate_groups(text: str) -> Iterator[list[Any]]:
    """Groups of candidate values, most explicit first: all tool-call tags, all fences, then bare JSON."""
    for pattern in (_TAGGED, _FENCED):
        chunks = [m.group(1) for m in pattern.finditer(text)]
        if chunks:
            yield [value for chunk in chunks for value in islice(_values(chunk), 1)]
    for value in _values(text):
        yield [value]


def json_objects(text: str) -> Iterator[dict[str, Any]]:
    """Every JSON (or Python-literal) object found in `text`, most explicit places first."""
    for group in _candidate_groups(text):
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
    if isinstance(args, str):
        parsed = _loads(args)
        args = parsed if isinstance(parsed, dict | list) else args
    if arg_key is None:
        skip = {tool_key, *_THOUGHT_KEYS, "type", "id"}
        args = {k: v for k, v in obj.items() if k not in skip}
    _, thought = _first(obj, _THOUGHT_KEYS)
    if not isinstance(args, dict):
        args = {"__positional__": args if isinstance(args, list) else [args]}
    return Action(tool=tool.strip(), args=args, thought=thought if isinstance(thought, str) else "")


def _fit_args(action: Action, tool: ToolSpec) -> Action:
    args = dict(action.args)
    fields = list(tool.args.model_fields)
    if "__positional__" in args:
        values = args.pop("__positional__")
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
            raise FormatError(f"unknown tool {action.tool!r}; use one of: {', '.join(by_name)}", text=text)
        try:
            out.append(_fit_args(action, tool))
        except FormatError as exc:
            exc.text = text
            raise
    return out


def parse_action(text: str, tools: Sequence[ToolSpec] | None = None) -> Action:
    """The first action in `text` (see `parse_actions`)."""
    return parse_actions(text, tools)[0]
