"""Code worlds in containers: the search end to end, states, and what the agent cannot do there.

The tools themselves run in both sandboxes in `test_code_world.py`; these are the container's own
cases, on images the tests build (`conftest.repository_image`) over a Podman engine they start.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import repository_image
from swe_fixture import FILES
from trellis.envs.code.container import ContainerWorkspace
from trellis.envs.code.workspace import init_repository
from trellis.envs.code.world import CodeWorld
from trellis.envs.sandbox import BwrapSandbox, RunRequest
from trellis.envs.sandbox.docker import AGENT_USER, LABEL, DockerSandbox
from trellis.envs.tasks.world import get_task
from trellis.search.config import BudgetConfig, SearchConfig
from trellis.search.run import RunDir, run_search

from trellis.errors import UserError
from trellis.tree import Action

sys.path.insert(0, str(Path(__file__).parents[1] / "search"))
from scripted_agents import code_task_model

pytestmark = pytest.mark.docker

TASK = get_task("reverse_string")


@pytest.fixture(scope="module")
def tinycalc(docker_client: object) -> str:
    return repository_image(docker_client, "tinycalc", FILES)


@pytest.fixture
async def world(docker_client: object, tinycalc: str) -> AsyncIterator[CodeWorld]:
    async with DockerSandbox(tinycalc, client=docker_client, user=AGENT_USER) as box:
        world = CodeWorld(box, task="Fix add().", test_command="python -m pytest -rA tests/test_calc.py")
        await world.reset()
        yield world


async def shell(world: CodeWorld, command: str) -> str:
    observation = await world.step(Action(tool="shell", args={"command": command}))
    return observation.text


async def as_root(world: CodeWorld, command: str) -> str:
    assert isinstance(world.sandbox, DockerSandbox)
    return (await world.sandbox.admin(RunRequest(command=command))).output


async def test_the_image_s_repository_moves_out_of_the_agent_s_reach(world: CodeWorld) -> None:
    text = await shell(world, "id -u; ls -a; cat /var/lib/trellis/git/HEAD; ls /var/lib/trellis; git status")
    lines = text.splitlines()
    assert lines[1] == "1000" and ".git" not in lines  # the agent's user; the image's .git moved away
    assert text.count("Permission denied") == 2 and "not a git repository" in text
    assert "tinycalc" in text and "README.md" in text
    # root's git directory holds the image's history: the base is the image's commit
    assert {"HEAD", "config", "objects"} <= set((await as_root(world, "ls /var/lib/trellis/git")).split())
    workspace = world.workspace
    assert isinstance(workspace, ContainerWorkspace)
    assert workspace.base_commit in await as_root(world, "git --git-dir=/var/lib/trellis/git rev-parse HEAD")


async def test_network_host_files_and_secrets_are_out_of_reach(world: CodeWorld, tmp_path: Path) -> None:
    text = await shell(world, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert text.split()[-1] == "lo"
    secret = tmp_path / "host-secret.txt"
    secret.write_text("TOKEN=hunter2\n")
    os.environ["TRELLIS_TEST_SECRET"] = "hunter2"
    try:
        text = await shell(world, f"cat {secret}; ls {tmp_path}; env; cat /proc/1/environ")
    finally:
        del os.environ["TRELLIS_TEST_SECRET"]
    assert "hunter2" not in text and "No such file" in text  # nothing of the host's is mounted or passed in


async def test_leftover_processes_are_killed(world: CodeWorld) -> None:
    await shell(world, "(sleep 300 &) ; sleep 301 & echo started")
    text = await shell(world, "ps -o user,args | grep '[s]leep 30' | wc -l")
    assert text.split()[-1] == "0"


async def test_a_process_that_kills_its_own_sweep_is_gone_before_root_s_git_runs(world: CodeWorld) -> None:
    # the command kills the shell that would sweep after it, so its background process outlives it
    escape = "setsid sleep 999 & sleep 0.2; kill -KILL $(cut -d' ' -f4 /proc/$PPID/stat) $PPID"
    await world.step(Action(tool="shell", args={"command": escape}))
    assert "sleep 999" in await as_root_unswept(world, "ps -o user,args")
    await world.snapshot()  # root's git: every process of the agent's user is killed first
    assert "sleep 999" not in await as_root_unswept(world, "ps -o user,args")


async def as_root_unswept(world: CodeWorld, command: str) -> str:
    """A root command that does not sweep (only tests look without touching)."""
    assert isinstance(world.sandbox, DockerSandbox)
    return world.sandbox._exec(RunRequest(command=command), command, "0").output


async def test_a_forking_survivor_is_gone_before_root_s_git_runs(world: CodeWorld) -> None:
    fork_loop = "setsid sh -c 'while :; do (sleep 0.01 &); done' & sleep 0.3; kill -9 $(cut -d' ' -f4 /proc/$PPID/stat)"
    await world.step(Action(tool="shell", args={"command": fork_loop}))
    await world.snapshot()
    left = await as_root_unswept(world, "ps -o user,args | grep -c '^trellis\\|^1000'")
    assert left.split()[-1] == "0"


async def test_a_restore_never_hands_root_s_files_to_the_agent(world: CodeWorld) -> None:
    # a name holding a newline and "..", and a link that replaces a folder between two states
    await shell(world, 'd="$(printf \'a\\n..\')"; mkdir -p "$d/usr/bin" && touch "$d/usr/bin/git"; ln -s /usr/bin x')
    linked = await world.snapshot()
    await shell(world, "rm x && mkdir x && touch x/git")
    foldered = await world.snapshot()
    await world.restore(world.workspace.base_tree)
    await world.restore(foldered)
    await world.restore(linked)
    owners = await as_root(world, "stat -c '%u %n' / /usr /usr/bin /usr/bin/git /testbed/x")
    assert [line.split()[0] for line in owners.splitlines()[:4]] == ["0", "0", "0", "0"], owners
    assert "-> /usr/bin" in await shell(world, "ls -l x")


async def test_long_commands_outlive_lease_renewals(docker_client: object, tinycalc: str) -> None:
    async with DockerSandbox(tinycalc, client=docker_client, user=AGENT_USER, lease=8) as box:  # renewed every 2 s
        result = await box.run(RunRequest(command="sleep 5; echo done", timeout=30))
        assert result.ok and result.stdout == "done\n"


async def test_files_the_image_holds_beside_its_repository_are_left_alone(docker_client: object) -> None:
    image = repository_image(docker_client, "untracked", {"app.py": "X = 1\n", ".gitignore": "*.so\n"})
    container = docker_client.containers.create(
        image, ["sh", "-c", "echo built > /testbed/_ext.c.out; echo b > /testbed/m.so"]
    )  # type: ignore[attr-defined]
    container.start()
    container.wait()
    container.commit(repository="localhost/trellis-untracked", tag="built")
    container.remove()
    async with DockerSandbox("localhost/trellis-untracked:built", client=docker_client, user=AGENT_USER) as box:
        world = CodeWorld(box, task="x")
        await world.reset()
        await world.step(Action(tool="write_file", args={"path": "app.py", "content": "X = 2\n"}))
        state = await world.snapshot()
        await world.restore(world.workspace.base_tree)
        await world.restore(state)
        assert await box.read_file("_ext.c.out") == "built\n"  # build output the image did not ignore: kept
        assert "_ext.c.out" not in await world.patch() and "X = 2" in await world.patch()


async def test_planted_git_configuration_runs_nothing(world: CodeWorld) -> None:
    """Whatever the agent writes where git might look, trellis's git reads none of it as instructions."""
    planted = textwrap.dedent(
        """\
        mkdir -p .git/hooks
        printf '[core]\\n\\tfsmonitor = "touch /tmp/pwned-fsmonitor"\\n\\thooksPath = .git/hooks\\n' > .git/config
        printf '[filter "evil"]\\n\\tclean = touch /tmp/pwned-filter\\n' >> .git/config
        printf '[diff "evil"]\\n\\ttextconv = touch /tmp/pwned-textconv\\n' >> .git/config
        printf '#!/bin/sh\\ntouch /tmp/pwned-hook\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit
        printf '* filter=evil diff=evil\\n' > .gitattributes
        cp .git/config .gitconfig; mkdir -p .config/git && cp .git/config .config/git/config
        echo changed >> README.md
        """
    )
    await shell(world, planted)
    state = await world.snapshot()
    patch = await world.patch()
    await world.restore(world.workspace.base_tree)
    await world.restore(state)
    assert "+changed" in patch and "+* filter=evil diff=evil" in patch  # data, recorded as data
    assert "pwned" not in await as_root(world, "ls /tmp /var/lib/trellis /root 2>&1")
    assert "changed" in await shell(world, "tail -1 README.md")


