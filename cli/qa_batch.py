"""A batch of questions: the job of one question, the same wherever it runs.

`answer_one` is what every executor runs per question (`trellis.cli.jobs.run_batch`): a question
whose run folder holds a finished run is read back, an interrupted one resumed, otherwise searched;
`qa_remote` is that job as a Ray task, with a model of its own.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from trellis.search.config import SearchConfig

from trellis.models.base import ChatModel


class QAJob(BaseModel):
    """Everything one question's job needs; plain data, so it can be sent to another process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question_id: str
    data: str
    """Where the question comes from (`--data`, see `trellis.envs.qa.sources`)."""
    run_dir: Path
    """The question's run folder (absolute: a Ray worker's working folder is not the driver's)."""
    settings: SearchConfig
    model: str
    top_k: int = 3
    max_turns: int = 4


class QARow(BaseModel):
    """What became of one question: its answer and scores, or the error."""

    model_config = ConfigDict(extra="forbid")

    id: str
    type: str = ""
    answer: str = ""
    gold: str = ""
    em: float = 0.0
    f1: float = 0.0
    prompt_tokens: int = 0
    tokens: int = 0
    state: str = ""
    """searched, resumed, done earlier or failed."""
    error: str = ""


async def answer_one(job: QAJob, chat: ChatModel) -> QARow:
    """Search, resume or read back one question; a failure is returned as a row, never raised."""
    from trellis.envs.qa import exact_match, f1_score, qa_worlds
    from trellis.envs.qa.sources import open_source
    from trellis.search.run import RunDir, run_search

    try:
        source = open_source(job.data)  # opened once per process, like each corpus's index
        question = source.question(job.question_id)
        corpus, index = source.corpus_of(question.id), source.index_of(question.id)
        folder = RunDir(job.run_dir)
        tree = folder.load_tree() if folder.exists() else None
        state = "done earlier"
        if tree is None or tree.final is None:
            state = "searched" if tree is None else "resumed"
            worlds = qa_worlds(
                corpus, question.id, job.settings.parallel, index=index, top_k=job.top_k, max_turns=job.max_turns
            )
            await run_search(
                task=worlds[0].task,
                worlds=worlds,
                model=chat,
                config=job.settings,
                run_dir=job.run_dir,
                resume=tree is not None,
                info={
                    "instance_id": question.id,
                    "corpus": corpus.name,
                    "data": source.spec,
                    "question": question.question,
                    "top_k": job.top_k,
                    "max_turns": job.max_turns,
                },
            )
            tree = folder.load_tree()
    except Exception as exc:  # one question's failure is reported; the others go on
        return QARow(id=job.question_id, state="failed", error=f"{type(exc).__name__}: {exc}")
    answer = tree.final.patch if tree.final and tree.final.patch else ""
    usage = tree.total_usage()
    return QARow(
        id=question.id,
        type=question.type,
        answer=answer,
        gold=question.answers[0],
        em=exact_match(answer, question.answers) if answer else 0.0,
        f1=round(f1_score(answer, question.answers), 4) if answer else 0.0,
        prompt_tokens=usage.prompt_tokens,
        tokens=usage.total_tokens,
        state=state,
    )


def qa_failed(job: QAJob, why: str) -> QARow:
    return QARow(id=job.question_id, state="failed", error=why)


def qa_remote(job: QAJob) -> QARow:
    """One question as a Ray task: a model of its own, built from the job's spec on the worker."""
    import asyncio

    from trellis.cli.jobs import with_own_model

    return asyncio.run(with_own_model(job.model, lambda chat: answer_one(job, chat), lambda why: qa_failed(job, why)))
