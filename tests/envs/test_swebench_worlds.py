"""An instance's worlds: the settings a search's world gets, and the graded world that labels
finished trajectories with the hidden tests (for revision data), on a task built here."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from swe_fixture import FILES, make_swe_task
from trellis.envs.code.workspace import add_worktree
from trellis.envs.swebench.environment import SWEEnvironment
from trellis.envs.swebench.worlds import GradedWorld, instance_world

from trellis.tree import Action

BWRAP = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")
SOURCE = "tinycalc/__init__.py"


def test_an_instance_world_keeps_the_reference_patch_for_the_judge_only(tmp_path: Path) -> None:
    instance, _, _ = make_swe_task(tmp_path)
    settings = instance_world(instance, [], [])
    assert settings["gold_patch"] == instance.patch and "return a + b" in instance.patch
    assert settings["hidden_paths"] == ["tests/test_calc.py"] and settings["default_path"] is None


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> SWEEnvironment:
    root = tmp_path_factory.mktemp("swe")
    instance, repo, lock = make_swe_task(root)
    env = SWEEnvironment(instance, root / "env")
    asyncio.run(env.prepare(str(repo), lock, offline=True))
    return env


@BWRAP
def test_the_graded_world_grades_its_current_patch_once_and_leaves_the_checkout_at_the_base(
    prepared: SWEEnvironment, tmp_path: Path
) -> None:
    async def main() -> None:
        folder = add_worktree(prepared.repo_dir, tmp_path / "w", prepared.instance.base_commit)
        world = GradedWorld(prepared, folder, "fix add", default_path=SOURCE)
        try:
            await world.reset()
            unchanged = await world.reward()
            assert unchanged is not None and unchanged.value == 0.0 and not unchanged.resolved
            fixed = FILES[SOURCE].replace("return a - b", "return a + b")
            seen = await world.step(Action(tool="write_file", args={"path": SOURCE, "content": fixed}))
            assert "tests next to the change" in seen.text  # observed as in the search
            graded = await world.reward()
            assert graded is not None and graded.value == 1.0 and graded.resolved
            assert graded.details["tests_status"]["FAIL_TO_PASS"]["success"] == ["tests/test_calc.py::test_add"]
            # the environment's own checkout, where grading applied the patch, is at the base again
            assert (prepared.repo_dir / SOURCE).read_text() == FILES[SOURCE]
            # the same patch again is not graded again
            (prepared.root / "logs" / "graded-world.log").unlink()
            assert await world.reward() == graded
            assert not (prepared.root / "logs" / "graded-world.log").exists()
        finally:
            await world.sandbox.close()

    asyncio.run(main())


@BWRAP
def test_an_instance_without_listed_tests_has_no_grade(prepared: SWEEnvironment, tmp_path: Path) -> None:
    bare = SWEEnvironment(prepared.instance.model_copy(update={"FAIL_TO_PASS": [], "PASS_TO_PASS": []}), prepared.root)

    async def main() -> None:
        folder = add_worktree(bare.repo_dir, tmp_path / "w", bare.instance.base_commit)
        world = GradedWorld(bare, folder, "fix add")
        try:
            await world.reset()
            assert await world.reward() is None
        finally:
            await world.sandbox.close()

    asyncio.run(main())
