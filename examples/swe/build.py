"""Build the shipped SWE-bench-format examples: a git bundle per repository, instances.jsonl, locks/.

Run from anywhere:  python examples/swe/build.py
Commits use fixed dates, so the bundles and base commits come out the same every time.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "trellis",
    "GIT_AUTHOR_EMAIL": "examples@trellis",
    "GIT_COMMITTER_NAME": "trellis",
    "GIT_COMMITTER_EMAIL": "examples@trellis",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}

PYPROJECT = (
    '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
    '[project]\nname = "{name}"\nversion = "0.1"\n\n[tool.setuptools]\npackages = ["{name}"]\n'
)

EXAMPLES = [
    {
        "name": "tinycalc",
        "instance_id": "example__tinycalc-1",
        "problem_statement": (
            "`tinycalc.add(2, 3)` returns -1 instead of 5. `add` should return the sum of its two arguments; "
            "`Counter.bump`, which uses it, counts down instead of up."
        ),
        "files": {
            "tinycalc/__init__.py": (
                '"""Arithmetic helpers."""\n\n\ndef add(a, b):\n'
                '    """Return the sum of a and b."""\n    return a - b\n'
                '\n\ndef mul(a, b):\n    """Return the product of a and b."""\n    return a * b\n\n\nclass Counter:\n'
                "    def __init__(self):\n        self.n = 0\n\n    def bump(self):\n        self.n = add(self.n, 1)\n"
                "        return self.n\n"
            ),
            "tests/test_calc.py": "from tinycalc import mul\n\n\ndef test_mul():\n    assert mul(3, 4) == 12\n",
        },
        "fix": ("tinycalc/__init__.py", "return a - b", "return a + b"),
        "test": (
            "tests/test_calc.py",
            "from tinycalc import Counter, add, mul\n\n\ndef test_mul():\n"
            "    assert mul(3, 4) == 12\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
            "def test_counter():\n    c = Counter()\n    c.bump()\n    assert c.bump() == 2\n",
        ),
        "FAIL_TO_PASS": ["tests/test_calc.py::test_add", "tests/test_calc.py::test_counter"],
        "PASS_TO_PASS": ["tests/test_calc.py::test_mul"],
    },
    {
        "name": "textkit",
        "instance_id": "example__textkit-1",
        "problem_statement": (
            "`textkit.slugify('Hello,  World!')` returns 'hello---world-' but should return 'hello-world': runs of "
            "separators must collapse into one dash, and the slug must not start or end with a dash."
        ),
        "files": {
            "textkit/__init__.py": (
                '"""Small text utilities."""\n\nimport re\n\n\ndef slugify(text):\n'
                '    """Lower-case `text` and join its words with single dashes."""\n'
                '    return re.sub(r"[^a-z0-9]", "-", text.lower())\n\n\ndef words(text):\n'
                '    """The words of `text`."""\n    return re.findall(r"[A-Za-z0-9]+", text)\n'
            ),
            "tests/test_text.py": (
                "from textkit import slugify, words\n\n\ndef test_simple_slug():\n"
                "    assert slugify('abc') == 'abc'\n\n\ndef test_words():\n"
                "    assert words('a, b c') == ['a', 'b', 'c']\n"
            ),
        },
        "fix": (
            "textkit/__init__.py",
            'return re.sub(r"[^a-z0-9]", "-", text.lower())',
            'return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")',
        ),
        "test": (
            "tests/test_text.py",
            "from textkit import slugify, words\n\n\ndef test_simple_slug():\n    assert slugify('abc') == 'abc'\n\n\n"
            "def test_words():\n    assert words('a, b c') == ['a', 'b', 'c']\n\n\n"
            "def test_slug_collapses_separators():\n    assert slugify('Hello,  World!') == 'hello-world'\n",
        ),
        "FAIL_TO_PASS": ["tests/test_text.py::test_slug_collapses_separators"],
        "PASS_TO_PASS": ["tests/test_text.py::test_simple_slug", "tests/test_text.py::test_words"],
    },
]


def git(repo: Path, *args: str, capture: bool = False) -> str:
    result = subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True, text=True)
    return result.stdout


def diff_of(repo: Path, path: str, content: str) -> str:
    target = repo / path
    original = target.read_text()
    target.write_text(content)
    patch = git(repo, "diff")
    target.write_text(original)
    return patch


def build() -> None:
    records = []
    (HERE / "locks").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for example in EXAMPLES:
            name = example["name"]
            repo = Path(tmp) / name
            repo.mkdir()
            files = {"pyproject.toml": PYPROJECT.format(name=name), "README.md": f"{name}\n", **example["files"]}
            for path, content in files.items():
                (repo / path).parent.mkdir(parents=True, exist_ok=True)
                (repo / path).write_text(content)
            git(repo, "init", "-q", "-b", "main")
            git(repo, "add", "--all")
            git(repo, "commit", "-q", "-m", f"{name}: initial version")
            commit = git(repo, "rev-parse", "HEAD").strip()
            source_path, old, new = example["fix"]
            gold = diff_of(repo, source_path, (repo / source_path).read_text().replace(old, new))
            test_path, test_content = example["test"]
            test_patch = diff_of(repo, test_path, test_content)
            git(repo, "bundle", "create", str(HERE / f"{name}.bundle"), "main")
            records.append(
                {
                    "repo": f"example/{name}",
                    "instance_id": example["instance_id"],
                    "base_commit": commit,
                    "patch": gold,
                    "test_patch": test_patch,
                    "problem_statement": example["problem_statement"],
                    "hints_text": "",
                    "created_at": "2026-01-01T00:00:00Z",
                    "version": "0.1",
                    "environment_setup_commit": commit,
                    "FAIL_TO_PASS": json.dumps(example["FAIL_TO_PASS"]),
                    "PASS_TO_PASS": json.dumps(example["PASS_TO_PASS"]),
                }
            )
            (HERE / "locks" / f"{example['instance_id']}.txt").write_text("pytest>=8\n")
    (HERE / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    print(f"wrote {len(records)} instances to {HERE / 'instances.jsonl'}")


if __name__ == "__main__":
    build()
