"""What a reference patch tells a judge: which observations of a code world were useful.

ReSeek labels a retrieval useful when it holds a gold answer. In a repository the gold answer is
where the fix goes: an observation is useful when it names a file the reference patch changes or
shows one of the lines the patch removes (long enough to be specific; context lines such as
`def __init__(self):` occur in every file and are not evidence). The reference patch stays on the
host; the workspace never sees it.
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
    stripped lines its hunks remove that are at least `MIN_LINE` long. Hunk lengths are followed, so a
    changed line that looks like a header (`--- x`) is read as a line."""
    paths: set[str] = set()
    lines: set[str] = set()
    old_name: str | None = None
    current: str | None = None
    old_left = new_left = 0
    for line in patch.splitlines():
        if old_left > 0 or new_left > 0:  # inside a hunk
            if line.startswith("-"):
                old_left -= 1
                text = line[1:].strip()
                if current and len(text) >= MIN_LINE and re.search(r"[A-Za-z0-9]", text):
                    lines.add(text)
            elif line.startswith("+"):
                new_left -= 1
            elif not line.startswith("\\"):  # context (a blank context line may have lost its space)
                old_left, new_left = old_left - 1, new_left - 1
            continue
        hunk = re.match(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@", line)
        if hunk:
            old_left = int(hunk.group(1)) if hunk.group(1) is not None else 1
            new_left = int(hunk.group(2)) if hunk.group(2) is not None else 1
        elif line.startswith("--- "):
            old_name = _name(line[4:])
        elif line.startswith("+++ "):
            name = _name(line[4:]) or old_name  # a deleted file is named on its --- line
            current = name if name and name not in exclude else None
            if current:
                paths.add(current)
    return GoldEvidence(frozenset(paths), frozenset(lines))


def _name(header: str) -> str | None:
    name = header.split("\t")[0].strip()
    if name == "/dev/null":
        return None
    return name[2:] if name.startswith(("a/", "b/")) else name


def shows_gold(text: str, evidence: GoldEvidence) -> bool:
    """Whether an observation's text names a changed file or shows one of the evidence lines."""
    if any(re.search(rf"(?<![\w/.-]){re.escape(path)}(?![\w/-])", text) for path in evidence.paths):
        return True
    shown = {line.strip() for line in text.splitlines()}
    # a numbered view (`  12  code`) or a search hit (`path:12: code`) puts a prefix before the code
    return any(line in shown or any(s.endswith(line) for s in shown) for line in evidence.lines)
