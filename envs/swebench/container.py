"""SWE-bench in containers: the instance's image is its environment, one container per world.

The official images (`swebench_image(instance_id)`) hold the repository at its base commit in
/testbed and its dependencies in a conda environment named testbed; an image of your own works too
if it keeps that layout (or another workdir, given). Nothing is prepared on the host: the image is
pulled or built beforehand (`docker pull`, or swebench's image builders), and trellis refuses to
start without it. The agent works in a container with no network, as an unprivileged user; its
states are git trees in each container and packs in the run folder (`states/`), so parallel worlds
share them and a resumed run, in new containers, restores every one.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

from trellis.envs.code.container import ContainerWorkspace
from trellis.envs.sandbox.docker import AGENT_USER, DockerSandbox, docker_client, remove_containers, swebench_image
from trellis.envs.swebench.harness import OFFICIAL_SETUP
from trellis.envs.swebench.instance import SWEInstance

from trellis.errors import UserError

WORKDIR = "/testbed"
CONDA_PATH = "/opt/miniconda3/envs/testbed/bin:/opt/miniconda3/bin"
"""The official images' testbed environment first on the PATH: `python` and `pytest` are its own."""
RUN_LABEL = "trellis.run"


class ContainerEnvironment:
    """An instance's environment as a container image."""

    kind = "docker"

    def __init__(
        self, instance: SWEInstance, image: str | None = None, *, client: Any = None, workdir: str = WORKDIR
    ) -> None:
        self.instance = instance
        self.image = image or swebench_image(instance.instance_id)
        self.workdir = workdir
        self.setup = OFFICIAL_SETUP if self.image == swebench_image(instance.instance_id) else ""
        """What grading runs before the tests: the official images' conda activation, nothing in others."""
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def check(self, *, pull: bool = True) -> ContainerEnvironment:
        """Raise UserError unless the engine answers and holds the image; a missing one is pulled first
        (`pull`), as `docker pull` would (the official images are on Docker Hub)."""
        client = self.client
        try:
            client.images.get(self.image)
            return self
        except Exception as exc:
            if type(exc).__name__ != "ImageNotFound":
                raise UserError(f"cannot look up the image {self.image}: {exc}") from None
        why = "it is not on this machine"
        if pull:
            name, _, tag = self.image.rpartition(":") if ":" in self.image.rsplit("/", 1)[-1] else (self.image, "", "")
            try:
                client.images.pull(name, tag=tag or "latest")
                return self
            except Exception as exc:
                why = f"it is not on this machine and pulling it failed ({str(exc).strip().splitlines()[0][:200]})"
        raise UserError(
            f"the image {self.image}: {why}; pull it (`docker pull {self.image}`) or build it with swebench's image "
            "builders where the engine cannot reach a registry, or name another with --image"
        )

    def run_env(self) -> dict[str, str]:
        return {
            "PATH": f"{CONDA_PATH}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def sandbox(self, run_dir: Path) -> DockerSandbox:
        """A container for one of the run's worlds: no network, the agent as an unprivileged user,
        labelled with the run (so a later start of the same run removes what a killed one left)."""
        return DockerSandbox(
            self.image, workdir=self.workdir, client=self.client, user=AGENT_USER, labels={RUN_LABEL: run_key(run_dir)}
        )

    def remove_leftovers(self, run_dir: Path) -> int:
        """Remove containers an earlier, killed start of this run left (before their lease ran out)."""
        return remove_containers(self.client, {RUN_LABEL: run_key(run_dir)})

    async def base_files(self, run_dir: Path) -> Path:
        """The repository's files at the base commit, extracted into `run_dir/base` on the host (for
        localisation, as data: links, devices and paths that leave the folder are refused)."""
        folder = run_dir / "base"
        marker = folder / ".trellis-complete"
        if marker.exists():
            return folder
        async with self.sandbox(run_dir) as box:
            workspace = ContainerWorkspace(box, self.instance.base_commit)
            data = await workspace.archive()
        folder.mkdir(parents=True, exist_ok=True)

        def extract() -> None:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(folder, filter=_data_only)

        await asyncio.to_thread(extract)
        marker.write_text("")
        return folder

    def record(self) -> dict[str, Any]:
        return {"sandbox": self.kind, "image": self.image, "workdir": self.workdir}


def _data_only(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """tarfile's "data" filter, skipping (not failing on) what it refuses: a link out of the folder."""
    try:
        return tarfile.data_filter(member, path)
    except tarfile.FilterError:
        return None


def run_key(run_dir: Path) -> str:
    return hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
