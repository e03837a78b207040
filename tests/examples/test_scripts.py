"""Each example runs as the README shows it, from its command line to the hidden tests' verdict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["self_refine", "lats", "react_agent", "best_of_n", "linter_graph", "custom_graph"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_example_runs_from_its_command_line(name: str, tmp_path: Path) -> None:
    # the scripted model's module is found on the path, as a model of your own would be
    paths = [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "COLUMNS": "120", "TMPDIR": str(scratch)}
    script = ROOT / "examples" / f"{name}.py"
    command = [
        sys.executable,
        str(script),
        "--task",
        "reverse_string",
        "--model",
        "python:example_models:reverse_string",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hidden tests on the chosen solution: 3/3 hidden tests pass" in result.stdout
    assert not list(scratch.iterdir()), "the example left its temporary repository behind"
