"""`--data`: where a QA command's questions come from (synthetic, a kept corpus, HotpotQA-format files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_qa_loaders import ORIGINAL, RECORD
from trellis.envs.qa import SyntheticConfig, generate_corpus
from trellis.envs.qa.sources import open_source

from trellis.errors import UserError


def test_synthetic_is_the_generated_corpus() -> None:
    for spec, seed in (("synthetic", 0), ("synthetic:0", 0), ("synthetic:3", 3)):
        source = open_source(spec)
        corpus = generate_corpus(SyntheticConfig(seed=seed))
        assert source.name == str(seed) and source.corpora == (corpus,)
        assert (
            source.question(2) == corpus.questions[2] and source.question(corpus.questions[5].id) == corpus.questions[5]
        )
        assert source.corpus_of(corpus.questions[5].id) is source.corpora[0]
        hits = source.index_of(corpus.questions[0].id).search(corpus.questions[0].question, 3)
        assert len(hits) == 3
        assert source.index_of(corpus.questions[0].id) is source.index_of(corpus.questions[1].id)  # one index


@pytest.mark.parametrize("layout", ["list", "lines"])
def test_a_hotpot_file_gives_each_question_its_own_paragraphs(tmp_path: Path, layout: str) -> None:
    second = {
        **ORIGINAL,
        "_id": "b2",
        "question": "Where does the Ostrel Bridge's architect come from?",
        "answer": "Pellin",
    }
    path = tmp_path / f"dev.{'json' if layout == 'list' else 'jsonl'}"
    records = [RECORD, second]
    path.write_text(json.dumps(records) if layout == "list" else "".join(json.dumps(r) + "\n" for r in records))
    source = open_source(f"file:{path}")
    assert source.name == "dev" and [q.id for q in source.questions] == [RECORD["id"], "b2"]
    assert source.question(1).answers == ["Pellin"] and source.question("b2") == source.question(1)
    first, other = source.corpus_of(RECORD["id"]), source.corpus_of("b2")
    assert first is not other and [p.title for p in first.passages][:2] == ["Ostrel Library", "Maro Quint"]
    (hit,) = source.index_of("b2").search("Maro Quint architect born", 1)
    assert hit.title == "Maro Quint" and other.passage(hit.id).title == "Maro Quint"


def test_a_kept_corpus_is_read_back(tmp_path: Path) -> None:
    corpus = generate_corpus(SyntheticConfig(seed=2))
    path = tmp_path / "kept.json"
    corpus.save(path)
    source = open_source(f"corpus:{path}")
    assert source.corpora == (corpus,) and source.name == "kept"


def test_bad_data_says_what_to_give(tmp_path: Path) -> None:
    twice = tmp_path / "twice.jsonl"
    twice.write_text(json.dumps(RECORD) + "\n" + json.dumps(RECORD) + "\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(RECORD) + "\n{not json\n")
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    for spec, says in [
        ("wiki", "give synthetic[:SEED], corpus:PATH, file:PATH"),
        ("synthetic:x", "takes an integer seed"),
        (f"file:{tmp_path / 'missing.json'}", "there is no file"),
        (f"file:{twice}", "occurs twice"),
        (f"file:{broken}", "broken.jsonl:2 is not JSON"),
        (f"file:{empty}", "holds no records"),
    ]:
        with pytest.raises(UserError, match=says.replace("[", r"\[").replace("]", r"\]")):
            open_source(spec)
    with pytest.raises(UserError, match="has no question 'nope'"):
        open_source("synthetic:0").question("nope")
