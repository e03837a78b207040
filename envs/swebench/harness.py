"""Grading patches the way the official SWE-bench harness does, in a sandbox.

For each prediction: reset the repository to its base commit, apply the model patch (a patch that
does not apply is unresolved), apply the test patch, run the instance's test files, parse the log
with SWE-bench's rules, and decide: resolved when every FAIL_TO_PASS and every PASS_TO_PASS test
passes. Reports have the harness's shape.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from trellis.envs.code.testlog import parser_for, split
from trellis.envs.sandbox.base import RunRequest
from trellis.envs.swebench.environment import SWEEnvironment, test_command
from trellis.envs.swebench.instance import Prediction, SWEInstance


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
    log_path: str | None = None
    seconds: float = 0.0

    def harness_json(self) -> dict[str, Any]:
        """`{instance_id: {...}}` as the official harness writes it."""
        body = self.model_dump(exclude={"instance_id", "error", "log_path", "seconds"})
        return {self.instance_id: body}


def grade(instance: SWEInstance, statuses: dict[str, str]) -> tuple[bool, dict[str, TestGroup]]:
    f2p_ok, f2p_bad = split(instance.FAIL_TO_PASS, statuses)
    p2p_ok, p2p_bad = split(instance.PASS_TO_PASS, statuses)
    groups = {
        "FAIL_TO_PASS": TestGroup(success=f2p_ok, failure=f2p_bad),
        "PASS_TO_PASS": TestGroup(success=p2p_ok, failure=p2p_bad),
        "FAIL_TO_FAIL": TestGroup(),
        "PASS_TO_FAIL": TestGroup(),
    }
    resolved = bool(instance.FAIL_TO_PASS or instance.PASS_TO_PASS) and not f2p_bad and not p2p_bad
    return resolved, groups


async def evaluate(
    env: SWEEnvironment, patch: str | None, *, name: str = "model", timeout: float = 1800
) -> InstanceReport:
    """Grade `patch` on a prepared environment; the repository is back at its base commit afterwards."""
    instance = env.instance
    started = time.perf_counter()
    report = InstanceReport(
        instance_id=instance.instance_id, patch_is_None=patch is None, patch_exists=bool(patch and patch.strip())
    )
    sandbox = env.sandbox()
    workspace = env.workspace(sandbox)
    await workspace.restore(workspace.base_tree)
    try:
        applied, message = await workspace.apply(patch or "")
        report.patch_successfully_applied = applied
        if not applied:
            report.error = f"patch does not apply: {message}"
            return report
        applied, message = await workspace.apply(instance.test_patch)
        if not applied:
            report.error = f"test patch does not apply: {message}"
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
        statuses = parser_for(instance.repo)(log)
        report.resolved, report.tests_status = grade(instance, statuses)
        if result.timed_out:
            report.error = f"tests timed out after {timeout:g} s"
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
_APPLY = "git apply -v {file} || patch --batch --fuzz=5 -p1 -i {file} || patch -p1 -i {file}"


async def evaluate_in_container(
    instance: SWEInstance,
    patch: str | None,
    *,
    image: str | None = None,
    setup: str = OFFICIAL_SETUP,
    timeout: float = 1800,
    client: object = None,
) -> InstanceReport:
    """Grade `patch` in a fresh container of the instance's official SWE-bench image (or `image`).

    The image holds the repository at its base commit in /testbed; the patch is applied as the
    harness applies it (`git apply`, falling back to `patch --fuzz=5`), then the test patch, then the
    test files run after `setup` (the official images' conda activation).
    """
    from trellis.envs.sandbox.docker import DockerSandbox, swebench_image

    started = time.perf_counter()
    report = InstanceReport(
        instance_id=instance.instance_id, patch_is_None=patch is None, patch_exists=bool(patch and patch.strip())
    )
    box = DockerSandbox(image or swebench_image(instance.instance_id), workdir="/testbed", client=client)
    async with box:
        for name, text in (("model", patch or ""), ("test", instance.test_patch)):
            if not text.strip():
                continue
            await box.write_file(f"/tmp/{name}.patch", text if text.endswith("\n") else text + "\n")
            result = await box.run(RunRequest(command=_APPLY.format(file=f"/tmp/{name}.patch"), timeout=120))
            if not result.ok:
                if name == "model":
                    report.error = f"patch does not apply: {result.output[-500:]}"
                else:
                    report.patch_successfully_applied = True
                    report.error = f"test patch does not apply: {result.output[-500:]}"
                report.seconds = time.perf_counter() - started
                return report
        report.patch_successfully_applied = True
        command = test_command(instance)
        full = f"{setup} && {command}" if setup else command
        result = await box.run(
            RunRequest(
                command=f"/bin/bash -c {_quote(full)}" if "source " in full else full,
                timeout=timeout,
                output_cap=8 * 2**20,
            )
        )
    log = result.stdout + "\n" + result.stderr
    report.resolved, report.tests_status = grade(instance, parser_for(instance.repo)(log))
    if result.timed_out:
        report.error = f"tests timed out after {timeout:g} s"
    report.seconds = time.perf_counter() - started
    return report


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
