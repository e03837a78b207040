"""Merging a fragment a model wrote as "the whole file" into the Python file it meant to change."""

from __future__ import annotations

import ast

from swe_fixture import FILES
from trellis.envs.code.merge import merge_python

CALC = FILES["tinycalc/__init__.py"]
FRAGMENT = (
    "def add(a, b):\n    return a + b\n\n\n"
    "def bump(self):\n    self.n = add(self.n, 2)\n    return self.n\n\n\n"
    "print(add(2, 3))\nassert add(1, 1) == 2\n"
)


def merged(old: str, new: str) -> tuple[str, list[str]]:
    result = merge_python(old, new)
    assert result is not None, "expected a merge"
    ast.parse(result[0])
    return result


def test_a_function_and_a_dedented_method_replace_their_namesakes() -> None:
    text, changes = merged(CALC, FRAGMENT)
    assert text == (
        '"""Arithmetic helpers."""\n\n\ndef add(a, b):\n    return a + b\n\n\n'
        "def mul(a, b):\n    return a * b\n\n\nclass Counter:\n    def __init__(self):\n        self.n = 0\n\n"
        "    def bump(self):\n        self.n = add(self.n, 2)\n        return self.n\n"
    )
    assert changes == ["replaced add, Counter.bump", "left out 2 other top-level statements (example code)"]


def test_a_whole_file_is_not_a_fragment() -> None:
    rewrite = CALC.replace("a - b", "a + b") + "\n\ndef sub(a, b):\n    return a - b\n"
    assert merge_python(CALC, rewrite) is None
    # nor is anything written over a file that defines nothing, or when either side does not parse
    assert merge_python("X = 1\n", FRAGMENT) is None
    assert merge_python(CALC, "def add(a, b):\n    return (\n") is None
    assert merge_python("def add(a, b:\n", FRAGMENT) is None


def test_a_new_function_goes_at_the_end_or_before_the_main_guard() -> None:
    text, changes = merged(CALC, "def sub(a, b):\n    return a - b\n")
    assert text == CALC + "\n\ndef sub(a, b):\n    return a - b\n"
    assert changes == ["added sub"]
    script = "def main():\n    print(sub(3, 1))\n\n\nif __name__ == '__main__':\n    main()\n"
    text, _ = merged(script, "def sub(a, b):\n    return a - b\n")
    assert text == (
        "def main():\n    print(sub(3, 1))\n\n\ndef sub(a, b):\n    return a - b\n\n\n"
        "if __name__ == '__main__':\n    main()\n"
    )


def test_new_imports_are_added_once_after_the_last_import() -> None:
    old = (
        "import os\nfrom sys import argv\n\n\ndef add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
    )
    new = "import os\nimport math\nfrom sys import argv, path\n\ndef add(a, b):\n    return math.fsum([a, b])\n"
    text, changes = merged(old, new)
    assert text.startswith("import os\nfrom sys import argv\nimport math\nfrom sys import argv, path\n\n\ndef add")
    assert changes == ["replaced add", "added import math, from sys import argv, path"]
    again, changes = merged(text, new)
    assert again == text and changes == ["replaced add"]
    # a file without imports gets them after its docstring; `from __future__` always goes first
    text, _ = merged(CALC, "from __future__ import annotations\nimport math\n\ndef add(a, b):\n    return a + b\n")
    assert text.startswith('"""Arithmetic helpers."""\nfrom __future__ import annotations\n\nimport math\n\n\ndef add')
    # an import under try counts as imported
    guarded = "try:\n    import json\nexcept ImportError:\n    json = None\n\n\n" + CALC
    text, changes = merged(guarded, "import json\n\ndef add(a, b):\n    return a + b\n")
    assert text.count("import json") == 1 and changes == ["replaced add"]


def test_decorators_go_with_their_definitions() -> None:
    old = (
        "import functools\n\n\n@functools.cache\n@staticmethod\ndef add(a, b):\n    return a - b\n\n\n"
        "class Box:\n    @property\n    def size(self):\n        return 0\n\n    def other(self):\n        pass\n"
    )
    new = "@functools.lru_cache(maxsize=2)\ndef add(a, b):\n    return a + b\n\n"
    new += "@property\ndef size(self):\n    return 1\n"
    text, changes = merged(old, new)
    assert text == (
        "import functools\n\n\n@functools.lru_cache(maxsize=2)\ndef add(a, b):\n    return a + b\n\n\n"
        "class Box:\n    @property\n    def size(self):\n        return 1\n\n    def other(self):\n        pass\n"
    )
    assert changes == ["replaced add, Box.size"]
    # and a definition without decorators replaces a decorated one whole
    text, _ = merged(old, "def add(a, b):\n    return a + b\n")
    assert "@functools.cache" not in text and "@staticmethod" not in text and "def other" in text


