"""Localisation: the code an issue names, and the best BM25 matches, found before the first step."""

from __future__ import annotations

import os
from pathlib import Path

from trellis.envs.code.localise import (
    Pointer,
    in_class,
    localise,
    localise_units,
    located,
    named,
    pointers,
    python_files,
    ranked,
    units_of,
    words,
)

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


TRACEBACK = """Creating the schema fails:

```
Traceback (most recent call last):
  File "try-it.py", line 8, in <module>
    s = MySchema()
  File "/home/me/.venv/lib/python3.11/site-packages/calc/__init__.py", line 19, in bump
    self.n = add(self.n, 1)
  File "/home/me/.venv/lib/python3.11/site-packages/calc/shapes.py", line 9, in area
    return self.side * self.size
  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode
AttributeError: 'Square' object has no attribute 'size'
```
"""

SHAPES = """class Circle:
    def area(self):
        return 3 * self.r * self.r


class Square:
    def __init__(self, side):
        self.side = side

    def area(self):
        return self.side * self.size
"""


def test_a_traceback_points_at_its_innermost_frame_in_the_repository_first(tmp_path: Path) -> None:
    """The innermost frame the repository has (not the standard library's, not the reporter's script)
    comes first, found by its function's name and, where two methods share it, by the line of code
    the traceback shows, though the file moved (site-packages/calc for the repository's calc) and
    the line numbers are another version's; the outer frames follow, then the names and BM25."""
    root = repo(tmp_path)
    (root / "calc" / "shapes.py").write_text(SHAPES)
    first, rest = pointers(TRACEBACK)
    assert [(p.path.rsplit("/", 1)[-1], p.function) for p in first] == [("decoder.py", "decode")]
    assert rest[0] == Pointer(
        "/home/me/.venv/lib/python3.11/site-packages/calc/shapes.py", 9, "area", "return self.side * self.size"
    )
    assert rest[-1] == Pointer("try-it.py", 8, None, "s = MySchema()")
    units = [u for rel in python_files(root) for u in units_of(root, rel)]
    assert [(u.path, u.name) for u in located(TRACEBACK, units)] == [
        ("calc/shapes.py", "Square.area"),
        ("calc/__init__.py", "Counter.bump"),
    ]
    assert [u.name for u in localise_units(root, TRACEBACK)][:2] == ["Square.area", "Counter.bump"]


def test_a_file_and_line_the_issue_names_point_at_the_unit_holding_that_line(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "calc" / "shapes.py").write_text(SHAPES)
    units = [u for rel in python_files(root) for u in units_of(root, rel)]
    for issue in ("The problem is in `shapes.py` at line 3.", "See calc/shapes.py:3, it squares r twice."):
        assert [u.name for u in located(issue, units)] == ["Circle.area"], issue
    # the innermost unit holding the line; a line outside every unit, or a file the repository lacks,
    # points at nothing
    assert [u.name for u in located("shapes.py line 8", units)] == ["Square.__init__"]
    assert located("shapes.py:5", units) == [] and located("other.py:3", units) == []
    # a file name two folders share is no pointer
    (root / "more").mkdir()
    (root / "more" / "shapes.py").write_text(SHAPES)
    units = [u for rel in python_files(root) for u in units_of(root, rel)]
    assert located("shapes.py:3", units) == []
    assert [u.path for u in located("calc/shapes.py:3", units)] == ["calc/shapes.py"]
    # a path with folders must share a folder with the file, not just its name: the standard
    # library's json/shapes.py is neither of them
    frame = 'Traceback (most recent call last):\n  File "{}", line 3, in area\n    return 3 * self.r * self.r\n'
    (root / "more" / "shapes.py").unlink()
    units = [u for rel in python_files(root) for u in units_of(root, rel)]
    assert located(frame.format("/usr/lib/python3.11/json/shapes.py"), units) == []
    assert [u.name for u in located(frame.format("/home/me/calc/shapes.py"), units)] == ["Circle.area"]


def test_a_method_is_shown_under_its_class_line(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "calc" / "shapes.py").write_text(SHAPES)
    by_name = {u.name: u for u in units_of(root, "calc/shapes.py")}
    assert in_class(by_name["Square.area"], SHAPES) == (
        "class Square:\n    ...\n\n    def area(self):\n        return self.side * self.size"
    )
    assert in_class(by_name["Square"], SHAPES) == by_name["Square"].source
    # the class line ends where the first member's decorators begin
    module = "class Box:\n    @property\n    def size(self):\n        return 0\n\n    def other(self):\n        pass\n"
    other = next(u for u in units_of_text(tmp_path, module) if u.name == "Box.other")
    assert in_class(other, module) == "class Box:\n    ...\n\n    def other(self):\n        pass"


def units_of_text(root: Path, text: str) -> list:
    (root / "box.py").write_text(text)
    return units_of(root, "box.py")
