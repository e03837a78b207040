"""Merging a fragment of a Python file into the file, for `write_file`.

Small models asked to change one function often "write the whole file" with that function alone,
perhaps with a method dedented out of its class, an import it needs and a line that calls it as an
example. Written as given, that deletes the rest of the module and everything that imports it.
`merge_python` instead puts each definition of such a fragment where its namesake is, and keeps
the rest of the file. A class the same way: one that lacks some of its namesake's methods (a model
shows the class around the one method it changed) has its members merged into the class, not
written over it. A content that defines every function and class the file defines is a real
rewrite, and is left to be written as it is (unless the file's one definition is a class given in
part).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import cast

_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
_Import = ast.Import | ast.ImportFrom


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):  # ValueError: a null byte
        return None


def _span(node: ast.stmt) -> tuple[int, int]:
    """The 0-based slice of lines `node` covers, its decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first - 1, node.end_lineno or node.lineno


def _methods(body: list[ast.stmt], prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every method of every class in `body`, nested classes included."""
    for node in body:
        if isinstance(node, ast.ClassDef):
            for child in node.body:
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{prefix}{node.name}.{child.name}", child
            yield from _methods(node.body, f"{prefix}{node.name}.")


def import_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run at import time: top-level ones and those under `try`, `if` and `with`."""
    for node in body:
        if isinstance(node, _Import):
            yield node
        elif isinstance(node, ast.Try | ast.If | ast.With):
            for part in ("body", "orelse", "finalbody"):
                yield from import_statements(getattr(node, part, []))
            for handler in getattr(node, "handlers", []):
                yield from import_statements(handler.body)


def _bindings(node: _Import) -> set[tuple[str, str, str | None, int]]:
    module, level = (node.module or "", node.level) if isinstance(node, ast.ImportFrom) else ("", 0)
    return {(module, alias.name, alias.asname, level) for alias in node.names}


def _targets(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _members(node: ast.ClassDef) -> dict[str, list[ast.stmt]]:
    """A class body's definitions and assignments by name (a property's getter and setter share one)."""
    found: dict[str, list[ast.stmt]] = {}
    for child in node.body:
        for name in [child.name] if isinstance(child, _Def) else _targets(child):
            found.setdefault(name, []).append(child)
    return found


def _class_line(node: ast.ClassDef) -> str:
    """What a class line says: bases, keywords and decorators (not the body)."""
    parts = [*node.bases, *node.keywords, *node.decorator_list]
    return " ".join(ast.unparse(part) for part in parts)


def _given_whole(old: ast.ClassDef, new: ast.ClassDef) -> bool:
    """Whether `new` defines every method and nested class of its namesake `old` (a rewrite of the
    class), not just the few a model changed."""
    return {c.name for c in old.body if isinstance(c, _Def)} <= {c.name for c in new.body if isinstance(c, _Def)}


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test).replace("'", '"') == '__name__ == "__main__"'


def _top(tree: ast.Module, lines: list[str]) -> int:
    """Where an import goes in a file that has none: after the docstring, or after leading comments."""
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return _span(first)[1]
    top = 0
    while top < len(lines) and lines[top].startswith("#"):
        top += 1
    return top


def merge_python(old: str, new: str) -> tuple[str, list[str]] | None:
    """`old` with the definitions of the fragment `new` merged in, and what was done, in words.

    None when `new` is not a fragment of `old` (it defines every top-level function and class of
    `old`, unless `old`'s only definition is a class that `new` gives in part; `old` defines none;
    or either does not parse): then `new` should be written as it is.

    Each top-level definition of `new` replaces the one of the same name (decorators included),
    except a class lacking some of its namesake's methods and nested classes: each of its members
    replaces the member of that name (new ones go at the end of the class), and the class line and
    the other members stay. A function named like exactly one method of `old` (and like no
    top-level definition) replaces that method, indented to fit; others go at the end, before a
    `__main__` guard. Imports `old` lacks go after its last top-level import; an assignment replaces
    the top-level one of the same name, and a new one is kept when a merged definition uses it.
    Other statements (example calls, prints, asserts) are left out.
    """
    old_tree, new_tree = _parse(old), _parse(new)
    if old_tree is None or new_tree is None:
        return None
    old_defs = {node.name: node for node in old_tree.body if isinstance(node, _Def)}
    new_defs = {node.name: node for node in new_tree.body if isinstance(node, _Def)}
    partial = {
        name: node
        for name, node in new_defs.items()
        if isinstance(node, ast.ClassDef)
        and isinstance(old_defs.get(name), ast.ClassDef)
        and not _given_whole(cast(ast.ClassDef, old_defs[name]), node)
    }
    # every definition given is a rewrite, except a file of one class given in part (its methods)
    if not old_defs or (old_defs.keys() <= new_defs.keys() and (len(old_defs) > 1 or not partial)):
        return None
    lines = old.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    new_lines = new.splitlines(keepends=True)

    def source(node: ast.stmt, indent: str = "") -> str:
        """`node`'s lines in `new`, moved from their own indentation to `indent`."""
        start, end = _span(node)
        own = _indent(new_lines[start])
        text = "".join(
            indent + line[len(own) :] if line.startswith(own) and line.strip() else line
            for line in new_lines[start:end]
        )
        return text if text.endswith("\n") else text + "\n"

    def insert(at: int, text: str) -> None:
        edits[(at, at)] = edits.get((at, at), "") + text

    edits: dict[tuple[int, int], str] = {}  # a slice of old lines -> its new text (an empty slice inserts)
    replaced: list[str] = []
    added: list[str] = []
    appended: list[_Def] = []
    left_out: list[str] = []
    methods: dict[str, list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]] = {}
    for qualified, method in _methods(old_tree.body):
        methods.setdefault(method.name, []).append((qualified, method))
    for name, node in new_defs.items():
        found = [] if isinstance(node, ast.ClassDef) else methods.get(name, [])
        owner = found[0][0].split(".")[0] if len(found) == 1 else None
        if name in partial:  # the class around the members a model changed: merged member by member
            old_class = cast(ast.ClassDef, old_defs[name])
            if _class_line(partial[name]) not in ("", _class_line(old_class)):  # bases left off say nothing
                left_out.append(f"the class line of {name} (its bases and decorators are kept as they were)")
            old_members = _members(old_class)
            body_indent = _indent(lines[_span(old_class.body[0])[0]])
            for member_name, given in _members(partial[name]).items():
                were = old_members.get(member_name, [])
                if not were:
                    insert(_span(old_class)[1], "".join("\n" + source(member, body_indent) for member in given))
                    added.append(f"{name}.{member_name}")
                elif len(were) == len(given):  # one by one, a property's getter and setter in their order
                    for was, member in zip(were, given, strict=True):
                        edits[_span(was)] = source(member, body_indent)
                    replaced.append(f"{name}.{member_name}")
                else:
                    left_out.append(
                        f"{name}.{member_name} (defined {len(were)} times in the class, given {len(given)})"
                    )
        elif name in old_defs:
            edits[_span(old_defs[name])] = source(node)
            replaced.append(name)
        elif owner in partial and name in _members(partial[owner]):
            left_out.append(f"{name} (given inside its class {owner} too)")
        elif owner in new_defs and owner not in partial:
            left_out.append(f"{name} (its class {owner} is given whole)")
        elif len(found) == 1:
            qualified, method = found[0]
            start, end = _span(method)
            edits[(start, end)] = source(node, _indent(lines[start]))
            replaced.append(qualified)
        elif found:
            owners = " and ".join(q for q, _ in found)
            left_out.append(f"{name} ({owners} share the name; give it inside its class)")
        else:
            appended.append(node)

    used = {n.id for node in [*new_defs.values()] for n in ast.walk(node) if isinstance(n, ast.Name)}
    old_assigns = {name: node for node in old_tree.body for name in _targets(node)}
    have = set().union(*(_bindings(node) for node in import_statements(old_tree.body)))
    future: list[str] = []
    imports: list[str] = []
    constants: list[str] = []
    imported: list[str] = []
    dropped = 0
    for index, statement in enumerate(new_tree.body):
        names = _targets(statement)
        if isinstance(statement, _Def):
            continue
        if isinstance(statement, _Import):
            if not _bindings(statement) <= have:
                have |= _bindings(statement)
                is_future = isinstance(statement, ast.ImportFrom) and statement.module == "__future__"
                (future if is_future else imports).append(source(statement))
                imported.append(ast.unparse(statement))
        elif matched := [name for name in names if name in old_assigns]:
            edits[_span(old_assigns[matched[0]])] = source(statement)
            replaced.append(matched[0])
        elif set(names) & used:
            constants.append(source(statement))
            added.append(names[0])
        elif not (index == 0 and isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
            dropped += 1  # a docstring of the fragment goes without saying

    last_import = max((_span(node)[1] for node in old_tree.body if isinstance(node, _Import)), default=None)
    top = _top(old_tree, lines)
    if future:
        edits[(top, top)] = "".join(future)
    if imports or constants:
        at = top if last_import is None else last_import
        block = "".join(imports + constants)
        if last_import is None:  # a new import section, set apart by blank lines
            block = ("\n" if at else "") + block + ("\n" if at < len(lines) and lines[at].strip() else "")
        insert(at, block)
    definitions = "\n\n\n".join(source(node).rstrip("\n") for node in appended)
    guard = old_tree.body[-1] if _is_main_guard(old_tree.body[-1]) else None
    if appended and guard is not None:  # a script's new function must exist before its main code runs
        insert(guard.lineno - 1, definitions + "\n\n\n")
    added += [node.name for node in appended]

    for (start, end), text in sorted(edits.items(), reverse=True):
        lines[start:end] = [text]
    merged = "".join(lines)
    if appended and guard is None:
        merged = merged.rstrip("\n") + "\n\n\n" + definitions + "\n"
    if _parse(merged) is None:
        return None

    done = (("replaced", replaced), ("added", added), ("added", imported))
    changes = [f"{verb} {', '.join(names)}" for verb, names in done if names]
    changes += [f"left out {what}" for what in left_out]
    if dropped:
        changes.append(f"left out {dropped} other top-level statement{'s' * (dropped > 1)} (example code)")
    return merged, changes
