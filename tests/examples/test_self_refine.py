"""examples/self_refine.py: the critic's feedback on a draft is in the prompt that refines it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import self_refine
from _support import search_context, task_world

from trellis.models import CompletionRequest, ScriptedModel

FEEDBACK = "Slice the string with a step of -1 instead of returning it unchanged."


def critic_and_solver(request: CompletionRequest, i: int) -> str:
    """A critic that asks for slicing while the examples fail, and a solver that slices only when told to."""
    system, last = request.messages[0].content, request.messages[-1].content
    if system.startswith("You review"):
        failing = "tests ran: 2 of 2 pass" not in last
        verdict = {"explanation": "scripted", "score": -60 if failing else 90, "feedback": FEEDBACK if failing else ""}
        return json.dumps(verdict)
    if system.startswith("You are a careful"):
        body = "return s[::-1]" if FEEDBACK in last else "return s"
        return f"Here it is.\n\nsolution.py\n```python\ndef reverse_string(s: str) -> str:\n    {body}\n```"
    return '{"choice": 0}'


def solver_prompts(model: ScriptedModel) -> list[str]:
    return [r.messages[-1].content for r in model.requests if r.messages[0].content.startswith("You are a careful")]


async def run(tmp_path: Path, *, feedback: bool) -> tuple[ScriptedModel, dict[str, Any], bool]:
    world = task_world("reverse_string", tmp_path)
    model = ScriptedModel(critic_and_solver)
    config = self_refine.refine_config(rounds=3, feedback=feedback)
    ctx = search_context(world, model, config)
    final = await self_refine.build_self_refine(ctx, rounds=3).compile().ainvoke({}, {"recursion_limit": 40})
    if final["chosen"] is None:  # no answer passed any check: none is taken
        return model, final, False
    chosen = ctx.tree.get(final["chosen"])
    await world.restore(chosen.state_id or "")
    return model, final, (await world.reward()).resolved


async def test_the_critique_of_a_draft_is_in_the_prompt_that_refines_it(tmp_path: Path) -> None:
    model, final, resolved = await run(tmp_path, feedback=True)
    first, second = solver_prompts(model)
    assert FEEDBACK not in first
    assert f"Notes from other attempts:\n- {FEEDBACK}" in second
    assert final["done"].startswith("the critic accepts")
    assert resolved


async def test_without_feedback_the_refinement_never_sees_the_critique(tmp_path: Path) -> None:
    model, final, resolved = await run(tmp_path, feedback=False)
    prompts = solver_prompts(model)
    assert prompts and not any(FEEDBACK in p for p in prompts)
    assert final["done"] == "3 rounds spent"
    assert not resolved and final["chosen"] is None  # its only answer fails every example: no patch
