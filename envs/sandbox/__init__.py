"""Sandboxes: where commands run. `make_sandbox` picks one by name."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from trellis.envs.sandbox.base import RunRequest, RunResult, Sandbox, SandboxLimits
from trellis.envs.sandbox.bubblewrap import find_bwrap
from trellis.envs.sandbox.cgroups import CgroupSupport, cgroup_support
from trellis.envs.sandbox.host import BwrapSandbox, HostSandbox, LocalSandbox, Mount, sandbox_owner

from trellis.errors import UserError

SandboxKind = Literal["bwrap", "local"]


def make_sandbox(
    kind: str,
    root: str | Path,
    *,
    limits: SandboxLimits | None = None,
    network: bool = False,
    mounts: list[Mount] | None = None,
) -> HostSandbox:
    """A sandbox over the host folder `root`: `bwrap` (isolated, the default) or `local` (no isolation)."""
    if kind == "bwrap":
        return BwrapSandbox(root, limits=limits, network=network, mounts=mounts)
    if kind == "local":
        return LocalSandbox(root, limits=limits)
    raise UserError(f"unknown sandbox {kind!r}; choose bwrap (isolated) or local (no isolation)")


__all__ = [
    "BwrapSandbox",
    "CgroupSupport",
    "HostSandbox",
    "LocalSandbox",
    "Mount",
    "RunRequest",
    "RunResult",
    "Sandbox",
    "SandboxLimits",
    "cgroup_support",
    "find_bwrap",
    "make_sandbox",
    "sandbox_owner",
]
