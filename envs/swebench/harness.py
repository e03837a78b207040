"""Grading patches the way the official SWE-bench harness does, in a sandbox.

For each prediction: reset the repository to its base commit, apply the model patch with the
harness's chain of commands (a patch that none of them applies is unresolved), put the test files
back at the base commit, apply the test patch, run the instance's test files, read the log with the
harness's parser for the repository, and decide: resolved when every FAIL_TO_PASS test passes and
every PASS_TO_PASS test passes or is skipped. A log with no test result at all is an error, not a
run where every test is missing. Reports have the harness's shape.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from trellis.envs.code.testlog import parser_for, split
from trellis.envs.code.workspace import GitWorkspace
from trellis.envs.sandbox.base import RunRequest, RunResult, Sandbox
from trellis.envs.swebench.environment import SWEEnvironment, test_command
from trellis.envs.swebench.instance import Prediction, SWEInstance

APPLY_COMMANDS = (
    "git apply --verbose",
    "git apply --verbose --3way",
    "git apply --verbose --reject",
    "patch --batch --forward --fuzz=5 -p1 -i",
)
"""The harness's commands for a model patch (each given the patch file), tried in turn, each on the
unpatched tree, until one succeeds."""
ALREADY_APPLIED = "git apply --check --reverse"
"""When every command failed: the harness still counts the patch as applied if this succeeds (a
command can leave the whole patch applied and still exit non-zero)."""
TEST_APPLY_COMMANDS = ("git apply --verbose", "patch --batch --forward --fuzz=0 -p1 -i")
"""The test patch: `git apply`, as the harness's eval script does; then `patch` without fuzz (like
git, it finds moved lines but changes no context), for images without git."""

ErrorKind = Literal["patch", "test_patch", "timeout", "no_test_results", "inconsistent_log"]


class TestGroup(BaseModel):
    success: list[str] = Field(default_factory=list)
    failure: list[str] = Field(default_factory=list)


class InstanceReport(BaseModel):
    """The harness's per-instance report, plus the log and timing."""

    instance_id: str
    patch_is_None: bool = False
    patch_exists: bool = False
    patch_successfully_applied: bool = False
    resolved: bool = False
    tests_status: dict[str, TestGroup] = Field(default_factory=dict)
    error: str | None = None
    error_kind: ErrorKind | None = None
    """What went wrong: the model patch or the test patch does not apply, the tests timed out, the
    log holds no test result, or the log contradicts the test command's exit status."""
    log_path: str | None = None
    seconds: float = 0.0

    def harness_json(self) -> dict[str, Any]:
        """`{instance_id: {...}}` as the official harness writes it."""
        body = self.model_dump(exclude={"instance_id", "error", "error_kind", "log_path", "seconds"})
        return {self.instance_id: body}


def grade(instance: SWEInstance, statuses: dict[str, str]) -> tuple[bool, dict[str, TestGroup]]:
    """(resolved, the four test groups) from a parsed log, by the harness's rules."""
    f2p_ok, f2p_bad = split(instance.FAIL_TO_PASS, statuses)
    p2p_ok, p2p_bad = split(instance.PASS_TO_PASS, statuses, skipped_ok=True)
    groups = {
        "FAIL_TO_PASS": TestGroup(success=f2p_ok, failure=f2p_bad),
        "PASS_TO_PASS": TestGroup(success=p2p_ok, failure=p2p_bad),
        "FAIL_TO_FAIL": TestGroup(),
        "PASS_TO_FAIL": TestGroup(),
    }
    resolved = bool(instance.FAIL_TO_PASS or instance.PASS_TO_PASS) and not f2p_bad and not p2p_bad
    return resolved, groups


Attempt = Callable[[str], Awaitable[tuple[bool, str]]]
"""Run one apply command (the patch file is appended): (succeeded, its output)."""


