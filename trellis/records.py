"""Records from a JSON file: a list of them, one object, or JSON Lines (one per line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trellis.errors import UserError


def json_records(path: Path, hint: str) -> list[Any]:
    """The records `path` holds: a JSON list, one JSON object, or one JSON value per line (blank
    lines skipped). A line that is not JSON is a UserError naming it, followed by `hint` (what to
    give instead)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} cannot be read ({exc}); {hint}") from exc
    whole: json.JSONDecodeError | None = None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        whole = exc  # JSON Lines, or broken: read line by line to say which line
    else:
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            return [data]
    rows: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            if not rows and whole is not None:  # the first record is not a line of its own: one broken document
                where = f"{path}:{whole.lineno}"
                raise UserError(f"{where} is not JSON ({whole.msg}, column {whole.colno}); {hint}") from None
            raise UserError(f"{path}:{number} is not JSON ({exc}); {hint}") from None
    return rows
