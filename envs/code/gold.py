"""What a reference patch tells a judge: which observations of a code world were useful.

ReSeek labels a retrieval useful when it holds a gold answer. In a repository the gold answer is
where the fix goes: an observation is useful when it names a file the reference patch changes or
shows one of the lines the patch removes or edits around (its removed and context lines, long
enough to be specific). The reference patch stays on the host; the workspace never sees it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

MIN_LINE = 12
"""Shorter lines (`return x`, `else:`) occur everywhere and say nothing of where the fix goes."""


@dataclass(frozen=True)
class GoldEvidence:
    paths: frozenset[str]
    lines: frozenset[str]


def gold_evidence(patch: str, exclude: Collection[str] = ()) -> GoldEvidence:
    """The files a unified diff changes (those in `exclude`, such as test files, left out) and the
    stripped removed and context lines of their hunks that are at least `MIN_LINE` long."""
    paths: set[str] = set()
    lines: set[str] = set()
    current: str | None = None
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            current = None
            continue
        if line.startswith("+++ "):
            name = line[4:].strip()
            name = name[2:] if name.startswith("b/") else name
            current = None if name == "/dev/null" or name in exclude else name
            if current:
                paths.add(current)
            continue
        if line.startswith(("--- ", "@@", "\\")) or current is None:
            continue
        if line[:1] in ("-", " "):
            text = line[1:].strip()
            if len(text) >= MIN_LINE and re.search(r"[A-Za-z0-9]", text):
                lines.add(text)
    return GoldEvidence(frozenset(paths), frozenset(lines))


def shows_gold(text: str, evidence: GoldEvidence) -> bool:
    """Whether an observation's text names a changed file or shows one of the evidence lines."""
    if any(re.search(rf"(?<![\w/.-]){re.escape(path)}(?![\w/-])", text) for path in evidence.paths):
        return True
    shown = {line.strip() for line in text.splitlines()}
    # a numbered view (`  12  code`) or a search hit (`path:12: code`) puts a prefix before the code
    return any(line in shown or any(s.endswith(line) for s in shown) for line in evidence.lines)
