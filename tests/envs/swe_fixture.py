"""A tiny SWE-bench-format task built from scratch: a repository with a bug, a test patch, a gold
patch and pinned dependencies, in the dataset's own field layout."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest as _pytest
from trellis.envs.code.workspace import init_repository
from trellis.envs.swebench.instance import SWEInstance

FILES = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "tinycalc"\nversion = "0.1"\n\n[tool.setuptools]\npackages = ["tinycalc"]\n'
    ),
    "tinycalc/__init__.py": (
        '"""Arithmetic helpers."""\n\n\ndef add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n\n\n'
        "def mul(a, b):\n    return a * b\n\n\nclass Counter:\n    def __init__(self):\n        self.n = 0\n\n"
        "    def bump(self):\n        self.n = add(self.n, 1)\n        return self.n\n"
    ),
    "tests/test_calc.py": "from tinycalc import mul\n\n\ndef test_mul():\n    assert mul(3, 4) == 12\n",
    "README.md": "tinycalc: add and multiply.\n",
}
TEST_PATCH_FILE = (
    "from tinycalc import add, mul\n\n\ndef test_mul():\n    assert mul(3, 4) == 12\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n"
)


def _diff(repo: Path, path: str, content: str) -> str:
    original = (repo / path).read_text()
    (repo / path).write_text(content)
    patch = subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True, check=True).stdout
    (repo / path).write_text(original)
    return patch


def make_swe_task(root: Path) -> tuple[SWEInstance, Path, Path]:
    """(instance, repository path, lock file) for the tinycalc task."""
    repo = root / "tinycalc-src"
    commit = init_repository(repo, FILES)
    gold = _diff(repo, "tinycalc/__init__.py", FILES["tinycalc/__init__.py"].replace("return a - b", "return a + b"))
    test_patch = _diff(repo, "tests/test_calc.py", TEST_PATCH_FILE)
    record = {
        "repo": "example/tinycalc",
        "instance_id": "example__tinycalc-1",
        "base_commit": commit,
        "patch": gold,
        "test_patch": test_patch,
        "problem_statement": "add(2, 3) returns -1 instead of 5.",
        "hints_text": "",
        "created_at": "2026-01-01T00:00:00Z",
        "version": "0.1",
        "environment_setup_commit": commit,
        "FAIL_TO_PASS": json.dumps(["tests/test_calc.py::test_add"]),
        "PASS_TO_PASS": json.dumps(["tests/test_calc.py::test_mul"]),
    }
    (root / "instances.jsonl").write_text(json.dumps(record) + "\n")
    lock = root / "locks" / "example__tinycalc-1.txt"
    lock.parent.mkdir(exist_ok=True)
    lock.write_text(f"pytest=={_pytest.__version__}\n")
    return SWEInstance.model_validate(record), repo, lock
