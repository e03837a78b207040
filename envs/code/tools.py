"""The tools an agent uses in a code world, each with typed arguments and a short observation.

File tools work on the workspace through the world's `files` (paths forgiven their usual slips, and
kept inside the workspace, links included), wherever it is; commands (tests, shell) run in the sandbox.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from trellis.envs.code.files import MAX_READ, Place, find_loose
from trellis.envs.code.merge import merge_python
from trellis.envs.code.testlog import PASSING

from trellis.errors import UserError
from trellis.tools import ToolSpec
from trellis.tree import Observation

if TYPE_CHECKING:
    from trellis.envs.code.world import CodeWorld

MAX_OBSERVATION = 6000


class ViewFileArgs(BaseModel):
    path: str = Field(description="file path relative to the repository root")
    start: int = Field(default=1, ge=1, description="first line to show")
    end: int | None = Field(default=None, ge=1, description="last line to show (default: start + 79)")


class SearchArgs(BaseModel):
    pattern: str = Field(description="a Python regular expression")
    path: str = Field(default=".", description="folder or file to search")


class FindFileArgs(BaseModel):
    name: str = Field(description="file name or part of it, e.g. config.py")


class FindSymbolArgs(BaseModel):
    name: str = Field(description="class or function name, e.g. Config or Config.from_file")


class ReplaceArgs(BaseModel):
    path: str = Field(description="file to edit")
    old: str = Field(description="text to replace; must occur once (whitespace differences are forgiven)")
    new: str = Field(description="replacement text")


class CreateFileArgs(BaseModel):
    path: str = Field(description="new file path")
    content: str = Field(description="the whole file content")


class InsertArgs(BaseModel):
    path: str = Field(description="file to edit")
    line: int = Field(ge=0, description="insert after this line number (0 = at the top)")
    text: str = Field(description="lines to insert")


class RunTestsArgs(BaseModel):
    command: str | None = Field(default=None, description="test command (default: the task's)")


class ShellArgs(BaseModel):
    command: str = Field(description="a shell command")
    timeout: float = Field(default=60, gt=0, le=600)


class NoArgs(BaseModel):
    pass


class RejectArgs(BaseModel):
    reason: str = Field(description="why this approach cannot work")


START_STATE = "start"


class RevertArgs(BaseModel):
    state: str = Field(description="'start' for the task's starting files, or the id of an earlier state")


def _clip(text: str, limit: int = MAX_OBSERVATION) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


async def _where(world: CodeWorld, path: str) -> Place:
    """The file the model meant (see `files.candidates`)."""
    return await world.files.locate(path)


def _has(world: CodeWorld, tool: str) -> bool:
    return any(spec.name == tool for spec in world.tools)


def _locate_hint(world: CodeWorld, what: str = "it") -> str:
    if _has(world, "find_file"):
        return f"use find_file to locate {what}"
    if _has(world, "shell"):
        return f"use shell (e.g. `find . -name '*.py'`) to locate {what}"
    return "check the path against the task statement"


def _view_hint(world: CodeWorld, path: str) -> str:
    if _has(world, "view_file"):
        return f"view_file {path} to copy the exact lines"
    return "copy the exact lines from the file"


def _edit_hint(world: CodeWorld) -> str:
    for tool, use in (("insert", "add lines with insert"), ("write_file", "rewrite the whole file with write_file")):
        if _has(world, tool):
            return use
    return "rewrite the file"


async def view_file(world: CodeWorld, args: ViewFileArgs) -> Observation:
    place = await _where(world, args.path)
    rel = place.rel
    if place.kind == "dir":
        raise UserError(f"{rel} is a folder, not a file; {_locate_hint(world, 'a file in it')}")
    text = await world.files.read(rel) if place.kind == "file" else None
    if text is None:
        if place.kind == "file":
            raise UserError(f"{rel} is binary or larger than {MAX_READ // 2**20} MiB; use search to find lines in it")
        raise UserError(f"{args.path} is not a file in the repository; {_locate_hint(world)}")
    lines = text.splitlines()
    end = min(args.end or args.start + 79, len(lines))
    if args.start > max(len(lines), 1):
        raise UserError(f"{rel} has {len(lines)} lines; start must be at most {len(lines)}")
    body = "\n".join(f"{n:>5} {lines[n - 1]}" for n in range(args.start, end + 1))
    header = f"{rel} (lines {args.start}-{end} of {len(lines)})"
    return Observation(
        text=_clip(f"{header}\n{body}"),
        data={"path": rel, "start": args.start, "end": end, "total_lines": len(lines)},
    )


async def search(world: CodeWorld, args: SearchArgs) -> Observation:
    try:
        regex = re.compile(args.pattern)
    except re.error as exc:
        raise UserError(
            f"invalid regular expression {args.pattern!r}: {exc}; escape special characters such as ( [ . * "
            "with a backslash, or search for a plain word"
        ) from exc
    place = await _where(world, args.path)
    rel = place.rel
    if place.kind == "missing":
        raise UserError(f"{args.path} is not in the repository; search everything with path '.'")

    def scan(texts: list[tuple[str, str]]) -> list[tuple[str, int, str]]:
        hits = []
        for path, text in texts:
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    hits.append((path, number, line.strip()[:200]))
                    if len(hits) >= 200:
                        return hits
        return hits

    hits = await asyncio.to_thread(scan, await world.files.texts(rel))  # a slow regex never holds up the loop
    shown = hits[:50]
    where = "" if rel == "." else f" in {rel}"
    text = "\n".join(f"{p}:{n}: {line}" for p, n, line in shown) or (
        f"no match for {args.pattern!r}{where}; try a shorter or simpler pattern"
    )
    if len(hits) > len(shown):
        text += f"\n[{len(hits) - len(shown)}{'+' if len(hits) >= 200 else ''} more matches; narrow the pattern]"
    return Observation(text=text, data={"matches": [{"path": p, "line": n} for p, n, _ in hits]})


async def find_file(world: CodeWorld, args: FindFileArgs) -> Observation:
    files = await world.files.listing()
    needle = args.name.strip().strip("`'\"").lower()
    if "/" in needle:  # a path, or part of one
        for prefix in ("/workspace/", world.sandbox.workspace.lower().rstrip("/") + "/"):
            needle = needle.removeprefix(prefix)
        needle = needle.lstrip("/")
        found = [p for p in files if needle in p.lower()]
    else:
        found = [p for p in files if needle in p.rsplit("/", 1)[-1].lower()]
    text = "\n".join(found[:50]) or f"no file name contains {args.name!r}; try a shorter part of the name"
    if len(found) > 50:
        text += f"\n[{len(found) - 50} more files; give more of the name]"
    return Observation(text=text, data={"files": found})


def _symbols(tree: ast.AST) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                kind = "class" if isinstance(child, ast.ClassDef) else "def"
                qualified = f"{prefix}{child.name}"
                out.append((qualified, kind, child.lineno))
                visit(child, qualified + ".")

    visit(tree, "")
    return out


async def find_symbol(world: CodeWorld, args: FindSymbolArgs) -> Observation:
    # forgive `def name`, `class Name` and `name()`
    name = re.sub(r"^(?:async\s+)?(?:def|class)\s+", "", args.name.strip()).removesuffix("()").strip()

    def scan(texts: list[tuple[str, str]]) -> list[tuple[str, int, str, str]]:
        hits = []
        for path, text in texts:
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError, RecursionError):
                continue
            for qualified, kind, line in _symbols(tree):
                if qualified == name or qualified.endswith("." + name):
                    hits.append((path, line, kind, qualified))
        return hits

    hits = await asyncio.to_thread(scan, await world.files.texts(".", suffix=".py"))
    text = "\n".join(f"{p}:{n}: {kind} {q}" for p, n, kind, q in hits) or (
        f"no class or function named {name!r}; search for it with a regular expression"
    )
    return Observation(text=text, data={"definitions": [{"path": p, "line": n, "name": q} for p, n, _, q in hits]})


def _nearest(text: str, old: str) -> str:
    lines = text.splitlines()
    size = max(len(old.splitlines()), 1)
    windows = {"\n".join(lines[i : i + size]): i + 1 for i in range(max(len(lines) - size + 1, 1))}
    close = difflib.get_close_matches(old, list(windows), n=3, cutoff=0.5)
    if not close:
        return "no similar text found"
    return "closest matches:\n" + "\n---\n".join(f"(line {windows[c]})\n{c}" for c in close)


async def _text_file(world: CodeWorld, path: str) -> tuple[str, str]:
    place = await _where(world, path)
    text = await world.files.read(place.rel) if place.kind == "file" else None
    if text is None:
        what = "binary or too large" if place.kind == "file" else "not a text file in the repository"
        raise UserError(f"{path} is {what}; {_locate_hint(world)}")
    return place.rel, text


async def replace(world: CodeWorld, args: ReplaceArgs) -> Observation:
    rel, text = await _text_file(world, args.path)
    if not args.old.strip():
        raise UserError(f"the text to replace is empty; {_edit_hint(world)}")
    count = text.count(args.old)
    if count > 1:
        starts = [m.start() for m in re.finditer(re.escape(args.old), text)]
        lines = [text.count("\n", 0, s) + 1 for s in starts]
        raise UserError(
            f"the text to replace occurs {count} times in {rel} (lines {lines}); include more context, "
            "surrounding lines that make it unique"
        )
    note = ""
    if count == 1:
        at = text.index(args.old)
        updated = text.replace(args.old, args.new, 1)
        new_text = args.new
    else:
        loose = find_loose(text, args.old, args.new)
        if not loose:
            raise UserError(
                f"the text to replace does not occur in {rel}; {_nearest(text, args.old)}\n{_view_hint(world, rel)}"
            )
        if len(loose) > 1:
            lines = [text.count("\n", 0, place.start) + 1 for place in loose]
            raise UserError(
                f"the text to replace occurs {len(loose)} times in {rel} when whitespace is ignored "
                f"(lines {lines}); include more context, surrounding lines that make it unique"
            )
        place = loose[0]
        at, new_text = place.start, place.replacement
        updated = text[: place.start] + place.replacement + text[place.end :]
        note = " (matched ignoring differences in whitespace and indentation)"
    await world.sandbox.write_file(rel, updated)
    line = text.count("\n", 0, at) + 1
    new_lines = updated.splitlines()
    lo, hi = max(line - 3, 0), min(line + len(new_text.splitlines()) + 2, len(new_lines))
    snippet = "\n".join(f"{n + 1:>5} {new_lines[n]}" for n in range(lo, hi))
    return Observation(
        text=f"replaced in {rel} at line {line}{note}:\n{snippet}",
        data={"path": rel, "line": line, "loose": bool(note)},
    )


async def create_file(world: CodeWorld, args: CreateFileArgs) -> Observation:
    place = await _where(world, args.path)
    rel = place.rel
    if place.kind != "missing":
        raise UserError(f"{rel} already exists; edit it with replace or insert, or rewrite it with write_file")
    await world.sandbox.write_file(rel, args.content)
    return Observation(text=f"created {rel} ({len(args.content.splitlines())} lines)", data={"path": rel})


async def write_file(world: CodeWorld, args: CreateFileArgs) -> Observation:
    place = await _where(world, args.path)
    rel = place.rel
    if place.kind == "dir":
        raise UserError(f"{rel} is a folder; give the path of a file in it")
    existed = place.kind != "missing"
    content = args.content if args.content.endswith("\n") else args.content + "\n"
    old = await world.files.read(rel) if rel.endswith(".py") and place.kind == "file" else None
    merged = merge_python(old, content) if old is not None else None
    if merged is not None:  # a fragment: the model meant to change these definitions, not to delete the rest
        text, changes = merged
        whole = "write the whole file, every definition, to replace it entirely"
        if text == old:
            why = "; ".join(["nothing in the content is new to it", *(c for c in changes if c.startswith("left out"))])
            return Observation(text=f"{rel} is unchanged: {why} ({whole})", is_error=True, data={"path": rel})
        await world.sandbox.write_file(rel, text)
        return Observation(
            text=f"merged into {rel}: {'; '.join(changes)}; the rest of the file is unchanged ({whole})",
            data={"path": rel, "merged": changes},
        )
    if old is not None and _cuts_most_of(old, content):
        kept, total = len(content.splitlines()), len(old.splitlines())
        raise UserError(
            f"not written: {rel} has {total} lines and this content, which does not merge into it as changed "
            f"definitions, would leave {kept}. To change part of it, give the old and the new lines (a SEARCH/"
            "REPLACE block, or replace); to rewrite it, write every line of the new file"
        )
    await world.sandbox.write_file(rel, content)
    verb = "rewrote" if existed else "created"
    return Observation(text=f"{verb} {rel} ({len(args.content.splitlines())} lines)", data={"path": rel})


def _cuts_most_of(old: str, new: str) -> bool:
    """Whether writing `new` over a long Python file would drop most of it: a small model's fragment
    that did not merge (it does not parse, say), not a rewrite anyone means."""
    total = len(old.splitlines())
    return total >= 60 and len(new.splitlines()) * 3 < total


async def insert(world: CodeWorld, args: InsertArgs) -> Observation:
    rel, text = await _text_file(world, args.path)
    lines = text.splitlines(keepends=True)
    if args.line > len(lines):
        raise UserError(f"{rel} has {len(lines)} lines; line must be between 0 and {len(lines)}")
    block = args.text if args.text.endswith("\n") else args.text + "\n"
    if args.line and not lines[args.line - 1].endswith("\n"):
        lines[args.line - 1] += "\n"
    lines.insert(args.line, block)
    await world.sandbox.write_file(rel, "".join(lines))
    return Observation(
        text=f"inserted {len(block.splitlines())} lines after line {args.line} of {rel}",
        data={"path": rel, "line": args.line},
    )


async def run_tests(world: CodeWorld, args: RunTestsArgs) -> Observation:
    command = args.command or world.test_command
    if not command:
        raise UserError("this task has no test command; pass one: run_tests(command=...)")
    result = await world.run(command, timeout=world.test_timeout)
    statuses = world.parse_log(result.stdout + "\n" + result.stderr)
    failing = sorted(name for name, status in statuses.items() if status not in PASSING and status != "SKIPPED")
    passing = sum(1 for status in statuses.values() if status in PASSING)
    summary = (
        f"exit code {result.exit_code}{' (timed out)' if result.timed_out else ''}: {passing} passed, "
        f"{len(failing)} failed"
    )
    if failing:
        summary += "\nfailing: " + ", ".join(failing[:20])
    tail = _clip(result.output, 3000)
    return Observation(
        text=f"{summary}\n{tail}",
        is_error=not result.ok,
        tests=statuses,
        data={"exit_code": result.exit_code, "timed_out": result.timed_out},
    )


async def shell(world: CodeWorld, args: ShellArgs) -> Observation:
    result = await world.run(args.command, timeout=args.timeout)
    status = "timed out" if result.timed_out else f"exit code {result.exit_code}"
    return Observation(
        text=_clip(f"{status}\n{result.output}"),
        is_error=not result.ok,
        data={"exit_code": result.exit_code, "timed_out": result.timed_out},
    )


async def show_diff(world: CodeWorld, args: NoArgs) -> Observation:
    patch = await world.patch()
    return Observation(text=_clip(patch) or "no changes yet", patch=patch)


async def finish(world: CodeWorld, args: NoArgs) -> Observation:
    patch = await world.patch()
    if not patch.strip():
        return Observation(text="nothing to submit: the repository has no changes", is_error=True, patch="")
    return Observation(text=f"submitted a patch of {len(patch.splitlines())} lines", terminal="finished", patch=patch)


async def revert(world: CodeWorld, args: RevertArgs) -> Observation:
    """Put every file back as it was in an earlier state: the changes made since are undone at once."""
    wanted = args.state.strip().strip("`'\"")
    state = world.workspace.base_tree if wanted.lower() == START_STATE else await world.workspace.resolve(wanted)
    changed = await world.workspace.restore(state)
    where = "the starting files" if state == world.workspace.base_tree else f"state {state[:12]}"
    undone = f"{len(changed)} changed file{'s' if len(changed) != 1 else ''} restored" if changed else "nothing to undo"
    return Observation(text=f"reverted to {where}: {undone}", data={"state": state, "restored": changed})


async def reject(world: CodeWorld, args: RejectArgs) -> Observation:
    return Observation(text=f"branch abandoned: {args.reason}", terminal="rejected", data={"reason": args.reason})


ToolFn = Callable[[Any, Any], Awaitable[Observation]]

CODE_TOOLS: dict[str, tuple[ToolSpec, ToolFn]] = {
    spec.name: (spec, fn)
    for spec, fn in (
        (ToolSpec(name="view_file", description="Show numbered lines of a file", args=ViewFileArgs), view_file),
        (ToolSpec(name="search", description="Search file contents with a regex", args=SearchArgs), search),
        (ToolSpec(name="find_file", description="Find files by name", args=FindFileArgs), find_file),
        (
            ToolSpec(
                name="find_symbol", description="Find where a Python class or function is defined", args=FindSymbolArgs
            ),
            find_symbol,
        ),
        (
            ToolSpec(name="replace", description="Replace text that occurs exactly once in a file", args=ReplaceArgs),
            replace,
        ),
        (ToolSpec(name="create_file", description="Create a new file", args=CreateFileArgs), create_file),
        (
            ToolSpec(name="write_file", description="Replace a whole file with new content", args=CreateFileArgs),
            write_file,
        ),
        (ToolSpec(name="insert", description="Insert lines after a line number", args=InsertArgs), insert),
        (
            ToolSpec(name="run_tests", description="Run the tests and report each test's result", args=RunTestsArgs),
            run_tests,
        ),
        (ToolSpec(name="shell", description="Run a shell command in the sandbox", args=ShellArgs), shell),
        (ToolSpec(name="diff", description="Show the current changes as a patch", args=NoArgs), show_diff),
        (ToolSpec(name="finish", description="Submit the current changes as the solution", args=NoArgs), finish),
        (
            ToolSpec(name="revert", description="Undo changes: restore the files of an earlier state", args=RevertArgs),
            revert,
        ),
        (ToolSpec(name="reject", description="Give up on this approach, saying why", args=RejectArgs), reject),
    )
}