async def test_links_never_lead_the_tools_or_root_s_git_out_of_the_workspace(world: CodeWorld) -> None:
    await shell(world, "ln -s /etc etc && ln -s /etc/hostname notes.txt && ln -s /var/lib/trellis/git/config gitconf")
    for tool, args in (
        ("view_file", {"path": "notes.txt"}),
        ("view_file", {"path": "gitconf"}),
        ("write_file", {"path": "etc/new.conf", "content": "x"}),
        ("replace", {"path": "notes.txt", "old": "a", "new": "b"}),
        ("search", {"pattern": "root", "path": "etc"}),
    ):
        observation = await world.step(Action(tool=tool, args=args))
        assert observation.is_error and "outside the workspace" in observation.text, (tool, observation.text)
    observation = await world.step(Action(tool="search", args={"pattern": "repositoryformatversion|root:"}))
    assert observation.text.startswith("no match")
    assert "new.conf" not in await as_root(world, "ls /etc")
    # root's git stores the links as links and puts them back as links, owned by the agent's user
    state = await world.snapshot()
    await world.restore(world.workspace.base_tree)
    assert "notes.txt" not in await shell(world, "ls")
    await world.restore(state)
    listing = await shell(world, "ls -ln notes.txt etc")
    assert "-> /etc/hostname" in listing and " 1000 " in listing


