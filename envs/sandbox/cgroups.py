"""Control groups for sandboxes: memory and process limits that hold for all of a sandbox's processes together.

`cgroup_support()` finds, once per process, where this machine lets trellis make cgroups:

- cgroup v2: a folder `trellis-sandboxes` in the nearest ancestor of trellis's own cgroup that can
  hand the memory and pids controllers to children (v2 lets only a cgroup without processes do so);
- cgroup v1: children of trellis's own memory and pids cgroups (so trellis's own limits still hold).

Where neither works (no root, no delegation, a read-only /sys/fs/cgroup) it says why, logs a warning
once, and sandboxes fall back to per-process rlimits. A sandbox's cgroup exists while a command of it
runs; one left behind by a killed trellis is removed by the next trellis that starts.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import re
import signal
from pathlib import Path, PurePosixPath
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "pids")
V2_FOLDER = "trellis-sandboxes"
OURS = re.compile(r"trellis-(\d+)-\w+")


class CgroupSupport(BaseModel):
    """Whether sandboxes get their own cgroup on this machine, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1, 2] | None = None
    """1 or 2 when each sandbox gets a cgroup; None when limits fall back to per-process rlimits."""
    parents: dict[str, str] = Field(default_factory=dict)
    """The folder in which sandbox cgroups are made, per controller (memory, pids)."""
    reason: str = ""
    """Why sandboxes get no cgroup (empty when they do)."""

    @property
    def available(self) -> bool:
        return self.version is not None


