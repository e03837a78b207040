"""A short function that an issue's examples pin down, restated as a stub to write it from.

Shown a wrong function and asked to fix it, a small model mostly returns the function it was shown:
the body it reads is the body it writes. Shown the same function's signature and docstring, with
the issue's calls of it as doctest examples and no body, and asked to complete it, it writes the
function as it writes any function from a docstring. For `example__textkit-1` about one reply in
eight makes the issue's example pass, against about one in thirty of the repair prompt's (see the
README). That suits a function short enough that writing it anew loses little of what its body
did, and an issue that says what a call of it should return: `specification` says when, and gives
the stub.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from trellis.envs.code.localise import Unit
from trellis.envs.code.merge import import_statements
from trellis.envs.code.reproduce import IssueCheck

MAX_LINES = 30
"""The longest function (decorators and docstring included) that is rewritten from its stub."""


def specification(unit: Unit, checks: Sequence[IssueCheck], module: str = "") -> str | None:
    """The stub of `unit` to complete: the imports of its `module` (the file's source) that its body
    uses, its signature, and its docstring followed by doctest examples, the issue's calls of it with
    the values the issue says they should return.

    None where the stub does not fit: `unit` is not a module-level function of at most `MAX_LINES`
    lines with a line of its own for a docstring, or no check with an expected value calls it.
    """
    if "." in unit.name or len(unit.source.splitlines()) > MAX_LINES:
        return None
    try:
        parsed = ast.parse(unit.source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    function = parsed.body[0] if len(parsed.body) == 1 else None
    if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) or function.name != unit.name:
        return None
    first = function.body[0]
    if first.lineno == function.lineno:  # `def f(x): return x`: no line of its own for a docstring
        return None
    examples = _examples(unit.name, checks)
    if not examples:
        return None
    doc = ast.get_docstring(function)
    text = "\n\n".join([*([doc.strip()] if doc else []), "\n".join(examples)])
    if '"""' in text:
        return None
    indent = " " * first.col_offset
    body = [f"{indent}{line}" if line.strip() else "" for line in text.splitlines()]
    quote = 'r"""' if "\\" in text else '"""'
    header = [*_imports(module, function), *unit.source.splitlines()[: first.lineno - 1]]
    return "\n".join([*header, f"{indent}{quote}{body[0].lstrip()}", *body[1:], f'{indent}"""']) + "\n"


def _examples(name: str, checks: Sequence[IssueCheck]) -> list[str]:
    """Doctest lines for the checks that call `name` and say what it should return."""
    examples: list[str] = []
    for check in checks:
        callee, _, arguments = check.expression.partition("(")
        if check.expected is None or callee.split(".")[-1] != name:
            continue
        examples += [f">>> {name}({arguments}", check.expected]
    return examples


def _imports(module: str, function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The module's import statements that run at import time (top-level, or under `try`, `if` and
    `with`) and bind a name the function uses, then two blank lines (nothing where there are none):
    the stub says which libraries the body had at hand."""
    try:
        parsed = ast.parse(module)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    used = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)}
    found: list[str] = []
    for statement in import_statements(parsed.body):
        bound = {(a.asname or a.name).split(".")[0] for a in statement.names}
        if bound & used and ast.unparse(statement) not in found:
            found.append(ast.unparse(statement))
    return [*found, "", ""] if found else []
