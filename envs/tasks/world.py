"""Function-level code tasks as worlds: the agent edits `solution.py`; hidden tests give the reward.

The examples in the task's docstring are the visible tests: they run after every change the agent
makes, at `finish` and on `run_tests`, and their results are part of the observation (what the agent
sees) and of its data (what the critic scores). The hidden tests are only run by `reward()`. Doctest
form (`>>> f(2)` / `4`) is read first; a docstring without it may give its examples inline, as many
problem sets do (`f(2) == 4`, `f(2) ➞ 4`, `f(2) -> 4`, `f(2) should return 4`), and those become
doctest examples (`inline_examples`).
"""

from __future__ import annotations

import ast
import doctest
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from trellis.envs.code.files import locate
from trellis.envs.code.testlog import PASSING, parse_pytest_log
from trellis.envs.code.workspace import host_git_dir, init_repository
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox.base import RunRequest, RunResult
from trellis.envs.sandbox.host import HostSandbox
from trellis.envs.tasks.catalog import TASKS, CodeTask
from trellis.envs.tasks.probes import (
    PROBE_RUNNER,
    PROBE_SECONDS,
    boundary_calls,
    crashes,
    last_report,
    probe_calls,
    signature,
)

from trellis.errors import UserError
from trellis.tree import Action, Observation
from trellis.world import FINISH_HINT, Behaviour, Reward

HIDDEN_TEST = "_hidden_test.py"
EXAMPLES_CHECK = "_examples_check.py"
PROBE_CHECK = "_probe_check.py"
SOLUTION = "solution.py"
TASK_TOOLS = ["view_file", "write_file", "replace", "shell", "run_tests", "finish", "reject"]
REVISION_TOOLS = [*TASK_TOOLS, "revert"]
"""The task tools and `revert`, which returns the files to an earlier state (revision trajectories use it)."""
EDIT_TOOLS = {"write_file", "replace", "insert", "create_file", "shell", "revert"}
EXAMPLE_TIMEOUT = 20.0

# Runs in the sandbox: the prompt's examples as one doctest (they share a namespace, as under
# `python -m doctest`) against solution.py; one JSON line with a result per example, in order.
_RUNNER = r"""
import doctest, io, json, sys, traceback
PROMPT = sys.stdin.read()
try:
    import solution
except BaseException as exc:
    print(json.dumps({"import_error": f"{type(exc).__name__}: {exc}"}))
    sys.exit(0)


class Recorder(doctest.DocTestRunner):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.results = []

    def report_success(self, out, test, example, got):
        self.results.append({"passed": True, "report": ""})

    def report_failure(self, out, test, example, got):
        report = io.StringIO()
        super().report_failure(report.write, test, example, got)
        self.results.append({"passed": False, "report": report.getvalue()[-1500:]})

    def report_unexpected_exception(self, out, test, example, exc_info):
        # the traceback's frames in solution.py alone: doctest's own frames only cost a reader's attention
        frames = [f for f in traceback.extract_tb(exc_info[2]) if f.filename.endswith("solution.py")]
        text = "".join(traceback.format_list(frames) + traceback.format_exception_only(*exc_info[:2]))
        report = "Failed example:\n    " + example.source.strip() + "\nException raised:\n"
        report += "".join("    " + line + "\n" for line in text.splitlines())
        self.results.append({"passed": False, "report": report[-1500:]})


test = doctest.DocTestParser().get_doctest(PROMPT, dict(vars(solution)), "solution.py", "solution.py", 0)
runner = Recorder(optionflags=doctest.ELLIPSIS)  # whitespace counts: "a  b" is not "a b"
runner.run(test, out=lambda text: None, clear_globs=True)
print(json.dumps({"results": runner.results}))
"""


def get_task(task_id: str) -> CodeTask:
    for task in TASKS:
        if task.id == task_id:
            return task
    raise UserError(f"unknown code task {task_id!r}; known: {', '.join(t.id for t in TASKS)}")


def task_statement(task: CodeTask, *, checked: bool = True) -> str:
    note = (
        " After each change, the examples in the docstring are run and you see which pass."
        if checked and examples_of(examples_doctest(task))
        else ""
    )
    return (
        f"Implement `{task.entry_point}` in solution.py so that it does what its docstring says.\n\n"
        f"solution.py now holds:\n```python\n{task.prompt}```\n"
        f"Write the complete new solution.py.{note} When the implementation is right, finish."
    )