def test_a_class_given_whole_replaces_the_class() -> None:
    whole = (
        "class Counter(int):\n    def __init__(self):\n        self.n = 1\n\n    def bump(self):\n        return 1\n"
    )
    text, changes = merged(CALC, whole + "\n\ndef bump(self):\n    return 2\n")
    assert text.endswith(whole) and "def mul" in text and "self.n = 0" not in text and "return 2" not in text
    assert changes == ["replaced Counter", "left out bump (its class Counter is given whole)"]


def test_a_class_given_around_one_method_keeps_its_other_members() -> None:
    """The flask case: `class Config:` around the one method the model changed, the class's bases and
    its other methods left out. Each given member replaces its namesake, indented as the class is; a
    new member goes at the end of the class; the class line and the members not given stay."""
    old = (
        'import os\n\n\nclass Config(dict):\n    """Settings."""\n\n    LIMIT = 1\n\n'
        "    def __init__(self, root):\n        self.root = root\n\n"
        "    @property\n    def name(self):\n        return 'a'\n\n"
        "    @name.setter\n    def name(self, value):\n        pass\n\n"
        "    def load(self, path):\n        with open(path) as f:\n            return f.read()\n\n\n"
        "def helper():\n    return Config('.')\n"
    )
    new = (
        "import os\nimport io\n\nclass Config:\n    LIMIT = 2\n\n    def load(self, path, mode='r'):\n"
        "        with open(path, mode) as f:\n            return f.read()\n\n"
        "    def size(self):\n        return len(self)\n\n"
        "    @property\n    def name(self):\n        return 'b'\n\n"
        "    @name.setter\n    def name(self, value):\n        self.n = value\n\n"
        "def load(self, path):\n    return None\n"
    )
    text, changes = merged(old, new)
    assert text == (
        'import os\nimport io\n\n\nclass Config(dict):\n    """Settings."""\n\n    LIMIT = 2\n\n'
        "    def __init__(self, root):\n        self.root = root\n\n"
        "    @property\n    def name(self):\n        return 'b'\n\n    @name.setter\n    def name(self, value):\n"
        "        self.n = value\n\n"
        "    def load(self, path, mode='r'):\n        with open(path, mode) as f:\n            return f.read()\n"
        "\n    def size(self):\n        return len(self)\n\n\n"
        "def helper():\n    return Config('.')\n"
    )
    assert changes == [
        "replaced Config.LIMIT, Config.load, Config.name",
        "added Config.size",
        "added import io",
        "left out load (given inside its class Config too)",
    ]
    # a getter given without its setter cannot be matched member for member: it is left out
    text, changes = merged(old, "class Config:\n    @property\n    def name(self):\n        return 'c'\n")
    assert text == old and changes == ["left out Config.name (defined 2 times in the class, given 1)"]


def test_a_file_of_one_class_given_in_part_keeps_its_other_methods() -> None:
    """A module whose only definition is the class: a class given around one method is still a
    fragment, not a rewrite of the file. A class line the model changed is reported, not taken."""
    old = "import os\n\n\nclass A(Base):\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n"
    text, changes = merged(old, "class A:\n    def f(self):\n        return 3\n")
    assert text == old.replace("return 1", "return 3") and changes == ["replaced A.f"]
    text, changes = merged(old, "class A(Other):\n    def f(self):\n        return 3\n")
    assert text == old.replace("return 1", "return 3")
    assert changes == ["replaced A.f", "left out the class line of A (its bases and decorators are kept as they were)"]


def test_a_method_name_shared_by_two_classes_is_left_out() -> None:
    old = CALC + "\n\nclass Other:\n    def bump(self):\n        return 0\n"
    text, changes = merged(old, "def bump(self):\n    return 1\n")
    assert text == old
    assert changes == ["left out bump (Counter.bump and Other.bump share the name; give it inside its class)"]


def test_assignments_replace_their_namesakes_and_new_constants_a_definition_uses_are_kept() -> None:
    old = '"""Rates."""\n\nRATE = 1\nNAMES: list[str] = []\n\n\n'
    old += "def cost(x):\n    return x * RATE\n\n\ndef other():\n    pass\n"
    new = (
        "RATE = 2\nNAMES: list[str] = ['a']\nSCALE = 3\nresult = cost(4)\n\ndef cost(x):\n    return x * RATE * SCALE\n"
    )
    text, changes = merged(old, new)
    assert text == (
        '"""Rates."""\n\nSCALE = 3\n\nRATE = 2\nNAMES: list[str] = [\'a\']\n\n\n'
        "def cost(x):\n    return x * RATE * SCALE\n\n\ndef other():\n    pass\n"
    )
    assert changes == [
        "replaced cost, RATE, NAMES",
        "added SCALE",
        "left out 1 other top-level statement (example code)",
    ]


def test_a_fragment_of_statements_changes_nothing() -> None:
    text, changes = merged(CALC, '"""Try it."""\nprint(add(2, 3))\n')
    assert text == CALC and changes == ["left out 1 other top-level statement (example code)"]
