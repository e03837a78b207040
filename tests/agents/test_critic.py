"""The critic: execution first, the verifier's P(Yes) or a JSON score on top, real feedback or none."""

from __future__ import annotations

import json

import pytest
from trellis.agents.critic import Critic, CriticConfig, real_feedback
from trellis.agents.verifier import Verifier, p_yes

from trellis.models import Completion, CompletionRequest, ScriptedModel
from trellis.models.base import BaseChatModel
from trellis.tree import Action, Observation, Step, Tree, Usage


class LogprobModel(BaseChatModel):
    """Answers every request with one token and the given first-token distribution."""

    name = "logprobs"

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.requests: list[CompletionRequest] = []

    async def generate(self, request: CompletionRequest) -> list[Completion]:
        self.requests.append(request)
        best = max(self.table, key=self.table.__getitem__)
        usage = Usage(prompt_tokens=100, completion_tokens=1, calls=1)
        return [Completion(text=best, usage=usage, logprobs=[dict(self.table)] if request.logprobs else None)]


def trajectory(text: str = "ok", error: bool = False) -> object:
    tree = Tree.new()
    action = Action(tool="write_file", args={"path": "a.py", "content": "x = 1\n"})
    child = tree.add_child("0", 0, Step(action=action, observation=Observation(text=text, is_error=error)))
    return tree.path(child.id)


def test_p_yes_reads_the_first_token() -> None:
    import math

    done = Completion(text="Yes", logprobs=[{"Yes": math.log(0.6), " No": math.log(0.2), "Maybe": math.log(0.2)}])
    assert p_yes(done) == pytest.approx(0.75)
    assert p_yes(Completion(text="No.")) == 0.0  # no log-probabilities: the word decides
    assert p_yes(Completion(text="Perhaps")) is None
    assert p_yes(Completion(text="x", logprobs=[{"Yes": float("-inf"), "No": float("nan")}])) is None


async def test_verifier_asks_for_one_token_with_logprobs() -> None:
    model = LogprobModel({"Yes": -0.1, "No": -2.4})
    probability, usage, error = await Verifier(model)("task", trajectory(), changes="+x = 1")  # type: ignore[arg-type]
    assert probability == pytest.approx(0.909, abs=1e-3) and error is None and usage.calls == 1
    request = model.requests[0]
    assert request.max_tokens == 1 and request.logprobs and request.temperature == 0
    assert "+x = 1" in request.messages[-1].content


async def test_value_mixes_tests_and_verifier() -> None:
    model = LogprobModel({"Yes": 0.0, "No": -50.0})  # P(Yes) ~ 1
    critic = Critic(model, CriticConfig(hard_weight=0.6, sc_weight=0, verify_checked=True))
    evaluation = await critic("t", trajectory(), signals=["tests ran: 1 of 2 pass"], hard=0.5, changes="+x")  # type: ignore[arg-type]
    assert evaluation.value == pytest.approx(0.6 * 0.5 + 0.4 * 1.0)
    assert "P(correct) = 1.00" in evaluation.explanation


async def test_failed_actions_and_unchanged_states_cost_no_call() -> None:
    model = LogprobModel({"Yes": 0.0})
    critic = Critic(model, CriticConfig(sc_weight=0, failed_value=0.1, neutral_value=0.5))
    failed = await critic(
        "t", trajectory("no such file", error=True), signals=[], hard=0.0, failed=True, failure="view_file x led to: no"
    )  # type: ignore[arg-type]
    assert failed.value == pytest.approx(0.1) and failed.feedback == "view_file x led to: no"
    looked = await critic("t", trajectory(), signals=[], changes="")  # type: ignore[arg-type]
    assert looked.value == 0.5
    assert model.requests == []


async def test_self_consistency_term() -> None:
    critic = Critic(LogprobModel({"No": 0.0}), CriticConfig(sc_weight=0.2))
    evaluation = await critic("t", trajectory(), signals=[], changes="+x", consistency=1.0)  # type: ignore[arg-type]
    assert evaluation.value == pytest.approx(0.8 * 0.0 + 0.2 * 1.0)


async def test_score_mode_parses_json_and_drops_placeholder_feedback() -> None:
    reply = json.dumps({"explanation": "fine", "score": 60, "feedback": "advice for the next attempt"})
    critic = Critic(ScriptedModel([reply]), CriticConfig(mode="score", sc_weight=0))
    evaluation = await critic("t", trajectory(), signals=[])  # type: ignore[arg-type]
    assert evaluation.value == pytest.approx(0.8) and evaluation.lm_score == 60
    assert evaluation.feedback == ""  # the instructions' own words are no feedback
    real = json.dumps({"explanation": "x", "score": 0, "feedback": "handle the empty list before indexing"})
    evaluation = await Critic(ScriptedModel([real]), CriticConfig(mode="score"))("t", trajectory(), signals=[])  # type: ignore[arg-type]
    assert evaluation.feedback == "handle the empty list before indexing"


def test_real_feedback() -> None:
    assert real_feedback("  ") == "" and real_feedback("N/A") == "" and real_feedback("...") == ""
    assert real_feedback("Advice for the next attempt.") == ""
    assert real_feedback("check  the\nsign") == "check the sign"


async def test_checked_changes_need_no_verifier_by_default() -> None:
    model = LogprobModel({"Yes": 0.0})
    critic = Critic(model, CriticConfig(hard_weight=0.6, sc_weight=0, neutral_value=0.5))
    checked = await critic("t", trajectory(), signals=[], hard=1.0, changes="+x")  # type: ignore[arg-type]
    assert checked.value == pytest.approx(0.6 + 0.4 * 0.5) and model.requests == []
    unchecked = await critic("t", trajectory(), signals=[], changes="+x")  # type: ignore[arg-type]
    assert len(model.requests) == 1 and unchecked.value == pytest.approx(1.0)
