"""A short function the issue's examples pin down, restated as a stub to complete."""

from __future__ import annotations

import ast
from pathlib import Path

from trellis.envs.code.localise import Unit, units_of
from trellis.envs.code.reproduce import IssueCheck, issue_checks
from trellis.envs.code.specify import MAX_LINES, specification

TEXT = '''"""Small text utilities."""

import math
import re
from collections import Counter as Tally


def slugify(text):
    """Lower-case `text` and join its words with single dashes."""
    return re.sub(r"[^a-z0-9]", "-", text.lower())


def counts(text):
    return Tally(text.split())


def area(r): return math.pi * r * r


class Box:
    def size(self):
        """How big."""
        return 1
'''
ISSUE = (
    "`textkit.slugify('Hello,  World!')` returns 'hello---world-' but should return 'hello-world': runs of "
    "separators must collapse into one dash. `textkit.counts('a a')` is fine."
)


def unit(tmp_path: Path, name: str) -> Unit:
    (tmp_path / "textkit").mkdir(exist_ok=True)
    (tmp_path / "textkit" / "__init__.py").write_text(TEXT)
    return next(u for u in units_of(tmp_path, "textkit/__init__.py") if u.name == name)


def test_the_stub_has_the_signature_the_docstring_and_the_issue_s_call_as_an_example_but_no_body(
    tmp_path: Path,
) -> None:
    stub = specification(unit(tmp_path, "slugify"), issue_checks(ISSUE), TEXT)
    assert stub == (
        "import re\n\n\n"
        "def slugify(text):\n"
        '    """Lower-case `text` and join its words with single dashes.\n'
        "\n"
        "    >>> slugify('Hello,  World!')\n"
        "    'hello-world'\n"
        '    """\n'
    )
    function = ast.parse(stub).body[-1]
    assert isinstance(function, ast.FunctionDef) and len(function.body) == 1  # the docstring alone
    assert "re.sub" not in stub  # the wrong body is not there to be copied


def test_only_the_imports_the_body_uses_are_shown(tmp_path: Path) -> None:
    checks = [IssueCheck("textkit.counts('a a')", "Counter({'a': 2})")]
    stub = specification(unit(tmp_path, "counts"), checks, TEXT)
    assert stub is not None and stub.startswith("from collections import Counter as Tally\n\n\ndef counts(text):\n")
    assert "import re" not in stub and "import math" not in stub
    assert specification(unit(tmp_path, "counts"), checks) == (  # no module given: no imports
        'def counts(text):\n    """>>> counts(\'a a\')\n    Counter({\'a\': 2})\n    """\n'
    )


def test_a_backslash_in_an_example_makes_the_docstring_raw(tmp_path: Path) -> None:
    stub = specification(unit(tmp_path, "slugify"), [IssueCheck("textkit.slugify('a\\\\b')", "'a-b'")], TEXT)
    assert stub is not None and '    r"""Lower-case' in stub
    docstring = ast.get_docstring(ast.parse(stub).body[-1])  # type: ignore[arg-type]
    assert docstring is not None and ">>> slugify('a\\\\b')" in docstring


def test_no_stub_where_rewriting_would_lose_what_the_code_did_or_nothing_says_what_is_due(tmp_path: Path) -> None:
    checks = issue_checks(ISSUE)
    assert checks[1].expected is None  # `counts` is only mentioned
    assert specification(unit(tmp_path, "counts"), checks, TEXT) is None
    assert specification(unit(tmp_path, "slugify"), [IssueCheck("textkit.slug('a')", "'a'")], TEXT) is None
    assert specification(unit(tmp_path, "area"), [IssueCheck("textkit.area(1)", "3.14")], TEXT) is None  # one line
    assert specification(unit(tmp_path, "Box.size"), [IssueCheck("textkit.Box().size()", "2")], TEXT) is None
    assert specification(unit(tmp_path, "Box"), [IssueCheck("textkit.Box()", "2")], TEXT) is None  # a class
    long = Unit(
        "textkit/__init__.py",
        "slugify",
        1,
        MAX_LINES + 1,
        "def slugify(text):\n" + "    text = text.strip()\n" * MAX_LINES + "    return text",
    )
    assert specification(long, checks, TEXT) is None
    quoted = [IssueCheck("textkit.slugify('a')", '\'"""\'')]
    assert specification(unit(tmp_path, "slugify"), quoted, TEXT) is None


def test_an_import_under_try_is_shown_once_as_the_module_runs_it(tmp_path: Path) -> None:
    module = (
        "try:\n    import simplejson as json\nexcept ImportError:\n    import json\n\n\n"
        'def dump(value):\n    """As JSON."""\n    return json.dumps(value)\n'
    )
    (tmp_path / "m.py").write_text(module)
    dump = next(u for u in units_of(tmp_path, "m.py") if u.name == "dump")
    stub = specification(dump, [IssueCheck("m.dump(1)", "'1'")], module)
    assert stub is not None and stub.startswith("import simplejson as json\nimport json\n\n\ndef dump(value):\n")
    # the same statement in two branches is one import to the reader
    branches = "if True:\n    import json\nelse:"
    module = module.replace("try:\n    import simplejson as json\nexcept ImportError:", branches)
    (tmp_path / "m.py").write_text(module)
    dump = next(u for u in units_of(tmp_path, "m.py") if u.name == "dump")
    stub = specification(dump, [IssueCheck("m.dump(1)", "'1'")], module)
    assert stub is not None and stub.startswith("import json\n\n\ndef dump(value):\n")
