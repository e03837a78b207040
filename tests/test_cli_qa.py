"""`trellis qa solve` with a scripted model (`--model python:scripted_qa:qa_model`, no real model)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trellis.envs.qa import generate_corpus
from trellis.search.run import RunDir

TESTS = Path(__file__).resolve().parent


def qa(cwd: Path, *args: str, command: str = "solve") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS / "envs"), os.environ.get("PYTHONPATH")])),
        "COLUMNS": "140",
    }
    return subprocess.run(
        [sys.executable, "-m", "trellis.cli", "qa", command, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_solve_prints_the_tree_and_scores_the_chosen_answer(tmp_path: Path) -> None:
    # the scripted model answers the corpus's birthplace questions (tests/envs/scripted_qa.py)
    corpus = generate_corpus()
    index, question = next(
        (i, q) for i, q in enumerate(corpus.questions) if q.question.startswith("In which town was the founder")
    )
    result = qa(tmp_path, str(index), "--model", "python:scripted_qa:qa_model", "--critic", "none")
    assert result.returncode == 0, result.stderr
    assert f"answer: {question.answers[0]}  gold: {question.answers[0]}  EM 1  F1 1.00" in result.stdout
    assert "run summary" in result.stdout
    assert (tmp_path / "runs" / f"qa-0-{question.id}" / "tree.db").is_file()
    # the same folder again is refused, with what to do
    again = qa(tmp_path, question.id, "--model", "python:scripted_qa:qa_model")
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_a_qa_node_shows_the_prompt_with_the_qa_world_s_tools(tmp_path: Path) -> None:
    """`trellis tree node` rebuilds the prompt a step was asked with: a QA run's own tools and role line,
    not the code world's `search PATTERN [PATH]`."""
    result = qa(tmp_path, "0", "--model", "python:scripted_qa:qa_model", "--critic", "none", "--run", "run")
    assert result.returncode == 0, result.stderr
    tree = RunDir(tmp_path / "run").load_tree()
    searched = next(
        n for n in tree if n.step and n.step.action and n.step.action.tool == "search" and tree.children(n.id)
    )
    below = tree.children(searched.id)[0]
    shown = subprocess.run(
        [sys.executable, "-m", "trellis.cli", "tree", "node", str(tmp_path / "run"), below.id],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "search QUERY" in out and "answer TEXT" in out and "PATTERN" not in out
    assert "tools not described" not in out and "You answer questions by searching" in out
    query = str(searched.step.action.args["query"])  # type: ignore[union-attr]
    assert f"search {query}" in out  # the earlier step as the model wrote it, not shell-quoted


def test_strategy_linear_answers_along_one_path(tmp_path: Path) -> None:
    """`--strategy linear`: one trajectory, where the default search forks (two samples a step)."""
    corpus = generate_corpus()
    index, question = next(
        (i, q) for i, q in enumerate(corpus.questions) if q.question.startswith("In which town was the founder")
    )
    for strategy, forks in (("linear", False), ("mcts", True)):
        run = tmp_path / strategy
        args = [str(index), "--model", "python:scripted_qa:qa_model", "--strategy", strategy, "--run", str(run)]
        result = qa(tmp_path, *args)
        assert result.returncode == 0, result.stderr
        assert f"answer: {question.answers[0]}  gold: {question.answers[0]}" in result.stdout
        tree = RunDir(run).load_tree()
        assert (max(len(tree.children(node.id)) for node in tree) > 1) == forks, strategy


def test_unknown_question_is_a_user_error(tmp_path: Path) -> None:
    result = qa(tmp_path, "q9999", "--model", "python:scripted_qa:qa_model")
    assert result.returncode == 2 and "has no question 'q9999'" in result.stderr


def test_batch_answers_several_questions_and_goes_on_where_it_stopped(tmp_path: Path) -> None:
    import json

    corpus = generate_corpus()
    birthplace = [i for i, q in enumerate(corpus.questions) if q.question.startswith("In which town was the founder")]
    chosen = ",".join(str(i) for i in birthplace[:2])
    args = ["--questions", chosen, "--model", "python:scripted_qa:qa_model", "--set", "critic.mode=none"]
    result = qa(tmp_path, *args, command="batch")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "runs" / "qa-batch" / "answers.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [corpus.questions[i].id for i in birthplace[:2]]
    assert all(r["answer"] for r in rows) and "2 questions: EM" in result.stdout
    stored = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "qa-batch").glob("*/tree.db")}
    again = qa(tmp_path, *args, command="batch")
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == result.stdout.splitlines()[-1]
    assert {p: p.stat().st_mtime_ns for p in stored} == stored  # finished questions are not searched again
    for bad, says in [("0", "give 1 to"), ("9-3", "low to high"), (",", "is empty")]:
        refused = qa(tmp_path, "--questions", bad, command="batch")
        assert refused.returncode == 2 and says in refused.stderr


