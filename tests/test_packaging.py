"""The folder-to-package mapping works for a regular (non-editable) install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_regular_install_maps_the_top_level_folders(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    code = (
        "import trellis, trellis.search, trellis.agents, trellis.envs, trellis.models;"
        "from trellis.envs.tasks.catalog import TASKS;"  # the task folders ship as package data
        "print(trellis.search.__file__); print(trellis.envs.__file__); print(len(TASKS))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    search_file, envs_file, tasks = result.stdout.split()
    assert search_file == str(target / "trellis" / "search" / "__init__.py")
    assert envs_file == str(target / "trellis" / "envs" / "__init__.py")
    assert int(tasks) == 35