async def test_snapshots_restores_and_ownership(world: CodeWorld) -> None:
    base = await world.snapshot()
    assert base == world.workspace.base_tree
    await world.step(Action(tool="write_file", args={"path": "pkg/deep/new.py", "content": "X = 1\n"}))
    await world.step(Action(tool="replace", args={"path": "tinycalc/__init__.py", "old": "a - b", "new": "a + b"}))
    await shell(world, "rm README.md")
    changed = await world.snapshot()
    await world.restore(base)
    text = await shell(world, "ls pkg; cat README.md")
    assert "pkg: No such file" in text and FILES["README.md"] in text
    await world.restore(changed)
    text = await shell(world, "ls -ln pkg pkg/deep; echo more >> pkg/deep/new.py && echo writable")
    assert "writable" in text and " 1000 " in text
    # the same files reached another way are the same state, here as on the host
    await world.restore(base)
    await shell(world, "mkdir -p pkg/deep && echo 'X = 1' > pkg/deep/new.py && rm README.md")
    await world.step(Action(tool="replace", args={"path": "tinycalc/__init__.py", "old": "a - b", "new": "a + b"}))
    assert await world.snapshot() == changed


async def test_a_folder_without_a_repository_is_committed_as_the_base(docker_client: object) -> None:
    image = repository_image(docker_client, "plain", {"app.py": "print('hi')\n"}, git=False)
    async with DockerSandbox(image, client=docker_client, user=AGENT_USER) as box:
        world = CodeWorld(box, task="x")
        await world.reset()
        await world.step(Action(tool="write_file", args={"path": "app.py", "content": "print('hello')\n"}))
        assert (await world.patch()).count("+print('hello')") == 1
        assert await world.workspace.files() == ["app.py"]


async def test_states_outlive_their_container_through_packs(
    docker_client: object, tinycalc: str, tmp_path: Path
) -> None:
    packs = tmp_path / "states"
    async with DockerSandbox(tinycalc, client=docker_client, user=AGENT_USER) as box:
        first = CodeWorld(box, task="x", packs=packs)
        await first.reset()
        await first.step(Action(tool="write_file", args={"path": "notes.txt", "content": "kept\n"}))
        state = await first.snapshot()
    assert (packs / f"{state}.pack").is_file()
    async with DockerSandbox(tinycalc, client=docker_client, user=AGENT_USER) as box:
        second = CodeWorld(box, task="x", packs=packs)
        await second.restore(state)
        assert await box.read_file("notes.txt") == "kept\n"
        with pytest.raises(UserError, match="same `packs` folder"):
            await CodeWorld(box, task="x").restore("0" * 40)


