"""Access to workspace files, in one place: where a path the model wrote points, which
files may be listed and read, and finding text in a file when only whitespace differs.

The host never trusts the workspace: every path is resolved (links included) and must stay inside
the folder; a listing never enters a linked folder and shows a linked file only when the link ends
inside the folder; nothing but regular files is read, and none larger than `MAX_READ`.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from trellis.envs.sandbox.base import workspace_relative

from trellis.errors import UserError

MAX_READ = 4 * 2**20
SKIP_NAMES = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", ".tox", ".mypy_cache", ".pytest_cache"})
_QUOTES = "`'\""


def _within(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def contained(root: Path, path: Path) -> Path | None:
    """`path` with every link resolved, or None when that leaves `root`."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return None
    return resolved if _within(root, resolved) else None


def candidates(
    path: str, root: str, *, alias: str = "/workspace", names: tuple[str, ...] = ()
) -> tuple[list[PurePosixPath], bool]:
    """The workspace-relative paths a model may have meant by `path`, most literal first, and whether
    it was an absolute path outside the workspace (kept only if it exists once made relative).

    Forgives the usual slips: quotes around the path, an absolute path under the sandbox's `alias`
    (/workspace/...) or under `root`, an absolute path that is really relative (`/pkg/mod.py`), and a
    leading folder named like the repository (`names`: `tinycalc/tinycalc/x.py` in `tinycalc`).
    """
    text = path.strip().strip(_QUOTES).strip()
    if not text:
        raise UserError("the path is empty; give a file path relative to the repository root, e.g. src/module.py")
    if "\n" in text or "\0" in text:
        raise UserError(f"{path!r} is not a file path (it holds a line break); give one path relative to the root")
    pure = PurePosixPath(text)
    outside = False
    if pure.is_absolute():
        relative = workspace_relative(pure, Path(root), alias)
        outside = relative is None
        pure = pure.relative_to("/") if relative is None else relative
    found = [pure]
    if len(pure.parts) > 1 and pure.parts[0] in {*names, PurePosixPath(alias).name}:
        found.append(PurePosixPath(*pure.parts[1:]))
    return found, outside


def escape_error(path: str, *, link: bool = False) -> UserError:
    message = f"path {path!r} is outside the workspace; use a path relative to the repository root"
    return UserError(message + (" (a link on the way leads out of it)" if link else ""))


def locate(root: Path, path: str, *, alias: str = "/workspace", names: tuple[str, ...] = ()) -> tuple[Path, str]:
    """(host path, path relative to `root`) of the file a model meant by `path` (see `candidates`).

    Prefers a candidate that exists, then one whose folder exists (a new file), then the path as
    written. Raises `UserError` when the path, its links resolved, leaves `root`.
    """
    root = root.resolve()
    options, outside = candidates(path, str(root), alias=alias, names=names)
    found: list[Path] = []
    for candidate in options:
        host = contained(root, root / candidate)
        if host is None:
            raise escape_error(path, link=_within(root, Path(os.path.normpath(root / candidate))))
        found.append(host)
    chosen = next((h for h in found if h.exists()), None)
    if chosen is None and outside:
        raise escape_error(path)
    if chosen is None:
        chosen = next((h for h in found if h.parent.is_dir()), found[0])
    return chosen, chosen.relative_to(root).as_posix() if chosen != root else "."


