"""The markdown action format: a thought in prose, then one action, code in fenced blocks.

Small models write code far better in a fenced block than escaped inside a JSON string, so this is
the default format for local models (JSON tool calls stay for servers with native tool calling).
One reply holds a thought and one action, in one of four forms:

- a whole file: the file's path on its own line, then the content in a fenced block;
- an edit: the path, then a fenced block holding `<<<<<<< SEARCH` / `=======` / `>>>>>>> REPLACE`;
- a shell command: a ```bash block;
- any other tool: its name and arguments on one line (`view_file src/app.py 10 40`, `finish`),
  in a fenced block or on the reply's last line (in a reply of plain lines that goes on to play the
  turns after its action, the first bare command line).

The parser forgives the usual slips: a missing path when the world names a default file, a path
written as a comment on the block's first line, a missing closing fence, markup around the path or
the tool name. Anything it cannot read is a `FormatError` that says how to write it instead.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from trellis.errors import FormatError
from trellis.parsing import literal_data
from trellis.tools import ToolSpec
from trellis.tree import Action, utf8_safe

_SHELL_INFOS = {"bash", "sh", "shell", "console", "zsh", "terminal"}
# Lenient on purpose: small models write `<<<< search`, `<<<<<<< SEARCH:` or git's `<<<<<<< HEAD`.
_SEARCH, _DIVIDER, _REPLACE = (
    re.compile(r"^<{3,}\s*(?:search|original|head|old)?\W*$", re.I),
    re.compile(r"^={3,}\s*$"),
    re.compile(r"^>{3,}\s*(?:replace|updated|new|\S*)?\W*$", re.I),
)
_PATH = re.compile(r"^[\w./\\-]*[A-Za-z_]\w*\.[A-Za-z]\w*$|^[\w.-]+(/[\w.-]+)+$")
_NOT_CODE = {"output", "diff", "patch", "console", "pycon", "text", "log", "stdout", "json"}
_LEAD = re.compile(r"^(?:#+\s*|[-*>]\s+|\d+[.)]\s+)?(?:(?:file(?:name)?|path|action|tool|command)\s*[:=]\s*)?", re.I)
_MAX_REPLY = 200_000
_LANG_BY_SUFFIX = {".py": "python", ".js": "javascript", ".ts": "typescript", ".sh": "bash", ".md": "markdown"}
WRITE_TOOLS = ("write_file", "create_file")


@dataclass
class _Block:
    info: str
    body: str
    before: str
    """The nearest non-empty line above the opening fence."""
    start: int
    """Index of the opening fence line."""


def _blocks(lines: list[str]) -> list[_Block]:
    """Fenced blocks, in order; an unclosed block runs to the end of the reply."""
    blocks = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        match = re.match(r"^(`{3,}|~{3,})\s*([^`\s]*)", stripped)
        if match is None:
            i += 1
            continue
        fence, info = match.group(1), match.group(2).lower()
        before = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence)) and not body_opens(lines[j])):
            body.append(lines[j])
            j += 1
        blocks.append(_Block(info=info, body="\n".join(body), before=before, start=i))
        i = j + 1
    return blocks


def body_opens(line: str) -> bool:
    """A fence line with an info string inside a block opens a nested block (```python in a README)."""
    stripped = line.strip().lstrip("`~")
    return bool(stripped) and not stripped.isspace()


def _clean_path(line: str) -> str | None:
    """A file path written on its own line, without the markup models put around it."""
    text = _LEAD.sub("", line.strip()).strip().strip("*_`'\":").strip()
    text = text.removeprefix("./")
    if not text or " " in text or len(text) > 300:
        return None
    return text if _PATH.match(text) else None


def _search_replace(body: str) -> tuple[str, str] | None:
    lines = body.split("\n")
    starts = [i for i, line in enumerate(lines) if _SEARCH.match(line.strip())]
    if not starts:
        return None
    s = starts[0]
    d = next((i for i in range(s + 1, len(lines)) if _DIVIDER.match(lines[i].strip())), None)
    if d is None:
        raise FormatError("the edit block has `<<<<<<< SEARCH` but no `=======` line between the old and new text")
    r = next((i for i in range(d + 1, len(lines)) if _REPLACE.match(lines[i].strip())), len(lines))
    return "\n".join(lines[s + 1 : d]), "\n".join(lines[d + 1 : r])


def _fields(tool: ToolSpec) -> list[tuple[str, bool, Any]]:
    """(name, required, annotation) of the tool's arguments, in order."""
    return [(name, field.is_required(), field.annotation) for name, field in tool.args.model_fields.items()]


def _command_args(tool: ToolSpec, rest: str) -> dict[str, Any]:
    """Arguments from the text after a tool's name on a command line."""
    fields = _fields(tool)
    rest = rest.strip()
    if not fields or not rest:
        return {}
    one_text = len(fields) == 1 or (all(not required for _, required, _ in fields[1:]) and fields[0][2] is str)
    if one_text and rest[0] not in "'\"" and (len(fields) == 1 or not _looks_positional(rest)):
        # one text argument takes the whole rest of the line (a shell command, a reason, a pattern)
        return {fields[0][0]: rest}
    try:
        tokens = shlex.split(rest)
    except ValueError:
        tokens = rest.split()
    args: dict[str, Any] = {}
    for k, (name, _, _) in enumerate(fields):
        if k >= len(tokens):
            break
        args[name] = " ".join(tokens[k:]) if k == len(fields) - 1 else tokens[k]
    return args


def _looks_positional(rest: str) -> bool:
    """`view_file a.py 10 20`-style arguments (a path followed by numbers) rather than one phrase."""
    parts = rest.split()
    return len(parts) > 1 and parts[1].isdigit()


def _one_text(text: str) -> str:
    """A tool's one text argument: a shell-quoted phrase (`'the founder'"'"'s town'`) read as the shell
    reads it, several quoted words as written, else the text without a pair of quotes around it."""
    if text.startswith(("'", '"')):
        try:
            tokens = shlex.split(text)
        except ValueError:
            tokens = []
        if len(tokens) == 1:
            return tokens[0]
        if len(tokens) > 1:
            return text  # several quoted words (`'pytest' -k 'x'`): as written
    return _unquote(text)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        return text[1:-1]
    return text


def _command(line: str, by_name: dict[str, ToolSpec]) -> Action | None:
    """`tool args...` on one line, with markup stripped; None when the line names no tool."""
    text = _LEAD.sub("", line.replace("**", "").strip().strip("`").strip()).strip().strip("*`").strip()
    match = re.match(r"^([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*(.*)$", text, re.S)
    if match is None or match.group(1) not in by_name:
        return None
    tool = by_name[match.group(1)]
    rest = match.group(2) if match.group(2) is not None else match.group(3)
    described = _described(tool)
    if described:  # the format help's line, copied whole
        rest = rest.removesuffix(f"({described})").rstrip()
    if match.group(2) is not None and "=" in rest:  # tool(path="a.py", start=3): keyword style
        args = _keyword_args(rest, [f[0] for f in _fields(tool)])
        if args is not None:
            return Action(tool=tool.name, args=args)
    if len(_fields(tool)) == 1 and rest:
        return Action(tool=tool.name, args={_fields(tool)[0][0]: _one_text(rest.strip())})
    return Action(tool=tool.name, args=_command_args(tool, rest or ""))


def _keyword_args(text: str, names: list[str]) -> dict[str, Any] | None:
    """`"a.py", start=3` as {"path": "a.py", "start": 3}; values must be plain JSON data."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(call, ast.Call):
        return None
    args: dict[str, Any] = {}
    pairs = [(name, node) for name, node in zip(names, call.args, strict=False)]
    pairs += [(k.arg, k.value) for k in call.keywords if k.arg]
    for name, node in pairs:
        segment = ast.get_source_segment(f"f({text})", node)
        value = literal_data(segment) if segment is not None else None
        if value is None and (segment or "").strip() not in ("None", "null"):
            return None
        args[name] = value
    return args


def _validate(action: Action, by_name: dict[str, ToolSpec], text: str) -> Action:
    tool = by_name[action.tool]
    try:
        validated = tool.args.model_validate(action.args)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'args'}: {e['msg']}" for e in exc.errors())
        raise FormatError(f"invalid arguments for {tool.name}: {problems}. Usage: {usage(tool)}", text=text) from exc
    return action.model_copy(update={"args": validated.model_dump(mode="json")})


def _thought(lines: list[str], end: int) -> str:
    prose = "\n".join(lines[:end]).strip()
    return prose[:2000]


def parse_markdown_action(text: str, tools: Sequence[ToolSpec], *, default_path: str | None = None) -> Action:
    """The action in a markdown reply, validated against `tools`; FormatError when there is none."""
    by_name = {tool.name: tool for tool in tools}
    text = utf8_safe(text[:_MAX_REPLY])  # a lone surrogate would break the tree store's JSON later
    lines = text.replace("\r\n", "\n").split("\n")
    blocks = _blocks(lines)
    write_tool = next((name for name in WRITE_TOOLS if name in by_name), None)
    for block in blocks:
        body = block.body
        first = next((line for line in body.split("\n") if line.strip()), "")
        path = _clean_path(block.before)
        thought_end = block.start - (1 if path else 0)
        edit = _search_replace(body)
        if edit is not None:
            path = path or _comment_path(first) or default_path
            if "replace" not in by_name:
                raise FormatError("edit blocks cannot be used here; " + _forms_hint(by_name), text=text)
            if path is None:
                raise FormatError("write the file's path on the line just before the edit block", text=text)
            action = Action(tool="replace", args={"path": path, "old": edit[0], "new": edit[1]})
            return _validate(action.model_copy(update={"thought": _thought(lines, thought_end)}), by_name, text)
        one_line = body.strip().count("\n") == 0
        command = _command(first, by_name) if first and (one_line or block.info in _SHELL_INFOS) else None
        if command is not None and (one_line or block.info in _SHELL_INFOS or block.info in ("", "tool")):
            # `finish` or `view_file a.py` in a block is that tool, whatever the block's language
            if command.tool == "shell" and "\n" in body.strip():
                command = Action(tool="shell", args={"command": body.strip().split(None, 1)[1]})
            return _validate(command.model_copy(update={"thought": _thought(lines, block.start)}), by_name, text)
        if block.info in _SHELL_INFOS:
            if "shell" not in by_name:
                raise FormatError("shell commands cannot be run here; " + _forms_hint(by_name), text=text)
            script = "\n".join(line.removeprefix("$ ") for line in body.strip().split("\n"))
            action = Action(tool="shell", args={"command": script})
            return _validate(action.model_copy(update={"thought": _thought(lines, block.start)}), by_name, text)
        if write_tool is None or block.info in _NOT_CODE or first.lstrip().startswith(">>>"):
            continue  # program output, a diff or a doctest session is no file content
        named = _comment_path(first)
        if path is None and named is not None:
            path, body = named, body.split("\n", 1)[1] if "\n" in body else ""
        path = path or default_path
        if path is None:
            raise FormatError("write the file's path on the line just before the code block", text=text)
        if not body.strip():
            raise FormatError(f"the code block for {path} is empty; put the whole file's content in it", text=text)
        action = Action(tool=write_tool, args={"path": path, "content": body.rstrip("\n") + "\n"})
        return _validate(action.model_copy(update={"thought": _thought(lines, thought_end)}), by_name, text)
    # No usable block: a tool named alone on the reply's last line (`finish`, `view_file a.py`).
    last = max((i for i, line in enumerate(lines) if line.strip()), default=None)
    if last is not None:
        command = _command(lines[last], by_name)
        if command is not None and _plain_command(lines[last], command, by_name):
            if not blocks:
                # a small model may write the turns after its action too (the action, then another, then
                # the answer it imagines): in a reply of plain lines, the first bare command is what it
                # does now; a line in a list or ending like a sentence is its thinking
                for i in range(last):
                    if (found := _bare_command(lines[i], by_name)) is not None:
                        command, last = found, i
                        break
            return _validate(command.model_copy(update={"thought": _thought(lines, last)}), by_name, text)
    raise FormatError("no action found. " + _forms_hint(by_name), text=text)


_DEFINES = re.compile(r"^\s*(?:async\s+def|def|class)\s+\w", re.M)


def code_reply(text: str, path: str, tools: Sequence[ToolSpec]) -> Action:
    """A reply that answers with code (a function, a corrected definition) as a write of `path`.

    The code is the first fenced block that defines a function or class, else the first block that
    is code at all (not shell, output or a doctest session); what precedes it is the thought.
    FormatError when the reply holds no code or the tools offer no way to write a file.
    """
    text = utf8_safe(text[:_MAX_REPLY])
    by_name = {tool.name: tool for tool in tools}
    write_tool = next((name for name in WRITE_TOOLS if name in by_name), None)
    if write_tool is None:
        raise FormatError("files cannot be written here", text=text)
    lines = text.replace("\r\n", "\n").split("\n")
    code = [
        b
        for b in _blocks(lines)
        if b.body.strip()
        and b.info not in _SHELL_INFOS
        and b.info not in _NOT_CODE
        and not b.body.lstrip().startswith(">>>")
    ]
    block = next((b for b in code if _DEFINES.search(b.body)), code[0] if code else None)
    if block is None:
        raise FormatError("no code found: reply with the code in one ```python code block", text=text)
    action = Action(
        tool=write_tool,
        args={"path": path, "content": block.body.rstrip("\n") + "\n"},
        thought=_thought(lines, block.start),
    )
    return _validate(action, by_name, text)


def _bare_command(line: str, by_name: dict[str, ToolSpec]) -> Action | None:
    """The command of a line that holds one alone: not in a list or under a heading, not ending like a
    sentence; None for any other line."""
    stripped = line.strip()
    lead = _LEAD.match(stripped)
    if not stripped or (lead is not None and lead.group(0)) or stripped.endswith((".", "!", "?", ":", ",")):
        return None
    command = _command(line, by_name)
    return command if command is not None and _plain_command(line, command, by_name) else None


def _plain_command(line: str, command: Action, by_name: dict[str, ToolSpec]) -> bool:
    """A command line rather than prose that starts with a tool's name ("finish the function by ...")."""
    words = re.sub(r"[*`]", "", _LEAD.sub("", line.replace("**", "").strip().strip("`").strip())).split()
    fields = _fields(by_name[command.tool])
    if not fields:
        return len(words) == 1 or all(not re.search(r"\w", w) for w in words[1:])
    if command.tool == "run_tests":
        return len(words) == 1  # `run_tests to see what fails` is prose, not a test command
    free_text = fields[0][0] in ("reason", "command", "pattern", "text", "query")
    return len(words) <= (40 if free_text else 6)


def _comment_path(line: str) -> str | None:
    """`# solution.py` or `# file: src/app.py` as the first line of a block."""
    stripped = line.strip()
    if not stripped.startswith(("#", "//")):
        return None
    return _clean_path(stripped.lstrip("#/ "))


def _forms_hint(by_name: dict[str, ToolSpec]) -> str:
    forms = []
    if any(name in by_name for name in WRITE_TOOLS):
        forms.append("a file's path on one line followed by its whole content in a ``` block")
    if "replace" in by_name:
        forms.append("a path followed by a ``` block with <<<<<<< SEARCH / ======= / >>>>>>> REPLACE")
    if "shell" in by_name:
        forms.append("a ```bash block with one command")
    others = [name for name in by_name if name not in (*WRITE_TOOLS, "replace", "shell", "insert")]
    if others:
        # written out (`answer TEXT`), so that a reply that only states what it found sees how to act on it
        calls = ", ".join(usage(by_name[name]) for name in others)
        forms.append(f"a tool name and its arguments alone on the last line ({calls})")
    return "Reply with a short thought and then exactly one of: " + "; ".join(forms) + "."


def _described(tool: ToolSpec) -> str:
    """What the format help says a tool does, after its usage line."""
    return tool.description.strip().rstrip(".")


def usage(tool: ToolSpec) -> str:
    """`view_file PATH [START] [END]`: how a tool is called on a command line."""
    parts = [tool.name]
    for name, required, _ in _fields(tool):
        parts.append(name.upper() if required else f"[{name.upper()}]")
    return " ".join(parts)


def _lang(path: str) -> str:
    for suffix, lang in _LANG_BY_SUFFIX.items():
        if path.endswith(suffix):
            return lang
    return ""


def render_markdown_action(action: Action, tools: Sequence[ToolSpec] = ()) -> str:
    """The canonical markdown form of an action (how the transcript shows what the model did).

    With the world's `tools`, a command line is written as a model writes it, `search founder of the
    bank`, wherever it reads back as the same arguments; otherwise its values are shell-quoted."""
    thought = action.thought.strip()
    head = f"{thought}\n\n" if thought else ""
    args = action.args
    if action.tool in WRITE_TOOLS and {"path", "content"} <= set(args):
        content = str(args["content"]).rstrip("\n")
        return f"{head}{args['path']}\n```{_lang(str(args['path']))}\n{content}\n```"
    if action.tool == "replace" and {"path", "old", "new"} <= set(args):
        return (
            f"{head}{args['path']}\n```{_lang(str(args['path']))}\n<<<<<<< SEARCH\n{args['old']}\n=======\n"
            f"{args['new']}\n>>>>>>> REPLACE\n```"
        )
    if action.tool == "shell" and "command" in args:
        return f"{head}```bash\n{args['command']}\n```"
    present = [v for v in args.values() if v is not None]
    spec = next((tool for tool in tools if tool.name == action.tool), None)
    if spec is not None:
        plain = _plain_line(action, spec)
        if plain is not None:
            return f"{head}{plain}"
    return f"{head}{' '.join([action.tool, *(_quote(v) for v in present)])}"


def _plain_line(action: Action, spec: ToolSpec) -> str | None:
    """`search def add`: the action's arguments unquoted, trailing ones at their default left out, when
    that line reads back as the same validated arguments; None when it does not."""
    fields = spec.args.model_fields
    values = [(name, action.args.get(name)) for name in fields]
    while values and (values[-1][1] is None or values[-1][1] == fields[values[-1][0]].default):
        values.pop()
    if any(value is None or not isinstance(value, str | int) or "\n" in str(value) for _, value in values):
        return None
    plain = " ".join([action.tool, *(str(value) for _, value in values)])
    by_name = {spec.name: spec}
    parsed = _command(plain, by_name)
    if parsed is None or not _plain_command(plain, parsed, by_name):
        return None
    try:
        same = spec.args.model_validate(parsed.args).model_dump() == spec.args.model_validate(action.args).model_dump()
    except ValidationError:
        return None
    return plain if same else None


def _quote(value: object) -> str:
    text = str(value)
    if text and re.fullmatch(r"[\w./:-]+", text):
        return text
    return shlex.quote(text)


def markdown_format_help(tools: Sequence[ToolSpec], *, example_path: str = "path/to/file.py") -> str:
    """The instruction text that tells a model how to act in the markdown format."""
    by_name = {tool.name: tool for tool in tools}
    forms: list[str] = []
    if any(name in by_name for name in WRITE_TOOLS):
        forms.append(
            f"Write a whole file: its path on one line, then the complete content in a code block:\n"
            f"{example_path}\n```{_lang(example_path)}\n...the whole file...\n```"
        )
    if "replace" in by_name:
        forms.append(
            f"Change part of a file: its path, then the exact old lines and the new ones:\n{example_path}\n"
            f"```{_lang(example_path)}\n<<<<<<< SEARCH\nold lines, copied exactly\n=======\nnew lines\n"
            ">>>>>>> REPLACE\n```"
        )
    if "shell" in by_name:
        forms.append('Run a shell command:\n```bash\ngrep -n "def " ' + example_path + "\n```")
    others = [tool for tool in tools if tool.name not in (*WRITE_TOOLS, "replace", "shell", "insert", "create_file")]
    if others:
        listing = "\n".join(f"{usage(tool)}  ({_described(tool)})" for tool in others)
        forms.append(
            f"Use a tool: its name and arguments alone on the last line, for example `{others[0].name}`:\n{listing}"
        )
    numbered = "\n\n".join(f"{i}. {form}" for i, form in enumerate(forms, 1))
    return f"Each reply: one or two sentences of reasoning, then exactly one action:\n\n{numbered}"
