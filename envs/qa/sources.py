"""Where a QA command's questions come from, named by one string (`--data`).

- `synthetic` or `synthetic:SEED`: the corpus this package generates (offline; seed 0 by default);
- `corpus:PATH`: a corpus kept as JSON (`QACorpus.save`), searched as one corpus;
- `file:PATH`: a JSON list or JSON Lines file of records in HotpotQA's distractor format (HotpotQA's
  or 2WikiMultihopQA's dev file); each question searches its own paragraphs;
- `hf:NAME[@SPLIT]`: a Hugging Face dataset in that format (`hf:hotpotqa/hotpot_qa` takes its
  distractor configuration; the split is `validation` unless named), which needs the network or the
  dataset in the local Hugging Face cache.

A source is opened once per process; a question's corpus and its BM25 index are built once too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from trellis.envs.qa.corpus import QACorpus, Question
from trellis.envs.qa.loaders import HOTPOTQA, corpus_from_hotpot_record, load_hotpot_format
from trellis.envs.qa.retrieval import PassageIndex
from trellis.envs.qa.synthetic import SyntheticConfig, generate_corpus

from trellis.errors import UserError
from trellis.records import json_records

DEFAULT_DATA = "synthetic:0"
KINDS = "synthetic[:SEED], corpus:PATH, file:PATH (HotpotQA-format JSON or JSON Lines) or hf:NAME[@SPLIT]"


@dataclass(frozen=True)
class QASource:
    """The questions of one `--data` spec and the corpus each is asked over."""

    spec: str
    name: str
    """A short name for run folders and tables: the seed of a synthetic corpus, else the data's name."""
    corpora: tuple[QACorpus, ...]
    _owner: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    """Question id -> the position of its corpus."""

    def __post_init__(self) -> None:
        for position, corpus in enumerate(self.corpora):
            for question in corpus.questions:
                if question.id in self._owner:
                    raise UserError(f"--data {self.spec}: question id {question.id!r} occurs twice; ids must differ")
                self._owner[question.id] = position

    @property
    def questions(self) -> list[Question]:
        return [question for corpus in self.corpora for question in corpus.questions]

    def question(self, key: int | str) -> Question:
        """A question by position (0, 1, ...) or id; UserError naming what exists when there is none."""
        if len(self.corpora) == 1:
            return self.corpora[0].question(key)
        questions = self.questions
        if isinstance(key, int):
            if 0 <= key < len(questions):
                return questions[key]
            raise UserError(
                f"{self.spec} has {len(questions)} questions; choose an index from 0 to {len(questions) - 1}"
            )
        if key in self._owner:
            return self.corpora[self._owner[key]].question(key)
        shown = ", ".join(q.id for q in questions[:5])
        raise UserError(f"{self.spec} has no question {key!r}; its questions are {shown}, ...")

    def corpus_of(self, question_id: str) -> QACorpus:
        """The corpus `question_id` is asked over."""
        return self.corpora[self._position(question_id)]

    def index_of(self, question_id: str) -> PassageIndex:
        """The BM25 index of the question's corpus, built once per process."""
        return _index(self.spec, self._position(question_id))

    def _position(self, question_id: str) -> int:
        self.question(question_id)  # a UserError for an unknown id
        return self._owner[question_id]


def open_source(spec: str) -> QASource:
    """The source `spec` names (see the module docstring); UserError says what to fix. Its `spec` names
    a file by its absolute path, so a run that records it can be opened again from anywhere."""
    return _open(absolute_spec(spec))


def absolute_spec(spec: str) -> str:
    """`spec` with the path of a `file:` or `corpus:` source made absolute."""
    kind, colon, rest = spec.strip().partition(":")
    if kind in ("file", "corpus") and colon and rest:
        return f"{kind}:{Path(rest).expanduser().resolve()}"
    return spec.strip()


@lru_cache(maxsize=4)
def _open(spec: str) -> QASource:
    kind, colon, rest = spec.partition(":")
    if kind == "synthetic":
        seed_text = rest if colon else "0"
        try:
            seed = int(seed_text)
        except ValueError:
            raise UserError(f"--data {spec}: the synthetic corpus takes an integer seed (synthetic:0)") from None
        return QASource(spec, str(seed), (generate_corpus(SyntheticConfig(seed=seed)),))
    if kind == "corpus" and rest:
        path = _existing(spec, rest)
        return QASource(spec, path.stem, (QACorpus.load(path),))
    if kind == "file" and rest:
        path = _existing(spec, rest)
        records = _records(spec, path)
        if not records:
            raise UserError(f"--data {spec}: {path} holds no records")
        corpora = tuple(corpus_from_hotpot_record(r, name=path.stem, number=i) for i, r in enumerate(records))
        return QASource(spec, path.stem, corpora)
    if kind == "hf" and rest:
        name, at, split = rest.partition("@")
        config = "distractor" if name == HOTPOTQA else None
        corpora = tuple(load_hotpot_format(name, config=config, split=split if at else "validation"))
        return QASource(spec, name.rsplit("/", 1)[-1], corpora)
    raise UserError(f"--data {spec!r}: give {KINDS}")


@lru_cache(maxsize=256)
def _index(spec: str, position: int) -> PassageIndex:
    return PassageIndex(_open(spec).corpora[position].passages)


def _existing(spec: str, path_text: str) -> Path:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"--data {spec}: there is no file {path}")
    return path


def _records(spec: str, path: Path) -> list[dict[str, object]]:
    """The records of a JSON list or a JSON Lines file."""
    rows = json_records(path, f"--data {spec} takes a JSON or JSON Lines file of questions")
    if not all(isinstance(row, dict) for row in rows):
        raise UserError(f"--data {spec}: {path} must hold JSON objects, one per question")
    return rows
