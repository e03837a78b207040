"""The judge: ReSeek's JUDGE as an agent of its own, for solvers that do not judge in their replies.

After a step's observation comes back, the judge reads P(Yes) for "is what it returned useful for
the task?" from the model's token log-probabilities (the verifier's method; a small model gives no
usable free-text verdict). An observation judged useless leaves the branch's later prompts, exactly
as when the solver's reply carries `<judge>No</judge>`; the tree keeps it. A judge on a model of its
own (a bigger one, or one trained on the instructive reward) keeps the solver's replies plain.
"""

from __future__ import annotations

from trellis.agents.prompts import judge_messages
from trellis.agents.verifier import p_yes

from trellis.errors import ModelError
from trellis.models.base import ChatModel
from trellis.tree import Trajectory, Usage


class Judge:
    """Judges the last observation of a trajectory: True keeps it, False drops it, None abstains."""

    def __init__(self, model: ChatModel, *, threshold: float = 0.5, top_logprobs: int = 10) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"the judge's threshold is a probability between 0 and 1, not {threshold}")
        self.model = model
        self.threshold = threshold
        self.top_logprobs = top_logprobs

    async def __call__(
        self, task: str, trajectory: Trajectory, *, seed: int | None = None
    ) -> tuple[bool | None, Usage]:
        """Abstains (None) where there is no observation to judge, the model fails, or its answer is
        neither Yes nor No: an observation is dropped only on a clear verdict."""
        steps = trajectory.steps
        if not steps or steps[-1].observation is None:
            return None, Usage()
        try:
            (reply,) = await self.model.complete(
                judge_messages(task, trajectory),
                n=1,
                temperature=0.0,
                max_tokens=1,
                seed=seed,
                logprobs=self.top_logprobs,
            )
        except ModelError:
            return None, Usage()
        probability = p_yes(reply)
        if probability is None:
            return None, reply.usage
        return probability >= self.threshold, reply.usage
