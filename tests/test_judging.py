"""ReSeek's instructive reward arithmetic, and which steps' verdicts rule on which observations."""

from __future__ import annotations

from trellis.judging import judgements, rewards_by_step, score_judgements
from trellis.tree import Action, JudgeVerdict, Observation, Step


def test_the_reward_table() -> None:
    useful = [True, False, True, False, True]
    verdicts = [True, True, False, False, None]  # right Yes, wrong Yes, wrong No, right No, none
    assert score_judgements(useful, verdicts, answer_correct=False).per_step == [0.3, -0.6, -0.3, 0.3, 0.0]
    answered = score_judgements(useful, verdicts, answer_correct=True)
    assert answered.per_step == [0.4, -0.6, -0.3, 0.4, 0.0]  # right judgements earn 0.1 more with a right answer
    assert answered.total == -0.1 and answered.useful == useful


def test_a_verdict_is_the_next_step_s_and_only_reads_are_judged() -> None:
    def step(tool: str, keep: bool | None = None, error: bool = False) -> Step:
        return Step(
            action=Action(tool=tool),
            observation=Observation(text=tool, is_error=error),
            judge=None if keep is None else JudgeVerdict(keep=keep),
        )

    steps = [
        step("search"),
        step("write_file", keep=False),
        step("view_file", keep=True),
        step("view_file", error=True),
    ]
    steps.append(step("finish", keep=True))
    pairs = judgements(steps, {"search", "view_file"})
    # the search is judged by the write's reply; the view by the failed view's (no verdict there);
    # a failed read is not judged
    assert [(index, o.text, v.keep if v else None) for index, o, v in pairs] == [
        (1, "search", False),
        (3, "view_file", None),
    ]
    scored = score_judgements([True, True], [v for _, _, v in pairs], answer_correct=False)
    assert rewards_by_step(pairs, scored) == {1: -0.3}  # a step that judged nothing earns nothing
