"""Localisation: the code an issue names, and the best BM25 matches, found before the first step."""

from __future__ import annotations

import os
from pathlib import Path

from trellis.envs.code.localise import localise, localise_units, named, python_files, ranked, units_of, words

CALC = '''import math


def add(a, b):
    """Return the sum of a and b."""
    return a - b


def mul(a, b):
    return a * b


class Counter:
    def __init__(self):
        self.n = 0

    def bump(self):
        self.n = add(self.n, 1)
        return self.n
'''


def repo(tmp_path: Path) -> Path:
    (tmp_path / "calc").mkdir()
    (tmp_path / "calc" / "__init__.py").write_text(CALC)
    (tmp_path / "calc" / "text.py").write_text("def slugify(text):\n    return text.lower()\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text("def test_add():\n    assert add(1, 2) == 3\n")
    return tmp_path


def test_units_are_functions_and_classes_with_lines(tmp_path: Path) -> None:
    units = {u.name: u for u in units_of(repo(tmp_path), "calc/__init__.py")}
    assert set(units) == {"add", "mul", "Counter", "Counter.__init__", "Counter.bump"}
    assert (units["add"].start, units["add"].end) == (4, 6)
    assert "return a - b" in units["add"].source


def test_tests_and_links_are_left_out(tmp_path: Path) -> None:
    root = repo(tmp_path)
    secret = tmp_path.parent / f"{tmp_path.name}-secret.py"
    secret.write_text("def leaked_secret():\n    return 'token'\n")
    os.symlink(secret, root / "calc" / "link.py")
    files = python_files(root)
    assert files == ["calc/__init__.py", "calc/text.py"]
    assert "leaked_secret" not in localise(root, "`leaked_secret()` is broken")


def test_the_issue_names_code() -> None:
    units = units_of(Path(__file__).parent, Path(__file__).name)
    assert [u.name for u in named("`repo()` fails", units)] == ["repo"]
    assert named("the repo is fine", units) == []  # a plain English word is not a code mention


def test_named_symbols_then_bm25(tmp_path: Path) -> None:
    issue = "`calc.add(2, 3)` returns -1 instead of 5; `Counter.bump`, which uses it, counts down."
    text = localise(repo(tmp_path), issue)
    assert text.index("(add, lines 4-6)") < text.index("def bump")
    assert "return a - b" in text
    assert text.count("def bump") == 1  # a method inside a class already shown is not repeated
    assert "test_add" not in text


def test_bm25_ranks_by_identifier_words(tmp_path: Path) -> None:
    root = repo(tmp_path)
    units = [u for rel in python_files(root) for u in units_of(root, rel)]
    assert words("Counter.bump parse_log") == ["counter", "bump", "parse", "log"]
    assert ranked("slugify lower text", units, k=1)[0].name == "slugify"
    assert ranked("product multiply mul", units, k=1)[0].name == "mul"


def test_the_most_specific_mention_comes_first(tmp_path: Path) -> None:
    """A name written with its class or module (`calc.Counter.bump`) outranks one written alone
    (`add()`), which outranks a unit that only shares the last part of a dotted mention (`mul` for
    `operator.mul`, as `Client.open` would for `io.open`), whatever their order in the issue or the
    file; a class that holds a chosen method is not shown again whole."""
    root = repo(tmp_path)
    issue = "Each add() looks fine and so does operator.mul(2, 3), yet `calc.Counter.bump()` counts down."
    units = [u for rel in python_files(root) for u in units_of(root, rel)]
    assert [u.name for u in named(issue, units)] == ["Counter.bump", "add", "mul"]
    chosen = [u.name for u in localise_units(root, issue)]
    assert chosen[:3] == ["Counter.bump", "add", "mul"] and "Counter" not in chosen