def examples_of(prompt: str) -> list[tuple[str, str]]:
    """The doctest examples of a task's prompt as (source, expected output) pairs."""
    try:
        return [(e.source, e.want) for e in doctest.DocTestParser().get_examples(prompt)]
    except ValueError:  # a malformed docstring example: no visible tests rather than a crash
        return []


def examples_doctest(task: CodeTask) -> str:
    """The text whose doctest examples are the task's visible tests: its prompt when that has doctest
    examples, else doctest examples made from the prompt's inline ones ("" when it has neither).
    Lines that only close a docstring are blanked: an example's expected output ends there, where
    doctest would take the quotes for part of it (HumanEval's prompts close right after an example)."""
    text = _CLOSING_QUOTES.sub("", task.prompt)
    if examples_of(text):
        return text
    return "".join(f">>> {source}\n{want}\n" for source, want in inline_examples(task.prompt, task.entry_point))


# What joins a call to its value in an inline example: `f(2) == 4`, `f(2) ➞ 4`, `f(2) should return 4`
_JOIN = re.compile(
    r"[ \t]*#?[ \t]*(?:==>|-->|==|➞|→|⟶|->|=>|\bshould (?:return|be|give)\b|\breturns\b|\bgives\b)[ \t]*", re.I
)
_CANONICAL = (str, int, bool)
_CLOSING_QUOTES = re.compile(r"^[ \t]*(?:\"\"\"|\'\'\')[ \t]*$", re.M)
_LONGEST = 400
"""Characters of a call, or of what follows it, that are read for an inline example."""


def inline_examples(prompt: str, entry_point: str) -> list[tuple[str, str]]:
    """Examples the entry point's docstring gives inline, as doctest (source, expected output)
    pairs: a call of `entry_point` with literal arguments, on one line, joined to a literal value by
    `==`, an arrow (`➞`, `->`, `=>`, `==>`) or words (`should return`, `returns`). The call is shown
    with the value's repr where a right answer prints it so (strings, integers, booleans, lists and
    tuples of them: as in any doctest, 4.0 where 4 is due, or 1 for True, does not pass); None is
    checked with `is None`, other values (floats, dicts, sets) by `==`, as the example states. Prose
    after the value is ignored; a value that is not a literal (`19 - 5 - 6`) gives no example."""
    examples: list[tuple[str, str]] = []
    text = _docstring(prompt, entry_point)
    for match in re.finditer(rf"(?<![\w.]){re.escape(entry_point)}\(", text):
        if re.search(r"\bdef\s+$", text[: match.start()]):
            continue
        end = _closing(text, match.end() - 1)
        if end is None:
            continue
        call = text[match.start() : end]
        join = _JOIN.match(text, end)
        if join is None or not _literal_call(call):
            continue
        line_end = text.find("\n", join.end())
        rest = text[join.end() : len(text) if line_end < 0 else line_end][:_LONGEST]
        found = _leading_literal(re.split(r'"""|\'\'\'', rest)[0])  # the docstring may close on the line
        if found is None:
            continue
        value_text, value = found
        if value is None:
            example = (f"{call} is None", "True")
        elif _canonical(value) and "..." not in repr(value):  # the runner reads `...` as "anything"
            example = (call, repr(value))
        else:
            example = (f"{call} == {value_text}", "True")
        if example not in examples:
            examples.append(example)
    return examples