class _Mount(NamedTuple):
    root: str
    point: str
    fstype: str
    options: frozenset[str]


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _mounts() -> list[_Mount]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3:
            options = frozenset(tail[2].split(","))
            mounts.append(_Mount(_unescape(fields[3]), _unescape(fields[4]), tail[0], options))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """Controller -> trellis's own cgroup; key "" is the cgroup v2 one."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and not controllers:
            own[""] = path
        for controller in controllers.split(","):
            if controller:
                own[controller] = path
    return own


def _folder(mount: _Mount, cgroup: str) -> Path | None:
    """The folder of `cgroup` under `mount`, or None when the mount does not show it."""
    root, path = PurePosixPath(mount.root), PurePosixPath(cgroup)
    if path != root and root not in path.parents:
        return None
    return Path(mount.point) / path.relative_to(root)


def _enable(folder: Path) -> None:
    """Hand the memory and pids controllers of `folder` to its children (cgroup v2)."""
    enabled = set((folder / "cgroup.subtree_control").read_text().split())
    wanted = [f"+{controller}" for controller in CONTROLLERS if controller not in enabled]
    if wanted:
        (folder / "cgroup.subtree_control").write_text(" ".join(wanted))


def _try_v2(mounts: list[_Mount], own: dict[str, str]) -> CgroupSupport | str:
    mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
    if mount is None:
        return "no cgroup v2 hierarchy is mounted"
    folder = _folder(mount, own.get("", "/"))
    if folder is None:
        return f"trellis's cgroup is not visible under the cgroup v2 mount {mount.point}"
    offered = set((Path(mount.point) / "cgroup.controllers").read_text().split())
    missing = [c for c in CONTROLLERS if c not in offered]
    if missing:
        return f"cgroup v2 at {mount.point} offers no {' or '.join(missing)} controller (cgroup v1 holds it)"
    # trellis's own cgroup holds trellis, so (unless it is the root) it cannot hand controllers down
    top = Path(mount.point)
    ancestors = [folder if folder == top else folder.parent]
    while ancestors[-1] != top:
        ancestors.append(ancestors[-1].parent)
    tried = []
    for ancestor in ancestors:
        parent = ancestor / V2_FOLDER
        try:
            _enable(ancestor)
            parent.mkdir(exist_ok=True)
            _enable(parent)
            _probe({c: parent for c in CONTROLLERS}, 2)
        except OSError as exc:
            tried.append(f"{ancestor} ({exc.strerror or exc})")
            continue
        return CgroupSupport(version=2, parents={c: str(parent) for c in CONTROLLERS})
    return "cgroup v2: cannot make cgroups with the memory and pids controllers in " + ", ".join(tried)


def _try_v1(mounts: list[_Mount], own: dict[str, str]) -> CgroupSupport | str:
    parents: dict[str, Path] = {}
    for controller in CONTROLLERS:
        mount = next((m for m in mounts if m.fstype == "cgroup" and controller in m.options), None)
        if mount is None:
            return f"no cgroup v1 {controller} hierarchy is mounted"
        folder = _folder(mount, own.get(controller, "/"))
        if folder is None:
            return f"trellis's {controller} cgroup is not visible under {mount.point}"
        parents[controller] = folder
    try:
        _probe(parents, 1)
    except OSError as exc:
        where = ", ".join(str(p) for p in parents.values())
        return f"cgroup v1: cannot make cgroups in {where} ({exc.strerror or exc})"
    return CgroupSupport(version=1, parents={c: str(p) for c, p in parents.items()})


def _probe(parents: dict[str, Path], version: Literal[1, 2]) -> None:
    """Make and remove one cgroup with limits, and clear what dead trellis processes left behind."""
    for parent in set(parents.values()):
        _sweep(parent)
    support = CgroupSupport(version=version, parents={c: str(p) for c, p in parents.items()})
    probe = SandboxCgroup(support, memory_bytes=64 * 2**20, pids=16, name=f"trellis-{os.getpid()}-probe")
    try:
        probe.create()
    finally:
        probe.remove()


def _sweep(parent: Path) -> None:
    for child in parent.iterdir() if parent.is_dir() else []:
        match = OURS.fullmatch(child.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            with contextlib.suppress(OSError):
                child.rmdir()


@functools.cache
def cgroup_support() -> CgroupSupport:
    """Where sandboxes get cgroups on this machine (looked up once per process; a warning when nowhere)."""
    reasons = []
    try:
        mounts, own = _mounts(), _own_cgroups()
    except OSError as exc:
        mounts, own = [], {}
        reasons.append(f"cannot read /proc ({exc})")
    for attempt in (_try_v2, _try_v1):
        if not mounts:
            break
        try:
            found = attempt(mounts, own)
        except OSError as exc:
            found = f"{attempt.__name__[5:]}: {exc}"
        if isinstance(found, CgroupSupport):
            return found
        reasons.append(found)
    reason = "; ".join(reasons)
    log.warning(
        "sandbox limits hold per process, not per sandbox: no cgroups for trellis here (%s). Memory is capped per "
        "process (RLIMIT_AS), processes per command (RLIMIT_NPROC in the command's own user namespace). For limits "
        "over the whole sandbox, run trellis as root with cgroup v2 (or v1 memory and pids) writable.",
        reason,
    )
    return CgroupSupport(reason=reason)


class SandboxCgroup:
    """The cgroup of one sandbox (one per controller under cgroup v1): memory and process limits for
    all its processes together."""

    _numbers = itertools.count()

    def __init__(self, support: CgroupSupport, *, memory_bytes: int, pids: int, name: str | None = None) -> None:
        if support.version is None:
            raise ValueError("no cgroups on this machine")
        self.version = support.version
        self.name = name or f"trellis-{os.getpid()}-{next(self._numbers)}"
        self.folders = {controller: Path(parent) / self.name for controller, parent in support.parents.items()}
        self.memory_bytes = memory_bytes
        self.pids = pids
        self.users = 0
        """Commands of the sandbox running now: the cgroup exists while this is above zero."""

    def _distinct(self) -> list[Path]:
        return sorted(set(self.folders.values()))

    def create(self) -> None:
        """Make the cgroup (again) and write its limits."""
        for folder in self._distinct():
            folder.mkdir(exist_ok=True)
        memory, pids = self.folders["memory"], self.folders["pids"]
        if self.version == 2:
            (memory / "memory.max").write_text(str(self.memory_bytes))
            swap = memory / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")
        else:
            (memory / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(str(self.memory_bytes))
        (pids / "pids.max").write_text(str(self.pids))

    def procs_files(self) -> list[str]:
        """Files a process writes its pid into to join the sandbox's cgroup."""
        return [str(folder / "cgroup.procs") for folder in self._distinct()]

    def _counter(self, file: Path, key: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            for line in file.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        return 0

    def oom_kills(self) -> int:
        """Processes the kernel killed because the sandbox used all its memory."""
        memory = self.folders["memory"]
        return self._counter(memory / ("memory.events" if self.version == 2 else "memory.oom_control"), "oom_kill")

    def forks_refused(self) -> int:
        """Forks refused because the sandbox had all the processes it may have."""
        return self._counter(self.folders["pids"] / "pids.events", "max")

    def kill_all(self) -> None:
        """SIGKILL every process of the sandbox."""
        kill_file = self.folders["pids"] / "cgroup.kill"
        if self.version == 2 and kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
                return
        for _ in range(10):  # a process may fork while the list is read; the pids limit bounds how often
            try:
                pids = [int(p) for p in (self.folders["pids"] / "cgroup.procs").read_text().split()]
            except (OSError, ValueError):
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> bool:
        """Remove the cgroup; False while processes still live in it."""
        removed = True
        for folder in self._distinct():
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                removed = False
        return removed
