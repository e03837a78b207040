"""The SWE-bench job's services, apart from any command line: prepare environments and grade
predictions. Solving one instance is `trellis.cli.solve.solve`, a batch `trellis.cli.batch`; the
typer commands in `trellis.cli.swe` parse options, call these and print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the environment and the harness load only when a service runs
    from trellis.envs.swebench.environment import SWEEnvironment
    from trellis.envs.swebench.harness import InstanceReport
    from trellis.envs.swebench.instance import Prediction, SWEInstance

Say = Callable[[str], None]
"""Progress in words (`instance: step`), for a status line or a log."""


@dataclass(frozen=True)
class Sources:
    """Where instances' repositories and pinned requirements come from."""

    repos: Sequence[Path] = ()
    """Folders of clones, mirrors or bundles."""
    locks: Path | None = None
    """A folder of `<instance_id>.txt` pinned requirements."""
    repo: str | None = None
    """One repository (path or URL), for a single instance."""

    @classmethod
    def beside(cls, instances: Path, repos: Sequence[Path] | None = None, locks: Path | None = None) -> Sources:
        """Repositories and locks given, or by default the instances file's folder and its `locks/`;
        absolute, so that a worker in another directory finds them too."""
        folder = instances.resolve().parent
        default_locks = folder / "locks"
        chosen = locks or (default_locks if default_locks.is_dir() else None)
        return cls(
            repos=tuple(path.resolve() for path in repos or [folder]),
            locks=chosen.resolve() if chosen is not None else None,
        )

    def source(self, instance: SWEInstance) -> str:
        from trellis.cli.batch import repository_source

        return repository_source(instance, list(self.repos), self.repo)

    def lock(self, instance_id: str) -> Path | None:
        from trellis.cli.batch import lock_file

        return lock_file(instance_id, self.locks)


async def prepare_all(
    instances: Sequence[SWEInstance],
    sources: Sources,
    *,
    sandbox: str = "bwrap",
    force: bool = False,
    offline: bool = False,
    say: Say = lambda message: None,
    done: Callable[[SWEEnvironment], None] = lambda env: None,
) -> list[SWEEnvironment]:
    """Build each instance's environment (repository at its base commit, venv, pins, editable
    install), one after another; an environment already built is reused unless `force`."""
    from trellis.envs.swebench.environment import SWEEnvironment

    envs = []
    for instance in instances:
        env = SWEEnvironment(instance, sandbox=sandbox)
        name = instance.instance_id
        await env.prepare(
            sources.source(instance),
            sources.lock(name),
            progress=lambda message, _name=name: say(f"{_name}: {message}"),
            force=force,
            offline=offline,
        )
        envs.append(env)
        done(env)
    return envs


async def grade_all(
    instances: Sequence[SWEInstance],
    predictions: Sequence[Prediction],
    sources: Sources,
    *,
    sandbox: str = "bwrap",
    timeout: float = 1800,
    offline: bool = False,
    say: Say = lambda message: None,
) -> list[InstanceReport]:
    """Grade each prediction as the SWE-bench harness does: in the instance's prepared environment
    (bwrap, local), or in its official image (docker), which already holds repository and environment."""
    from trellis.envs.swebench.harness import evaluate, evaluate_in_container

    reports = []
    if sandbox == "docker":
        for instance, prediction in zip(instances, predictions, strict=True):
            say(f"grading {prediction.instance_id} in its official image…")
            reports.append(await evaluate_in_container(instance, prediction.model_patch, timeout=timeout))
        return reports
    envs = await prepare_all(instances, sources, sandbox=sandbox, offline=offline, say=say)
    for env, prediction in zip(envs, predictions, strict=True):
        say(f"grading {prediction.instance_id}…")
        reports.append(await evaluate(env, prediction.model_patch, name=prediction.model_name_or_path, timeout=timeout))
    return reports