def _hotpot_record(qid: str, org: str, founder: str, born: str, moved: str) -> dict[str, object]:
    """A distractor-setting record (HotpotQA's original layout) phrased as the scripted model reads."""
    return {
        "_id": qid,
        "question": f"In which town was the founder of the {org} born?",
        "answer": born,
        "type": "bridge",
        "supporting_facts": [[org, 0], [founder, 0]],
        "context": [
            [org, [f"The {org} was founded in 1890 by {founder}.", " It trains clockmakers."]],
            [founder, [f"{founder} was born in {born}.", f" {founder.split()[0]} later moved to {moved}."]],
            [born, [f"{born} is a town by a lake."]],
            [moved, [f"{moved} is a port with a market."]],
        ],
    }


def test_questions_from_a_hotpot_format_file(tmp_path: Path) -> None:
    import json

    data = tmp_path / "dev.jsonl"
    records = [
        _hotpot_record("h1", "Halvard Guild", "Tesra Moll", "Quillon", "Darrow"),
        _hotpot_record("h2", "Orrin Society", "Bela Varn", "Lisket", "Mordale"),
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    common = ["--data", f"file:{data}", "--model", "python:scripted_qa:qa_model", "--set", "critic.mode=none"]
    common += ["--set", "discriminator.strategy=majority"]
    result = qa(tmp_path, "--questions", "2", *common, command="batch")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "runs" / "qa-batch" / "answers.jsonl").read_text().splitlines()]
    assert [(r["id"], r["answer"], r["em"]) for r in rows] == [("h1", "Quillon", 1.0), ("h2", "Lisket", 1.0)]
    one = qa(tmp_path, "h2", *common)
    assert one.returncode == 0, one.stderr
    assert (
        "answer: Lisket  gold: Lisket  EM 1" in one.stdout and (tmp_path / "runs" / "qa-dev-h2" / "tree.db").is_file()
    )
    both = qa(tmp_path, "0", "--corpus-seed", "2", *common)
    assert both.returncode == 2 and "give one of them, not both" in both.stderr


@pytest.mark.ray
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray (pip install 'trellis[ray]')")
def test_batch_on_ray_gives_what_the_local_executor_gives(tmp_path: Path) -> None:
    import json

    args = ["--questions", "3", "--model", "python:scripted_qa:qa_model", "--set", "critic.mode=none", "--seed", "5"]
    local = qa(tmp_path, *args, "--runs", "local", command="batch")
    assert local.returncode == 0, local.stderr
    # one Ray task per question, each building its model on its worker, in a Ray runtime of the command's own
    remote = qa(tmp_path, *args, "--runs", "ray", "--executor", "ray", command="batch")
    assert remote.returncode == 0, (remote.stdout[-2000:], remote.stderr[-3000:])
    read = {name: (tmp_path / name / "answers.jsonl").read_text().splitlines() for name in ("local", "ray")}
    assert [json.loads(line) for line in read["ray"]] == [json.loads(line) for line in read["local"]]
    assert remote.stdout.splitlines()[-1].split(";")[0] == local.stdout.splitlines()[-1].split(";")[0]
    # the same trees: node for node
    for question in (p.name for p in (tmp_path / "local").iterdir() if p.is_dir()):
        a, b = RunDir(tmp_path / "local" / question).load_tree(), RunDir(tmp_path / "ray" / question).load_tree()
        assert {k: v.model_dump(exclude={"usage"}) for k, v in a.nodes.items()} == {
            k: v.model_dump(exclude={"usage"}) for k, v in b.nodes.items()
        }
    refused = qa(tmp_path, *args, "--address", "auto", command="batch")
    assert refused.returncode != 0 and "are for Ray" in refused.stdout + refused.stderr
