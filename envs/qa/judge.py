"""ReSeek's instructive judge reward on retrievals (the arithmetic is `trellis.judging`'s).

After each search the agent says whether what came back is useful (keep it) or not (drop it); a
judgement is right when it matches whether the observation holds a gold answer.

"Holds a gold answer" is ReSeek's label: a normalised gold answer string (any alias) occurs in the
observation, here as whole words (`metrics.contains_answer`). A step with no judgement earns 0.
ReSeek's training reward adds this total to the answer's reward (1.0 for an exact match).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trellis.envs.qa.metrics import contains_answer

from trellis.judging import (
    RIGHT,
    RIGHT_AND_ANSWERED,
    WRONG_NO,
    WRONG_YES,
    JudgeReward,
    Verdict,
    judgements,
    score_judgements,
)
from trellis.tree import Observation, Step

__all__ = [
    "RIGHT",
    "RIGHT_AND_ANSWERED",
    "WRONG_NO",
    "WRONG_YES",
    "JudgeReward",
    "Verdict",
    "evidence_text",
    "judge_reward",
    "search_judgements",
]


def evidence_text(observation: Observation | str) -> str:
    """The text a judgement is about: the retrieved passages (titles and texts) where the observation
    recorded them, else the observation's text."""
    if isinstance(observation, str):
        return observation
    passages: Any = observation.data.get("passages")
    if isinstance(passages, list) and passages:
        parts = [f"{p.get('title', '')}\n{p.get('text', '')}" for p in passages if isinstance(p, dict)]
        return "\n\n".join(parts)
    return observation.text


def judge_reward(
    observations_with_verdicts: Sequence[tuple[Observation | str, Verdict]],
    gold_answers: Sequence[str],
    answer_correct: bool,
) -> JudgeReward:
    """The reward of each (observation, verdict) pair against the gold answers, and the total.

    `answer_correct`: whether the trajectory's final answer is right (it adds 0.1 to every right
    judgement)."""
    useful = [contains_answer(evidence_text(o), gold_answers) for o, _ in observations_with_verdicts]
    return score_judgements(useful, [v for _, v in observations_with_verdicts], answer_correct)


def search_judgements(steps: Sequence[Step], tool: str = "search") -> list[tuple[int | None, Observation, Verdict]]:
    """(index of the judging step, observation, verdict) for each step of a trajectory that called
    `tool` and got an answer (see `trellis.judging.judgements`)."""
    return judgements(steps, {tool})
