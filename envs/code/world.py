"""`CodeWorld`: an agent's world over a git workspace in a sandbox."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from pydantic import ValidationError
from trellis.envs.code import nearby
from trellis.envs.code.container import ContainerFiles, ContainerWorkspace
from trellis.envs.code.files import HostFiles, WorkspaceFiles
from trellis.envs.code.gold import gold_evidence, shows_gold
from trellis.envs.code.reproduce import RUNNER, ChecksReport, IssueCheck, checks_report
from trellis.envs.code.testlog import PASSING, parse_pytest_log
from trellis.envs.code.tools import CODE_TOOLS, ToolFn
from trellis.envs.code.workspace import GitWorkspace
from trellis.envs.sandbox.base import RunRequest, RunResult
from trellis.envs.sandbox.docker import DockerSandbox
from trellis.envs.sandbox.host import HostSandbox

from trellis.errors import TrellisRunError, UserError
from trellis.judging import judgements, rewards_by_step, score_judgements
from trellis.tools import ToolSpec
from trellis.tree import Action, Observation, StateId, Step
from trellis.world import Reward

CHANGING_TOOLS = {"write_file", "create_file", "replace", "insert", "shell", "revert"}
OPT_IN_TOOLS = {"revert"}
"""Tools a world offers only when asked for by name (`tools=`): the default prompts stay as they were."""
READING_TOOLS = ("view_file", "search", "find_file", "find_symbol")
"""Tools whose observations a judge rules on (ReSeek's retrievals, in a repository)."""


class CodeWorld:
    """A repository at a base commit, tools to read, edit and test it, and git-tree states.

    The sandbox decides where: a folder on this machine (bubblewrap, local), with host git on a git
    directory beside it, or a container (docker), with git inside it on root's own directory.

    `hidden_paths` (a task's hidden test files) never appear in the submitted patch. `repo_name` (the
    repository's name, e.g. `django`) is a folder name the file tools drop when a path starts with it.
    """

    def __init__(
        self,
        sandbox: HostSandbox | DockerSandbox,
        *,
        task: str,
        base: str = "HEAD",
        test_command: str | None = None,
        test_timeout: float = 300.0,
        hidden_paths: Sequence[str] = (),
        parse_log: Callable[[str], dict[str, str]] = parse_pytest_log,
        tools: Sequence[str] | None = None,
        test_env: dict[str, str] | None = None,
        repo_name: str | None = None,
        default_path: str | None = None,
        issue_checks: Sequence[IssueCheck] = (),
        packs: Path | None = None,
        nearby_tests: bool = False,
        gold_patch: str | None = None,
    ) -> None:
        """`default_path`: where a code block without a path goes (and the path the action format's
        help shows); `issue_checks`: calls from the issue, run after every change (see `reproduce`);
        `packs`: in a container, a host folder that keeps every state (so a new container can restore it);
        `nearby_tests`: after every change, run the repository's tests next to it (with a pytest
        `test_command`) and import each changed module, and count the tests and imports it broke as
        failing (see `nearby`); `gold_patch`: the reference
        patch, kept on the host for the judge reward (`judge_rewards`), never shown to the agent."""
        self.sandbox = sandbox
        self.task = task
        self.default_path = default_path
        self.issue_checks = list(issue_checks)
        self.nearby_tests = nearby_tests
        self.gold = gold_evidence(gold_patch, exclude=hidden_paths) if gold_patch else None
        self._test_files: list[tuple[str, str]] | None = None
        self._before: dict[tuple[str, ...], dict[str, str]] = {}
        """What the tests next to a change gave at the base commit, by test files."""
        self._imports_before: dict[str, str] = {}
        """How each changed module's import went at the base commit (PASSED, FAILED or UNKNOWN)."""
        self._nearby: dict[str, tuple[dict[str, str], str]] = {}
        """What they gave for each patch so far (a step that changed nothing runs nothing)."""
        self._nearby_counts: dict[str, dict[str, int]] = {}
        """For each patch, how many of them it broke, how many passed before and how many of the broken
        are imports (`data["nearby"]`)."""
        self._checks_before: dict[str, str] | None = None
        """What the issue's calls gave at the base commit (see `run_issue_checks`)."""
        self.workspace: GitWorkspace | ContainerWorkspace
        self.files: WorkspaceFiles
        if isinstance(sandbox, DockerSandbox):
            self.root: Path | None = None
            self.repo_name = repo_name or PurePosixPath(sandbox.workspace).name
            self.workspace = ContainerWorkspace(sandbox, base, packs=packs)
            self.files = ContainerFiles(sandbox, names=(self.repo_name,))
        else:
            root = sandbox.root
            self.root = root
            self.repo_name = repo_name or root.name
            self.workspace = GitWorkspace(root, base, on_change=lambda paths: sandbox.adopt(*paths))
            self.files = HostFiles(root, alias=sandbox.workspace, names=(root.name, self.repo_name))
            _check_git_dir_unreachable(sandbox, self.workspace.git_dir)
        self.test_command = test_command
        self.test_timeout = test_timeout
        self.test_env = dict(test_env or {})
        self.hidden_paths = list(hidden_paths)
        self.parse_log = parse_log
        names = list(tools) if tools is not None else [name for name in CODE_TOOLS if name not in OPT_IN_TOOLS]
        unknown = [name for name in names if name not in CODE_TOOLS]
        if unknown:
            raise UserError(f"unknown tools {unknown}; available: {', '.join(CODE_TOOLS)}")
        self._tools: dict[str, tuple[ToolSpec, ToolFn]] = {name: CODE_TOOLS[name] for name in names}
        self.tools: list[ToolSpec] = [spec for spec, _ in self._tools.values()]

    async def run(self, command: str, *, timeout: float = 120.0) -> RunResult:
        await self.workspace.opened()  # in a container: the repository set up, the workspace the agent's
        return await self.sandbox.run(RunRequest(command=command, timeout=timeout, env=self.test_env))

    async def patch(self, state: StateId | None = None) -> str:
        """The submission: changes from the base commit, hidden test files left out."""
        return await self.workspace.diff(state, exclude=self.hidden_paths)

    async def reset(self) -> Observation:
        workspace = await self.workspace.opened()
        await workspace.restore(workspace.base_tree)
        return Observation(text=self.task, data={"state": workspace.base_tree})

    async def step(self, action: Action) -> Observation:
        await self.workspace.opened()
        entry = self._tools.get(action.tool)
        if entry is None:
            return Observation(
                text=f"unknown tool {action.tool!r}; use one of: {', '.join(self._tools)}", is_error=True
            )
        spec, fn = entry
        try:
            args = spec.args.model_validate(action.args)
        except ValidationError as exc:
            return Observation(text=f"invalid arguments for {spec.name}: {exc.errors()[0]['msg']}", is_error=True)
        try:
            observation = await fn(self, args)
        except (UserError, TrellisRunError) as exc:
            return Observation(text=str(exc), is_error=True)
        changed = action.tool in CHANGING_TOOLS and not observation.is_error
        if self.issue_checks and (changed or action.tool in ("finish", "run_tests")):
            report = await self.run_issue_checks()
            tests = {**(observation.tests or {}), **report.statuses}
            moved = {**(observation.progress or {}), **report.progress}
            observation = observation.model_copy(
                update={
                    "text": f"{observation.text}\n{report.text}",
                    "tests": tests or observation.tests,
                    "progress": moved or observation.progress,
                }
            )
        if self.nearby_tests and changed:
            statuses, summary = await self.run_nearby_tests()
            if summary:
                tests = {**(observation.tests or {}), **statuses}
                counts = self._nearby_counts.get(await self.patch(), {})
                observation = observation.model_copy(
                    update={
                        "text": f"{observation.text}\n{summary}",
                        "tests": tests or observation.tests,
                        "data": {**observation.data, "nearby": counts} if counts else observation.data,
                    }
                )
        return observation

    async def run_nearby_tests(self) -> tuple[dict[str, str], str]:
        """Run the repository's tests next to the changes so far and import each changed module (see
        `nearby`): a FAILED status per test or import the changes broke, and what to tell the agent
        ("" when nothing is related: no test file next to a change, no changed module that imported
        at the base commit)."""
        patch = await self.patch()
        if patch in self._nearby:
            return self._nearby[patch]
        changed = nearby.changed_paths(patch)
        gone = nearby.deleted_paths(patch)
        modules = nearby.changed_modules([path for path in changed if path not in gone])
        files: tuple[str, ...] = ()
        command = self.test_command or ""
        if "pytest" in command:  # the log is read as pytest's
            if self._test_files is None:  # the repository's test files, read once (hidden tests are never there)
                found = await self.files.texts(".", ".py")
                self._test_files = [(path, text) for path, text in found if nearby.is_test_file(path)]
            files = tuple(nearby.related_tests(changed, self._test_files))
        unseen = [m for m in modules if m not in self._imports_before]
        if (files and files not in self._before) or unseen:  # the base commit's results, once each
            now = await self.workspace.snapshot()
            await self.workspace.restore(self.workspace.base_tree)
            try:
                if files and files not in self._before:
                    self._before[files] = (await self._related_tests(command, files))[0]
                if unseen:
                    statuses = (await self._imports(unseen))[0]
                    self._imports_before.update({m: statuses[f"{nearby.IMPORT}{m}"] for m in unseen})
            finally:
                await self.workspace.restore(now)
        imported = [m for m in modules if self._imports_before[m] in PASSING]  # the others are no evidence
        if not files and not imported:
            self._nearby[patch] = ({}, "")
            return self._nearby[patch]
        tests, output = await self._related_tests(command, files) if files else ({}, "")
        imports, import_errors = await self._imports(imported) if imported else ({}, [])
        answered = [m for m in imported if imports[f"{nearby.IMPORT}{m}"] != nearby.UNKNOWN]
        before = {**self._before.get(files, {}), **{f"{nearby.IMPORT}{m}": "PASSED" for m in answered}}
        broken, passed_before = nearby.regressions(before, {**tests, **imports}, PASSING)
        tail = nearby.failure_lines(output, broken, imports=import_errors)
        where = [*files, *(f"{nearby.IMPORT}{m}" for m in answered)]
        self._nearby[patch] = (
            {f"{nearby.PREFIX}{name}": "FAILED" for name in broken},
            nearby.report(where, broken, passed_before, tail),
        )
        broken_imports = sum(1 for name in broken if name.startswith(nearby.IMPORT))
        self._nearby_counts[patch] = {  # tests and imports apart: the fallback weighs them differently
            "broken": len(broken) - broken_imports,
            "passed_before": passed_before - len(answered),
            "broken_imports": broken_imports,
        }
        return self._nearby[patch]

    async def _related_tests(self, command: str, files: Sequence[str]) -> tuple[dict[str, str], str]:
        """The test files' results on the current state, and the run's output."""
        run = f"{command} {' '.join(shlex.quote(f) for f in files)}"
        result = await self.run(run, timeout=min(self.test_timeout, 120.0))
        return self.parse_log(result.stdout + "\n" + result.stderr), result.output

    async def _imports(self, modules: Sequence[str]) -> tuple[dict[str, str], list[str]]:
        """Each module's import on the current state, as test results (`import pkg.mod`), and a line
        per failed import with its error (`nearby.import_results`)."""
        await self.workspace.opened()
        result = await self.sandbox.run(
            RunRequest(
                command="python -B -c " + shlex.quote(nearby.IMPORTER),
                stdin=json.dumps(list(modules)),
                timeout=nearby.IMPORT_TIMEOUT * len(modules) + 10.0,
                env=self.test_env,
            )
        )
        return nearby.import_results(result.stdout, modules, timed_out=result.timed_out)

    async def run_issue_checks(self) -> ChecksReport:
        """Run the issue's calls in the sandbox on the current state: a status per call with an
        expected value, a summary, and each failing call's progress from what it gave on the base
        commit (run there the first time; where no check has an expected value, never)."""
        await self.workspace.opened()
        if self._checks_before is None and any(c.expected for c in self.issue_checks):
            now = await self.workspace.snapshot()
            await self.workspace.restore(self.workspace.base_tree)
            try:
                self._checks_before = (await self._issue_calls()).returned
            finally:
                await self.workspace.restore(now)
        return await self._issue_calls(self._checks_before)

    async def _issue_calls(self, before: dict[str, str] | None = None) -> ChecksReport:
        # -B: no bytecode written at the base commit can stand in for a same-sized change made within
        # the same second; a fixed hash seed: a set's repr is the same in every run
        result = await self.sandbox.run(
            RunRequest(
                command="python -B -c " + shlex.quote(RUNNER),
                stdin=json.dumps([c.expression for c in self.issue_checks]),
                timeout=60,
                env={**self.test_env, "PYTHONHASHSEED": "0"},
            )
        )
        return checks_report(self.issue_checks, result.stdout, result.timed_out, before)

    async def snapshot(self) -> StateId:
        return await self.workspace.snapshot()

    async def restore(self, state: StateId) -> None:
        await self.workspace.restore(state)

    async def reward(self) -> Reward | None:
        """Plain code worlds have no hidden check; task worlds override this."""
        return None

    @property
    def knows_useful(self) -> bool:
        """Only with the reference patch (`JudgeChecked`): without it no result is known to be useful."""
        return self.gold is not None

    async def judge_rewards(self, steps: Sequence[Step]) -> dict[int, float]:
        """ReSeek's instructive reward of each verdict on a reading tool's result (`READING_TOOLS`), by
        the index of the step that gave it, where the world was given the reference patch: a result
        is useful when it shows where the fix goes (`gold.shows_gold`). Right judgements earn 0.1
        more when the current state passes the hidden checks (where the world has them, `reward`);
        empty without a reference patch."""
        if self.gold is None:
            return {}
        pairs = judgements(steps, READING_TOOLS)
        if not any(verdict is not None for _, _, verdict in pairs):
            return {}
        checked = await self.reward()
        useful = [shows_gold(observation.text, self.gold) for _, observation, _ in pairs]
        scored = score_judgements(useful, [v for _, _, v in pairs], checked is not None and checked.resolved)
        return rewards_by_step(pairs, scored)


def _check_git_dir_unreachable(sandbox: HostSandbox, git_dir: Path) -> None:
    """Refuse a sandbox that could write the host's git directory through one of its extra mounts."""
    for mount in getattr(sandbox, "mounts", []):
        source = Path(mount.source).resolve()
        if mount.writable and (source == git_dir or source in git_dir.parents):
            raise UserError(
                f"the sandbox mounts {source} writable, which holds {git_dir}, the host's git directory of "
                f"the workspace; mount a folder that does not contain it"
            )
