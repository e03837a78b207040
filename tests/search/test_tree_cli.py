"""`trellis tree show|node|export|summary|events` on a run folder made by a real (scripted) search."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from scripted_agents import code_task_model
from test_search import TASK, config, search
from trellis.cli import app
from typer.testing import CliRunner

from trellis.tree import Tree

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("treecli")
    search(root, code_task_model(TASK), config())
    return root / "run"


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return result.output


def test_show_and_summary(run_dir: Path) -> None:
    out = invoke("tree", "show", str(run_dir))
    assert out.startswith("0 root") and "[finished]" in out and "★ chosen" in out and "run summary" in out
    shallow = invoke("tree", "show", str(run_dir), "--depth", "1")
    assert "nodes below" in shallow
    assert "outcome" in invoke("tree", "summary", str(run_dir))


def test_node_shows_the_whole_step(run_dir: Path) -> None:
    out = invoke("tree", "node", str(run_dir), "0.0")
    for part in ("prompt", "completion", "action", "observation", "critic", "explanation: scripted review"):
        assert part in out
    assert "You are a careful software engineer" in out  # the prompt is rebuilt from the path


def test_exports(run_dir: Path, tmp_path: Path) -> None:
    assert invoke("tree", "export", str(run_dir), "--format", "dot").startswith("digraph search {")
    assert invoke("tree", "export", str(run_dir), "--format", "mermaid").startswith("graph TD")
    out = tmp_path / "tree.json"
    invoke("tree", "export", str(run_dir), "--format", "json", "--output", str(out))
    tree = Tree.from_json(out.read_text())
    assert tree.final is not None and tree.final.node in tree.nodes
    result = runner.invoke(app, ["tree", "export", str(run_dir), "--format", "png"])
    assert result.exit_code != 0


def test_events(run_dir: Path) -> None:
    assert "node_created" in invoke("tree", "events", str(run_dir), "--last", "50")
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    assert all("event" in json.loads(line) for line in lines)
