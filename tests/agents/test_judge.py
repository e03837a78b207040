"""The judge agent: P(Yes) for "is what the last step returned useful?", a verdict only when clear."""

from __future__ import annotations

import math

import pytest
from test_critic import LogprobModel, trajectory
from trellis.agents.judge import Judge
from trellis.agents.prompts import JUDGE_SYSTEM
from trellis.agents.roles import JudgeRole

from trellis.errors import ModelError
from trellis.models import Completion, CompletionRequest
from trellis.models.base import BaseChatModel
from trellis.tree import Tree


async def test_the_judge_reads_one_token_and_keeps_what_is_useful() -> None:
    model = LogprobModel({"Yes": math.log(0.8), "No": math.log(0.2)})
    judge = Judge(model)
    assert isinstance(judge, JudgeRole)
    verdict, usage = await judge("make add add", trajectory("def add(a, b): return a - b"))  # type: ignore[arg-type]
    assert verdict is True and usage.calls == 1
    request = model.requests[0]
    assert request.max_tokens == 1 and request.logprobs and request.temperature == 0
    assert request.messages[0].content == JUDGE_SYSTEM
    assert "make add add" in request.messages[1].content and "return a - b" in request.messages[1].content


async def test_the_threshold_decides() -> None:
    model = LogprobModel({"Yes": math.log(0.3), "No": math.log(0.7)})
    assert (await Judge(model)("t", trajectory()))[0] is False  # type: ignore[arg-type]
    assert (await Judge(model, threshold=0.25)("t", trajectory()))[0] is True  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="between 0 and 1"):
        Judge(model, threshold=1.0)


class Failing(BaseChatModel):
    name = "failing"

    async def generate(self, request: CompletionRequest) -> list[Completion]:
        raise ModelError("server gone")


async def test_the_judge_abstains_without_a_clear_verdict() -> None:
    verdict, usage = await Judge(LogprobModel({"Maybe": 0.0}))("t", trajectory())  # type: ignore[arg-type]
    assert verdict is None and usage.calls == 1  # asked, and charged, but no verdict
    verdict, usage = await Judge(Failing())("t", trajectory())  # type: ignore[arg-type]
    assert verdict is None and usage.calls == 0
    empty = LogprobModel({"No": 0.0})
    verdict, _ = await Judge(empty)("t", Tree.new().path("0"))  # nothing observed yet
    assert verdict is None and not empty.requests
