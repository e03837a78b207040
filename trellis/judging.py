"""ReSeek's instructive judge reward, for any world that knows which observations were useful.

After an observation the agent says whether it is useful (keep it) or not (drop it from later
prompts). Where the world knows the truth, each (observation, judgement) pair earns:

| judgement | the observation is useful | it is not |
| --- | --- | --- |
| useful (Yes) | +0.3, +0.1 more when the final answer is right | -0.6 (a wrong Yes) |
| useless (No) | -0.3 (a wrong No) | +0.3, +0.1 more when the final answer is right |

What "useful" means is the world's: a QA observation holds a gold answer string; a code observation
shows what the reference patch changes. A step with no judgement earns 0.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pydantic import BaseModel, ConfigDict

from trellis.tree import JudgeVerdict, Observation, Step

RIGHT = 0.3
RIGHT_AND_ANSWERED = 0.1
WRONG_YES = -0.6
WRONG_NO = -0.3

Verdict = bool | JudgeVerdict | None
"""A judgement: True (useful, keep it), False (useless, drop it), a `JudgeVerdict`, or None (none made)."""


class JudgeReward(BaseModel):
    """The judge reward of a trajectory: one value per (observation, judgement) pair, and their sum."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_step: list[float]
    useful: list[bool]
    """Whether each observation was useful (the label each judgement is scored against)."""
    total: float


def keeps(verdict: Verdict) -> bool | None:
    """The judgement a verdict makes: keep (True), drop (False), or none (None)."""
    if isinstance(verdict, JudgeVerdict):
        return verdict.keep
    return verdict


def score_judgements(useful: Sequence[bool], verdicts: Sequence[Verdict], answer_correct: bool) -> JudgeReward:
    """The reward of each judgement against whether its observation was useful, and the total.

    `answer_correct`: whether the trajectory's final answer is right (it adds 0.1 to every right
    judgement). The total is rounded to 6 places so sums such as 0.3 + 0.4 compare equal to 0.7.
    """
    per_step: list[float] = []
    for holds, verdict in zip(useful, verdicts, strict=True):
        keep = keeps(verdict)
        if keep is None:
            per_step.append(0.0)
        elif keep == holds:
            per_step.append(RIGHT + (RIGHT_AND_ANSWERED if answer_correct else 0.0))
        else:
            per_step.append(WRONG_YES if keep else WRONG_NO)
    return JudgeReward(per_step=per_step, useful=list(useful), total=round(sum(per_step), 6))


def judgements(steps: Sequence[Step], tools: Collection[str]) -> list[tuple[int | None, Observation, Verdict]]:
    """(index of the judging step, observation, verdict) for each step of a trajectory that called one
    of `tools` and got an answer. A verdict is given by the reply that answers an observation, so it
    is the next step's `judge` (index None and verdict None when no step follows)."""
    pairs: list[tuple[int | None, Observation, Verdict]] = []
    for index, step in enumerate(steps):
        if step.action is None or step.action.tool not in tools or step.observation is None:
            continue
        if step.observation.is_error:
            continue
        judging = index + 1 if index + 1 < len(steps) else None
        pairs.append((judging, step.observation, steps[judging].judge if judging is not None else None))
    return pairs


def rewards_by_step(pairs: Sequence[tuple[int | None, Observation, Verdict]], scored: JudgeReward) -> dict[int, float]:
    """Each judging step's reward, by its index (the form `JudgeChecked.judge_rewards` returns)."""
    return {
        index: reward
        for (index, _, verdict), reward in zip(pairs, scored.per_step, strict=True)
        if index is not None and verdict is not None
    }