def _docstring(prompt: str, entry_point: str) -> str:
    """The raw docstring of `entry_point` in `prompt` (the whole prompt where the prompt does not
    parse or the function has none): examples elsewhere, in code or in another function's
    docstring, are not the entry point's."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return prompt
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == entry_point:
            docstring = ast.get_docstring(node, clean=False)
            return docstring if docstring is not None else prompt
    return prompt


def _literal_call(source: str) -> bool:
    """Whether `source` is one call whose arguments are all literals (`f([1, 2], k=3)`, not `f(a)`)."""
    if len(source) > _LONGEST:
        return False
    try:
        call = ast.parse(source, mode="eval").body
        if not isinstance(call, ast.Call) or any(isinstance(arg, ast.Starred) for arg in call.args):
            return False
        for argument in [*call.args, *(keyword.value for keyword in call.keywords)]:
            ast.literal_eval(argument)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return False
    return all(keyword.arg is not None for keyword in call.keywords)


def _closing(text: str, start: int) -> int | None:
    """The index just past the bracket that closes the one at `start`, on the same line, skipping
    brackets inside string literals; None when the line ends first."""
    depth, quote, index = 0, "", start
    while index < len(text):
        char = text[index]
        if char == "\n":
            return None
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


def _leading_literal(text: str) -> tuple[str, object] | None:
    """The longest start of `text` that is a Python literal (its source and value), where it ends at
    the end of a word and no operator follows: `False (not balanced)` gives `False`, `'ab'.` gives
    `'ab'`, `19 - 5` gives nothing."""
    text = text.strip()
    for end in range(len(text), 0, -1):
        if end < len(text) and not (text[end].isspace() or text[end] in ".,;"):
            continue
        if text[end:].lstrip(" \t")[:1] in tuple("+-*/%<>=&|^@"):
            continue
        head = text[:end].rstrip()
        if head.endswith(","):  # `4, f(3) == 6`: a list of examples, not the tuple (4,)
            continue
        try:
            return head, ast.literal_eval(head)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            continue
    return None


def _canonical(value: object) -> bool:
    """Whether a right answer's result prints as `value`'s repr (strings, integers, booleans, lists
    and tuples of them)."""
    if isinstance(value, list | tuple):
        return all(_canonical(item) for item in value)
    return isinstance(value, _CANONICAL)


def definitions_only(source: str, module: str = "solution", entry_point: str | None = None) -> tuple[str, int]:
    """`source` without the top-level code small models append to a solution: example runs, asserts,
    prints, a `finish()` call, an import of the module itself. Everything else stays: imports,
    definitions, constants (also computed ones), `try` blocks, loops that build tables, a `__main__`
    guard. Returns (the new source, how many lines were left out); source that does not parse is
    returned unchanged (the examples report the syntax error).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source, 0
    noisy = {"print", "input", "finish", "exit", "quit", "breakpoint", *([entry_point] if entry_point else [])}
    lines = source.splitlines(keepends=True)
    drop: list[tuple[int, int]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Import):
            keep = all(alias.name.split(".")[0] != module for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            keep = (node.module or "").split(".")[0] != module
        elif isinstance(node, ast.Assert):
            keep = False
        elif isinstance(node, ast.If) and "__name__" in ast.unparse(node.test):
            keep = True
        else:  # statements that run the solution or print are example runs; the rest is set-up
            called = {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            keep = not (called & noisy) and not any(isinstance(n, ast.Assert) for n in ast.walk(node))
        if not keep:
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            drop.append((start, node.end_lineno or node.lineno))
    if not drop:
        return source, 0
    dropped = {line for start, end in drop for line in range(start, end + 1)}
    kept = "".join(text for number, text in enumerate(lines, 1) if number not in dropped)
    return kept.rstrip() + "\n", len(dropped)


def defines(source: str, name: str) -> bool | None:
    """Whether `source` defines `name` at top level (None when it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return any(
        (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name)
        or (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets))
        for node in tree.body
    )


def _compact(report: str) -> str:
    """A doctest failure report without its file/line header and separator lines."""
    lines = [line for line in report.splitlines() if line.strip() and not line.startswith(("****", "File "))]
    return "\n".join(lines)


def make_task_repository(task: CodeTask, root: str | Path | None = None) -> Path:
    """A fresh git repository holding the task's starting `solution.py`."""
    folder = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix=f"trellis-task-{task.id}-"))
    init_repository(folder, {"solution.py": task.prompt}, message=f"task {task.id}")
    return folder