def readable(root: Path, path: Path) -> bool:
    """A regular file, or a link that ends at one inside `root`."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    if stat.S_ISREG(mode):
        return True
    if not stat.S_ISLNK(mode):
        return False
    target = contained(root, path)
    return target is not None and target.is_file()


def walk(root: Path, start: Path) -> list[Path]:
    """The files under `start` the tools may read, sorted; linked folders are never entered."""
    root = root.resolve()
    if not start.is_dir():
        return [start] if readable(root, start) else []
    out = []
    for current, dirs, files in os.walk(start):  # followlinks=False
        dirs[:] = sorted(d for d in dirs if d not in SKIP_NAMES)
        for name in sorted(files):
            path = Path(current, name)
            if name not in SKIP_NAMES and readable(root, path):
                out.append(path)
    return out


def read_text(path: Path, limit: int = MAX_READ) -> str | None:
    """The text of a regular file, or None for a binary, unreadable, special or too large one."""
    try:
        with path.open("rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            data = handle.read(limit + 1)
    except OSError:
        return None
    if len(data) > limit or b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", errors="replace")


Kind = Literal["file", "dir", "missing", "other"]


@dataclass(frozen=True)
class Place:
    """Where a path the model wrote points: its name relative to the workspace root ("." for the root),
    what is there, and whether its folder exists (a new file can be written there)."""

    rel: str
    kind: Kind
    folder_exists: bool = True


class WorkspaceFiles(Protocol):
    """The workspace's files as the tools see them, wherever the workspace is (a host folder, a
    container). Every answer is data: paths are resolved, links included, and kept inside the workspace."""

    async def locate(self, path: str) -> Place:
        """The place a model meant by `path` (see `candidates`); `UserError` when it leaves the workspace."""
        ...

    async def read(self, rel: str) -> str | None:
        """The text of file `rel`; None for a binary, special or too large one."""
        ...

    async def listing(self, start: str = ".") -> list[str]:
        """The files under `start` the tools may read, relative to the root, sorted."""
        ...

    async def texts(self, start: str = ".", suffix: str = "") -> list[tuple[str, str]]:
        """(path, text) of every readable text file under `start` whose name ends with `suffix`, sorted."""
        ...


class HostFiles:
    """A workspace folder on this machine (the bubblewrap and local sandboxes' worlds)."""

    def __init__(self, root: Path, *, alias: str = "/workspace", names: tuple[str, ...] = ()) -> None:
        self.root = root.resolve()
        self.alias = alias
        self.names = names

    def _place(self, path: str) -> Place:
        host, rel = locate(self.root, path, alias=self.alias, names=self.names)
        kind: Kind = "file" if host.is_file() else "dir" if host.is_dir() else "other" if host.exists() else "missing"
        return Place(rel=rel, kind=kind, folder_exists=host.parent.is_dir())

    async def locate(self, path: str) -> Place:
        return await asyncio.to_thread(self._place, path)

    async def read(self, rel: str) -> str | None:
        host = contained(self.root, self.root / rel)
        return None if host is None or not host.is_file() else await asyncio.to_thread(read_text, host)

    def _walk(self, start: str) -> list[Path]:
        host = contained(self.root, self.root / start)
        return [] if host is None else walk(self.root, host)

    async def listing(self, start: str = ".") -> list[str]:
        paths = await asyncio.to_thread(self._walk, start)
        return [path.relative_to(self.root).as_posix() for path in paths]

    async def texts(self, start: str = ".", suffix: str = "") -> list[tuple[str, str]]:
        def scan() -> list[tuple[str, str]]:
            out = []
            for path in self._walk(start):
                if path.name.endswith(suffix) and (text := read_text(path)) is not None:
                    out.append((path.relative_to(self.root).as_posix(), text))
            return out

        return await asyncio.to_thread(scan)


@dataclass(frozen=True)
class Loose:
    """Where `find_loose` found the old text, and what to put there."""

    start: int
    end: int
    replacement: str


def find_loose(text: str, old: str, new: str) -> list[Loose]:
    """Every place where `old` occurs in `text` if whitespace and indentation are ignored, each with
    `new` re-indented to fit there. Whole lines are replaced as lines (indented like the file);
    a fragment inside a line is replaced by `new` as written."""
    chars = [re.escape(c) for c in old if not c.isspace()]
    if not chars:
        return []
    pattern = re.compile(r"\s*".join(chars))
    first = next((line for line in old.splitlines() if line.strip()), "")
    old_indent = first[: len(first) - len(first.lstrip())]
    found = []
    for match in pattern.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end == -1 else line_end
        before, after = text[line_start : match.start()], text[match.end() : line_end]
        if before.strip() or after.strip():
            found.append(Loose(match.start(), match.end(), new.strip()))
            continue
        lines = _reindent(new, old_indent, before)
        if lines:
            found.append(Loose(line_start, line_end, "\n".join(lines)))
        else:  # deleting whole lines takes their line ends too
            found.append(Loose(line_start, min(line_end + 1, len(text)), ""))
    return found


def _reindent(new: str, old_indent: str, indent: str) -> list[str]:
    out = []
    for line in new.strip("\n").splitlines():
        if not line.strip():
            out.append("")
            continue
        relative = line[len(old_indent) :] if line.startswith(old_indent) else line.lstrip()
        out.append(indent + relative.rstrip())
    while out and not out[-1]:
        out.pop()
    return out
