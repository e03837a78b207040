"""`trellis swe solve|batch --sandbox docker`: the shipped tinycalc example in containers of an image
that holds it as the official images hold theirs (the repository at its base commit in /testbed),
with the scripted model of `test_solve_cli` playing every role."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from engine import PYTHON_IMAGE
from trellis.cli.runview import Patches
from trellis.envs.sandbox.docker import LABEL
from trellis.envs.swebench.container import RUN_LABEL, run_key
from trellis.envs.swebench.instance import load_instances
from trellis.search.run import RunDir

from trellis.store import TreeStore

pytestmark = pytest.mark.docker

TESTS = Path(__file__).resolve().parents[1]
EXAMPLES = TESTS.parent / "examples" / "swe"
INSTANCE = "example__tinycalc-1"
IMAGE = "localhost/trellis-example-tinycalc:latest"


@pytest.fixture(scope="module")
def image(docker_client: object, tmp_path_factory: pytest.TempPathFactory) -> str:
    try:
        docker_client.images.get(PYTHON_IMAGE)  # type: ignore[attr-defined]
    except Exception:
        pytest.skip(f"{PYTHON_IMAGE} could not be built here")
    instance = next(i for i in load_instances(EXAMPLES / "instances.jsonl") if i.instance_id == INSTANCE)
    work = tmp_path_factory.mktemp("image")
    repo = work / "testbed"
    subprocess.run(["git", "clone", "-q", str(EXAMPLES / "tinycalc.bundle"), str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", instance.base_commit], check=True)
    # installed in place, as the official images install theirs (pip install -e .)
    (work / "testbed.pth").write_text("/testbed\n")
    with tarfile.open(work / "repo.tar", "w") as tar:
        tar.add(repo, arcname="testbed")
        tar.add(work / "testbed.pth", arcname="usr/local/lib/python3.11/dist-packages/testbed.pth")
    container = docker_client.containers.create(PYTHON_IMAGE, ["true"])  # type: ignore[attr-defined]
    try:
        container.put_archive("/", (work / "repo.tar").read_bytes())
        container.commit(repository=IMAGE.rsplit(":", 1)[0], tag="latest")
    finally:
        container.remove(force=True)
    return IMAGE


def trellis(cwd: Path, host: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DOCKER_HOST": host,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "COLUMNS": "160",
    }
    command = [sys.executable, "-m", "trellis.cli", *args]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def _nodes(path: Path) -> int:
    try:
        with TreeStore(path, readonly=True) as store:
            return store.count()
    except Exception:
        return 0


def test_solve_in_containers_killed_and_resumed_then_graded(
    tmp_path: Path, docker_client: object, docker_host: str, image: str
) -> None:
    run = tmp_path / "runs" / "a"
    args = ["swe", "solve", INSTANCE, "--sandbox", "docker", "--image", image, "--no-live", "--parallel", "2"]
    args += ["--samples", "2", "--max-nodes", "10", "--seed", "3", "--set", "budget.enough_finished=3"]
    process = trellis(tmp_path, docker_host, *args, "--model", "python:test_solve_cli:slow_scripted", "--run", "runs/a")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and _nodes(run / "tree.db") < 3 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    code, output = finish(process)
    assert code == -signal.SIGKILL, f"the run ended before it was killed ({code}):\n{output[-3000:]}"
    with TreeStore(run / "tree.db", readonly=True) as store:
        before = {n.id for n in store.nodes()}
    recorded = json.loads((run / "run.json").read_text())["environment"]
    assert recorded == {"sandbox": "docker", "image": image, "workdir": "/testbed"}
    # the killed run's containers are still there until their lease runs out; the resume removes them
    assert docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_key(run)}"})  # type: ignore[attr-defined]

    code, output = finish(
        trellis(tmp_path, docker_host, *args, "--model", "python:test_solve_cli:scripted", "--resume", "runs/a")
    )
    assert code == 0, output[-4000:]
    assert "Traceback" not in output and "graded: resolved" in output, output[-3000:]
    tree = RunDir(run).load_tree()
    tree.check()
    assert before <= set(tree.nodes) and len(tree) > len(before)
    # every state the run made is kept as a pack in the run folder; the base's files were read for localisation
    states = {n.state_id for n in tree if n.state_id}
    assert states <= {p.name.removesuffix(".pack") for p in (run / "states").glob("*.pack")}
    assert (run / "base" / "tinycalc" / "__init__.py").is_file()
    assert tree.meta["opening"]["path"] == "tinycalc/__init__.py"
    # the run folder alone shows every state's patch (the tree browser's diffs), the containers gone
    patches = Patches(run)
    assert patches.git_dir is not None, patches.problem
    fixed = next(n for n in tree if n.state_id and "return a + b" in patches.patch(n)[0])
    assert patches.patch(fixed)[0].startswith("diff --git a/tinycalc/__init__.py b/tinycalc/__init__.py")
    assert patches.patch(tree.root)[0] == ""
    report = json.loads((run / "report.json").read_text())
    assert report["resolved"] and "return a + b" in (run / "final.patch").read_text()
    # nothing is left running
    left = docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_key(run)}"})  # type: ignore[attr-defined]
    assert not left, [c.labels.get(LABEL) for c in left]


def test_batch_in_containers_and_a_missing_image(
    tmp_path: Path, docker_client: object, docker_host: str, image: str
) -> None:
    docker_client.images.get(image).tag(f"localhost/trellis-{INSTANCE}", "latest")  # type: ignore[attr-defined]
    args = ["swe", "batch", "-i", str(EXAMPLES / "instances.jsonl"), "--id", INSTANCE, "--sandbox", "docker"]
    args += ["--image", "localhost/trellis-{instance_id}:latest", "--max-nodes", "4", "--samples", "2"]
    code, output = finish(trellis(tmp_path, docker_host, *args, "--model", "python:test_solve_cli:scripted"))
    assert code == 0, output[-3000:]
    prediction = json.loads((tmp_path / "runs" / "predictions.jsonl").read_text())
    assert prediction["instance_id"] == INSTANCE and "tinycalc/__init__.py" in prediction["model_patch"]
    assert json.loads((tmp_path / "runs" / INSTANCE / "run.json").read_text())["environment"]["sandbox"] == "docker"
    # an image that is not there is named, with what to do, before any model is loaded
    args = [
        "swe",
        "solve",
        INSTANCE,
        "--sandbox",
        "docker",
        "--image",
        "localhost/trellis-nowhere:latest",
        "--run",
        "x",
    ]
    code, output = finish(trellis(tmp_path, docker_host, *args, "--model", "python:test_solve_cli:scripted"))
    assert code != 0 and "is not on this machine" in output and "docker pull" in output and "Traceback" not in output
    prepare = ["swe", "prepare", INSTANCE, "-i", str(EXAMPLES / "instances.jsonl"), "--sandbox", "docker"]
    code, output = finish(trellis(tmp_path, docker_host, *prepare))
    assert code == 1 and "missing" in output and "swebench/sweb.eval" in output