async def test_refusals_say_what_to_do(docker_client: object, tinycalc: str) -> None:
    with pytest.raises(UserError, match="unprivileged"):
        DockerSandbox(tinycalc, user="0:0")
    with pytest.raises(UserError, match="not on this machine"):
        await DockerSandbox("localhost/trellis-missing:latest", client=docker_client).start()
    async with DockerSandbox(tinycalc, client=docker_client) as box:
        with pytest.raises(UserError, match="unprivileged user"):
            await CodeWorld(box, task="x").reset()


def _search(worlds: list[CodeWorld], run: Path, parallel: int = 1) -> None:
    config = SearchConfig(
        samples=3,
        parallel=parallel,
        budget=BudgetConfig(max_nodes=16, enough_finished=2, reward_threshold=0.99, stop_when_checked=False),
        critic={"mode": "score"},  # type: ignore[arg-type]
    )
    model = code_task_model(TASK)
    asyncio.run(run_search(task=worlds[0].task, worlds=worlds, model=model, config=config, run_dir=run))


def _nodes(run: Path) -> dict[str, object]:
    tree = RunDir(run).load_tree()
    tree.check()
    return {k: v.model_dump(exclude={"usage"}) for k, v in tree.nodes.items()}


@pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")
def test_the_search_runs_in_containers_and_grows_the_tree_the_host_grows(docker_client: object, tmp_path: Path) -> None:
    files = {"solution.py": TASK.prompt}
    image = repository_image(docker_client, "reverse-string", files)
    init_repository(tmp_path / "repo", files)
    task = "Implement reverse_string in solution.py."
    _search([CodeWorld(BwrapSandbox(tmp_path / "repo"), task=task)], tmp_path / "host")

    async def in_containers(parallel: int, run: Path) -> None:
        boxes = [DockerSandbox(image, client=docker_client, user=AGENT_USER) for _ in range(parallel)]
        for box in boxes:
            await box.start()
        try:
            packs = run.parent / f"{run.name}-states"
            worlds = [CodeWorld(box, task=task, packs=packs) for box in boxes]
            await asyncio.to_thread(_search, worlds, run, parallel)
        finally:
            for box in boxes:
                await box.close()

    asyncio.run(in_containers(1, tmp_path / "container"))
    host, container = _nodes(tmp_path / "host"), _nodes(tmp_path / "container")
    assert container == host  # the same nodes, the same state ids (git trees), the same rewards
    finished = [n for n in RunDir(tmp_path / "container").load_tree() if n.terminal_reason == "finished"]
    patches = [n.step.observation.patch or "" for n in finished if n.step and n.step.observation]
    assert patches and all(p.startswith("diff --git a/solution.py b/solution.py") for p in patches)  # made in there
    # two containers at once: states made in one are restored in the other
    asyncio.run(in_containers(2, tmp_path / "parallel"))
    assert len(_nodes(tmp_path / "parallel")) > 3
    assert list((tmp_path / "parallel-states").glob("*.pack"))


def test_a_killed_process_s_container_removes_itself(
    docker_client: object, docker_host: str, tinycalc: str, tmp_path: Path
) -> None:
    script = tmp_path / "holder.py"
    script.write_text(
        textwrap.dedent(
            f"""\
            import asyncio, docker
            from trellis.envs.sandbox.docker import DockerSandbox

            async def main():
                client = docker.DockerClient(base_url={docker_host!r})
                box = DockerSandbox({tinycalc!r}, client=client, lease=5)
                await box.start()
                print(box.id, flush=True)
                await asyncio.sleep(600)

            asyncio.run(main())
            """
        )
    )
    holder = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    sandbox_id = holder.stdout.readline().strip()

    def running() -> list[object]:
        return docker_client.containers.list(all=True, filters={"label": f"{LABEL}={sandbox_id}"})  # type: ignore[attr-defined]

    assert running()
    holder.kill()  # SIGKILL: no cleanup code runs
    holder.wait()
    deadline = time.monotonic() + 30
    while running() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not running()
