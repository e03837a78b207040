"""Records from JSON files: a list, one object, JSON Lines; a broken line is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from trellis.errors import UserError
from trellis.records import json_records


def test_a_list_an_object_and_json_lines(tmp_path: Path) -> None:
    listed, single, lines = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.jsonl"
    listed.write_text('[{"a": 1}, {"a": 2}]')
    single.write_text('{"a": 1}')
    lines.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert json_records(listed, "") == [{"a": 1}, {"a": 2}]
    assert json_records(single, "") == [{"a": 1}]
    assert json_records(lines, "") == [{"a": 1}, {"a": 2}]


def test_a_broken_line_is_named_with_what_to_give(tmp_path: Path) -> None:
    broken = tmp_path / "d.jsonl"
    broken.write_text('{"a": 1}\n{a: 2}\n')
    with pytest.raises(UserError, match=r"d\.jsonl:2 is not JSON .*; give a file of examples"):
        json_records(broken, "give a file of examples")
    pretty = tmp_path / "e.json"
    pretty.write_text('[\n  {"a": 1},\n  {"a": 2,,}\n]\n')  # one document, broken on its third line
    with pytest.raises(UserError, match=r"e\.json:3 is not JSON"):
        json_records(pretty, "give a file")
    with pytest.raises(UserError, match="cannot be read"):
        json_records(tmp_path / "missing.jsonl", "give a file")