async def apply_patch(attempt: Attempt, reset: Callable[[], Awaitable[object]]) -> tuple[bool, str]:
    """Apply a model patch as the harness does: each of `APPLY_COMMANDS` in turn, `reset` to the
    unpatched tree before every retry (a failed `--reject` or `patch` leaves part of the patch
    behind), then the already-applied check. Returns (applied, what happened)."""
    failures: list[str] = []
    for index, command in enumerate(APPLY_COMMANDS):
        if index:
            await reset()
        ok, output = await attempt(command)
        if ok:
            return True, f"applied with `{command}`"
        failures.append(f"`{command}`: {_tail(output)}")
    ok, _ = await attempt(ALREADY_APPLIED)
    if ok:
        return True, "applied (the tree holds the whole patch)"
    return False, "\n".join(failures)


async def apply_test_patch(attempt: Attempt) -> tuple[bool, str]:
    """Apply the test patch: `TEST_APPLY_COMMANDS` in turn (git apply changes nothing when it fails)."""
    failures: list[str] = []
    for command in TEST_APPLY_COMMANDS:
        ok, output = await attempt(command)
        if ok:
            return True, f"applied with `{command}`"
        failures.append(f"`{command}`: {_tail(output)}")
    return False, "\n".join(failures)


def _tail(text: str, size: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= size else "..." + text[-size:]


def _command_line(command: str, patch_file: str) -> str:
    line = f"{command} {patch_file}"
    if command.startswith("patch "):
        # an image whose `patch` is not GNU patch (busybox) knows no --batch or --fuzz: there, the
        # plain form (the official images all have GNU patch, so the harness never gets here)
        line += f" || {{ ! patch --version 2>/dev/null | grep -q 'GNU patch' && patch -N -p1 -i {patch_file}; }}"
    return line


def _in_sandbox(command: str) -> str:
    """`command` with the patch (sent on stdin) as its last argument, run in the workspace.

    Each bwrap run has a fresh /tmp, so the patch is written there in the same run. The workspace's
    git directory is the host's and out of the sandbox's reach, so git runs against an empty one of
    its own: `git apply` then works on the files alone, and `--3way` (which needs the repository's
    objects, and helps only a patch written against another version of a file) does not apply."""
    line = _command_line(command, '"$t/patch"')
    return (
        't=$(mktemp -d) && cat > "$t/patch" && git init -q --bare "$t/git" && '
        f'{{ export GIT_DIR="$t/git" GIT_WORK_TREE="$PWD"; {line}; }}; code=$?; rm -rf "$t"; exit $code'
    )


def _host_attempt(sandbox: Sandbox, workspace: GitWorkspace, patch: str) -> Attempt:
    async def attempt(command: str) -> tuple[bool, str]:
        if command == "git apply --verbose":
            # the same command, run by host git with the workspace's protections
            return await workspace.apply(patch)
        result = await sandbox.run(RunRequest(command=_in_sandbox(command), stdin=patch, timeout=300))
        return result.ok, result.output

    return attempt


def modified_files(patch: str) -> list[str]:
    """Files a patch changes that exist before it (not the ones it creates): the files the harness's
    eval script checks out at the base commit before applying the test patch."""
    files: list[str] = []
    for line in patch.splitlines():
        if line.startswith("--- "):
            source = line[4:].split("\t")[0].strip()
            if source.startswith("a/") and source[2:] not in files:
                files.append(source[2:])
    return files


async def _reset_files_to_base(workspace: GitWorkspace, files: list[str]) -> tuple[bool, str]:
    """Put `files` back at the base commit, keeping every other change (`git checkout base -- files`).

    Done with the workspace's own snapshot, diff and apply: the current state's diff without those
    files, applied to the base tree."""
    if not files:
        return True, "nothing to reset"
    state = await workspace.snapshot()
    everything = await workspace.diff(state)
    kept = await workspace.diff(state, exclude=files)
    if kept == everything:
        return True, "the test files are unchanged"
    await workspace.restore(workspace.base_tree)
    return await workspace.apply(kept)


def _normalised(patch: str) -> str:
    return patch if patch.endswith("\n") else patch + "\n"


def read_results(
    report: InstanceReport,
    instance: SWEInstance,
    log: str,
    result: RunResult,
    *,
    parse: Callable[[str], dict[str, str]],
    timeout: float,
    where: str,
) -> None:
    """Grade `log` into `report`, or record why it cannot be graded. `where` says where to read the log."""
    statuses = parse(log)
    if result.timed_out:
        report.error_kind, report.error = "timeout", f"tests timed out after {timeout:g} s; {where}"
        if not statuses:
            return
    elif not statuses:
        report.error_kind = "no_test_results"
        report.error = f"the test command produced no test results; {where}"
        return
    elif result.exit_code != 0 and not any(status in ("FAILED", "ERROR") for status in statuses.values()):
        # the harness's guard against printed results: a patch can print "PASSED x" itself
        report.error_kind = "inconsistent_log"
        report.error = (
            f"the test command exited with status {result.exit_code} but its log reports no failing test, so "
            f"the log does not describe the run; {where}"
        )
        return
    report.resolved, report.tests_status = grade(instance, statuses)


def _log_parser(instance: SWEInstance) -> Callable[[str], dict[str, str]]:
    name = (instance.model_extra or {}).get("log_parser")
    return parser_for(instance.repo, name if isinstance(name, str) and name else None)


async def evaluate(
    env: SWEEnvironment, patch: str | None, *, name: str = "model", timeout: float = 1800
) -> InstanceReport:
    """Grade `patch` on a prepared environment; the repository is back at its base commit afterwards.
    The environment's checkout is held while grading (`SWEEnvironment.checkout_held`)."""
    async with env.checkout_held():
        return await _evaluate(env, patch, name=name, timeout=timeout)


async def _evaluate(env: SWEEnvironment, patch: str | None, *, name: str, timeout: float) -> InstanceReport:
    instance = env.instance
    parse = _log_parser(instance)
    started = time.perf_counter()
    report = InstanceReport(
        instance_id=instance.instance_id, patch_is_None=patch is None, patch_exists=bool(patch and patch.strip())
    )
    sandbox = env.sandbox()
    workspace = env.workspace(sandbox)
    await workspace.restore(workspace.base_tree)
    try:
        if report.patch_exists:
            applied, message = await apply_patch(
                _host_attempt(sandbox, workspace, _normalised(patch or "")),
                lambda: workspace.restore(workspace.base_tree),
            )
            if not applied:
                report.error_kind, report.error = "patch", f"patch does not apply: {message}"
                return report
        report.patch_successfully_applied = True
        test_patch = _normalised(instance.test_patch) if instance.test_patch.strip() else ""
        if test_patch:
            reset, message = await _reset_files_to_base(workspace, modified_files(test_patch))
            if not reset:
                report.error_kind = "test_patch"
                report.error = f"the test files could not be put back at the base commit: {message}"
                return report
            applied, message = await apply_test_patch(_host_attempt(sandbox, workspace, test_patch))
            if not applied:
                report.error_kind, report.error = "test_patch", f"test patch does not apply: {message}"
                return report
        result = await sandbox.run(
            RunRequest(command=test_command(instance), timeout=timeout, env=env.run_env(), output_cap=8 * 2**20)
        )
        log = result.stdout + "\n" + result.stderr
        logs = env.root / "logs"
        logs.mkdir(exist_ok=True)
        log_path = logs / f"{name.replace('/', '_')}.log"
        log_path.write_text(log)
        report.log_path = str(log_path)
        read_results(
            report, instance, log, result, parse=parse, timeout=timeout, where=f"look at the log at {log_path}"
        )
        return report
    finally:
        await workspace.restore(workspace.base_tree)
        report.seconds = time.perf_counter() - started


def gold_predictions(instances: list[SWEInstance]) -> list[Prediction]:
    return [Prediction(instance_id=i.instance_id, model_name_or_path="gold", model_patch=i.patch) for i in instances]


def empty_predictions(instances: list[SWEInstance]) -> list[Prediction]:
    return [Prediction(instance_id=i.instance_id, model_name_or_path="empty", model_patch="") for i in instances]


def run_report(reports: list[InstanceReport], total: int) -> dict[str, Any]:
    """The summary the harness writes at the end of a run."""
    completed = [r for r in reports if r.error is None or r.tests_status]
    return {
        "total_instances": total,
        "submitted_instances": len(reports),
        "completed_instances": len(completed),
        "resolved_instances": sum(r.resolved for r in reports),
        "unresolved_instances": sum(not r.resolved for r in completed),
        "empty_patch_instances": sum(not r.patch_exists for r in reports),
        "error_instances": sum(r.error is not None and not r.tests_status for r in reports),
        "completed_ids": sorted(r.instance_id for r in completed),
        "resolved_ids": sorted(r.instance_id for r in reports if r.resolved),
        "unresolved_ids": sorted(r.instance_id for r in completed if not r.resolved),
        "empty_patch_ids": sorted(r.instance_id for r in reports if not r.patch_exists),
        "error_ids": sorted(r.instance_id for r in reports if r.error is not None and not r.tests_status),
        "schema_version": 2,
    }


def write_report(path: Path, reports: list[InstanceReport], total: int) -> None:
    import json

    data = run_report(reports, total)
    data["instances"] = {k: v for r in reports for k, v in r.harness_json().items()}
    path.write_text(json.dumps(data, indent=2) + "\n")


OFFICIAL_SETUP = "source /opt/miniconda3/bin/activate && conda activate testbed"
_RESET_CONTAINER = "git checkout -- . ; git clean -fd"


def _container_attempt(box: Sandbox, patch_file: str) -> Attempt:
    async def attempt(command: str) -> tuple[bool, str]:
        result = await box.run(RunRequest(command=_command_line(command, patch_file), timeout=300))
        return result.ok, result.output

    return attempt


async def evaluate_in_container(
    instance: SWEInstance,
    patch: str | None,
    *,
    image: str | None = None,
    setup: str = OFFICIAL_SETUP,
    timeout: float = 1800,
    client: object = None,
    log_dir: Path | None = None,
) -> InstanceReport:
    """Grade `patch` in a fresh container of the instance's official SWE-bench image (or `image`).

    The image holds the repository at its base commit in /testbed; the patch is applied with the
    harness's chain (`APPLY_COMMANDS`), the test files are checked out at the base commit, the test
    patch is applied, then the test files run after `setup` (the official images' conda activation).
    The test log is written to `log_dir` when one is given.
    """
    from trellis.envs.sandbox.docker import DockerSandbox, swebench_image

    parse = _log_parser(instance)
    started = time.perf_counter()
    report = InstanceReport(
        instance_id=instance.instance_id, patch_is_None=patch is None, patch_exists=bool(patch and patch.strip())
    )
    box = DockerSandbox(image or swebench_image(instance.instance_id), workdir="/testbed", client=client)
    async with box:
        if report.patch_exists:
            await box.write_file("/tmp/model.patch", _normalised(patch or ""))

            async def reset() -> None:
                await box.run(RunRequest(command=_RESET_CONTAINER, timeout=300))

            applied, message = await apply_patch(_container_attempt(box, "/tmp/model.patch"), reset)
            if not applied:
                report.error_kind, report.error = "patch", f"patch does not apply: {message}"
                report.seconds = time.perf_counter() - started
                return report
        report.patch_successfully_applied = True
        if instance.test_patch.strip():
            files = modified_files(instance.test_patch)
            if files:  # like the eval script, go on when this fails (no git, or a file missing at base)
                checkout = f"git checkout {shlex.quote(instance.base_commit)} {' '.join(map(shlex.quote, files))}"
                await box.run(RunRequest(command=checkout, timeout=300))
            await box.write_file("/tmp/test.patch", _normalised(instance.test_patch))
            applied, message = await apply_test_patch(_container_attempt(box, "/tmp/test.patch"))
            if not applied:
                report.error_kind, report.error = "test_patch", f"test patch does not apply: {message}"
                report.seconds = time.perf_counter() - started
                return report
        command = test_command(instance)
        full = f"{setup} && {command}" if setup else command
        result = await box.run(
            RunRequest(
                command=f"/bin/bash -c {shlex.quote(full)}" if "source " in full else full,
                timeout=timeout,
                output_cap=8 * 2**20,
            )
        )
    log = result.stdout + "\n" + result.stderr
    where = f"its output ends with:\n{_tail(log, 2000)}"
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{instance.instance_id}.log"
        log_path.write_text(log)
        report.log_path = str(log_path)
        where = f"look at the log at {log_path}"
    read_results(report, instance, log, result, parse=parse, timeout=timeout, where=where)
    report.seconds = time.perf_counter() - started
    return report