def fresh_task_repository(task: CodeTask, root: str | Path) -> Path:
    """`make_task_repository` at `root`, after removing what an attempt that never stored its run left
    there (the repository and its host-side git folder)."""
    folder = Path(root)
    for leftover in (folder, host_git_dir(folder)):
        shutil.rmtree(leftover, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return make_task_repository(task, folder)


class CodeTaskWorld(CodeWorld):
    """A code task in a sandbox; `reward()` runs the hidden tests (1.0 when all pass)."""

    @property
    def checks_complete(self) -> bool:
        """The docstring examples are the task's own acceptance checks: an answer that passes them all
        is complete (the search's `finish_when_checked`); the hidden tests stay the judge. Without
        visible examples there is no such check."""
        return bool(self.examples)

    def __init__(
        self,
        task: CodeTask,
        sandbox: HostSandbox,
        *,
        test_timeout: float = 60.0,
        visible_examples: bool = True,
        tools: Sequence[str] = TASK_TOOLS,
    ) -> None:
        """`visible_examples=False` hides the docstring examples' results (to measure what they are worth);
        `tools`: the code tools offered (`TASK_TOOLS`, or with `revert` added: `REVISION_TOOLS`)."""
        super().__init__(
            sandbox,
            task=task_statement(task, checked=visible_examples),
            test_command="python -m pytest -rA -q -p no:cacheprovider",
            test_timeout=test_timeout,
            hidden_paths=[HIDDEN_TEST],
            tools=tools,
            # plain pytest is all the hidden tests need; plugins of this Python would cost seconds per run
            test_env={"PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        )
        self.hidden_paths += [EXAMPLES_CHECK, PROBE_CHECK]
        self.code_task = task
        self.examples_text = examples_doctest(task) if visible_examples else ""
        """The doctest text whose examples run (see `examples_doctest`)."""
        self.examples = examples_of(self.examples_text)
        self.probes = probe_calls((source for source, _ in self.examples), task.entry_point)
        """The calls `behaviour` runs an answer on (see `trellis.envs.tasks.probes`)."""
        self.boundary = boundary_calls((source for source, _ in self.examples), task.entry_point)
        """The probes with the smallest inputs, on which a crash is a bug."""
        self.default_path = SOLUTION
        """Where a code block without a path goes: the one file a task is about."""

    def _is_solution(self, path: str) -> bool:
        """Whether `path` names solution.py, forgiven as the tools forgive it (/workspace/..., quotes)."""
        try:
            _, relative = locate(self.root, path, alias=self.sandbox.workspace, names=(self.repo_name,))
        except UserError:
            return False
        return relative == SOLUTION

    async def check_examples(self) -> tuple[dict[str, str], str]:
        """Run the docstring examples against solution.py: (status per example, a summary for the agent)."""
        if not self.examples:
            return {}, ""
        result = await self._run_checker(EXAMPLES_CHECK, _RUNNER, stdin=self.examples_text)
        names = [f"example {i + 1}: {source.strip()}" for i, (source, _) in enumerate(self.examples)]
        if result.timed_out:
            return {n: "FAILED" for n in names}, (
                f"The examples did not finish within {EXAMPLE_TIMEOUT:g} s: the code loops forever or is far too slow."
            )
        report = last_report(result.stdout)
        if report is None:
            report = {"import_error": (result.stderr or result.stdout).strip()[-800:] or "no output"}
        if "import_error" in report:
            return {n: "FAILED" for n in names}, f"solution.py cannot be imported: {report['import_error']}"
        results = report.get("results", [])
        statuses = {n: "PASSED" if r.get("passed") else "FAILED" for n, r in zip(names, results, strict=False)}
        passed = sum(1 for status in statuses.values() if status == "PASSED")
        lines = [f"Examples from the docstring: {passed} of {len(names)} pass."]
        failures = [_compact(str(r.get("report", ""))) for r in results if not r.get("passed")]
        lines += failures[:3]
        if len(failures) > 3:
            lines.append(f"({len(failures) - 3} more failing examples)")
        if failures:
            lines.append("Fix solution.py so that the failing examples pass.")
        else:
            lines.append(FINISH_HINT)
        return statuses, "\n".join(lines)

    async def step(self, action: Action) -> Observation:
        note = ""
        if action.tool in ("write_file", "create_file") and self._is_solution(str(action.args.get("path", ""))):
            content, dropped = definitions_only(
                str(action.args.get("content", "")), entry_point=self.code_task.entry_point
            )
            if defines(content, self.code_task.entry_point) is False:
                return Observation(
                    text=f"not written: the new solution.py does not define `{self.code_task.entry_point}`. "
                    f"Write the whole file, with the complete `{self.code_task.entry_point}` in it.",
                    is_error=True,
                )
            if dropped:
                action = action.model_copy(update={"args": {**action.args, "content": content}})
                note = (
                    f"\n(left out {dropped} lines of top-level code that ran at import, such as example calls, "
                    "asserts or prints: solution.py holds definitions only)"
                )
        if action.tool == "run_tests" and self.examples:  # a task's tests are its examples, whatever was asked
            statuses, summary = await self.check_examples()
            failed = any(status != "PASSED" for status in statuses.values())
            return Observation(text=summary, is_error=failed, tests=statuses)
        observation = await super().step(action)
        if note and not observation.is_error:
            observation = observation.model_copy(update={"text": observation.text + note})
        checks = action.tool == "finish" or (action.tool in EDIT_TOOLS and not observation.is_error)
        if not checks or not self.examples or (action.tool == "finish" and observation.is_error):
            return observation
        statuses, summary = await self.check_examples()
        return observation.model_copy(
            update={"text": f"{observation.text}\n{summary}", "tests": {**(observation.tests or {}), **statuses}}
        )

    async def behaviour(self, state: str) -> Behaviour | None:
        """How the answer in `state` behaves on probe calls near the examples' (see
        `trellis.envs.tasks.probes`): a signature equal for answers that behave alike, and the calls it
        crashed on; None when the examples give no probes. A run that gave nothing usable gets a
        signature of its own, equal to no other answer's."""
        if not self.probes:
            return None
        await self.restore(state)
        result = await self._run_checker(PROBE_CHECK, PROBE_RUNNER, f"{PROBE_SECONDS:g}", stdin=json.dumps(self.probes))
        report = None if result.timed_out else last_report(result.stdout)
        found = signature(report, len(self.probes))
        if found is None:
            # a run that gave nothing usable (it hung past every alarm, died, or could not be
            # imported) agrees with no other answer, and counts as a crash: it is never evidence
            why = f"did not end within {EXAMPLE_TIMEOUT:g} s" if result.timed_out else "died without a report"
            return Behaviour(signature=f"no usable probe run ({state})", crashes=[f"the probe run {why}"])
        return Behaviour(signature=found, crashes=crashes(self.probes, report, self.boundary))

    async def _run_checker(self, name: str, script: str, *args: str, stdin: str) -> RunResult:
        """Run one of the world's own check scripts as `name` in the workspace (a hidden path, removed
        afterwards), with `stdin`, under the examples' time limit."""
        await self.sandbox.write_file(name, script)
        try:
            return await self.sandbox.run(
                RunRequest(
                    command=" ".join(["python", name, *args]),
                    stdin=stdin,
                    timeout=EXAMPLE_TIMEOUT,
                    env=self.test_env,
                )
            )
        finally:
            self.sandbox.host_path(name).unlink(missing_ok=True)

    async def grade(self, state: str) -> Reward:
        """The hidden tests' verdict on a state of this world (restored first)."""
        await self.restore(state)
        return await self.reward()

    async def reward(self) -> Reward:
        await self.sandbox.write_file(HIDDEN_TEST, self.code_task.tests)
        try:
            result = await self.run(
                f"python -m pytest -rA -q -p no:cacheprovider {HIDDEN_TEST}", timeout=self.test_timeout
            )
        finally:
            self.sandbox.host_path(HIDDEN_TEST).unlink(missing_ok=True)
        statuses = parse_pytest_log(result.stdout)
        if not statuses and "No module named pytest" in result.stdout + result.stderr:
            raise UserError(
                "the hidden tests need pytest in the Python the sandbox runs (`python`): pip install pytest"
            )
        passed = sum(1 for status in statuses.values() if status in PASSING)
        resolved = bool(statuses) and passed == len(statuses) and result.ok
        return Reward(
            value=1.0 if resolved else 0.0,
            resolved=resolved,
            details={"tests": statuses, "passed": passed, "total": len(statuses), "timed_out": result.timed_out},
            summary=f"{passed}/{len(statuses)} hidden tests pass" + (" (timed out)" if result.timed_out else ""),
        )
