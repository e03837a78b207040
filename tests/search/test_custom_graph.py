"""The custom graph example: a self-refine expansion whose retries see the feedback on earlier tries."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.world import CodeTaskWorld, get_task, make_task_repository
from trellis.search.config import BudgetConfig, SearchConfig

from trellis.models import CompletionRequest, ScriptedModel

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_graph.py"


def load_example() -> object:
    spec = importlib.util.spec_from_file_location("custom_graph", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_refine_attempts_see_the_feedback_on_earlier_attempts(tmp_path: Path) -> None:
    task = get_task("reverse_string")
    world = CodeTaskWorld(task, BwrapSandbox(make_task_repository(task, tmp_path / "repo")))
    solver_prompts: list[str] = []

    def respond(request: CompletionRequest, i: int) -> str:
        system = request.messages[0].content
        if system.startswith("You check"):
            return "Yes" if "[::-1]" in request.messages[-1].content else "No"
        if system.startswith("An attempt"):
            return "Reverse with slicing."
        if system.startswith("You are a careful"):
            solver_prompts.append(request.messages[-1].content)
            steps = sum(1 for m in request.messages if m.role == "assistant")
            if steps == 0 and len(solver_prompts) == 1:  # the first attempt is wrong
                return f"solution.py\n```python\n{task.prompt}    return s\n```"
            if steps == 0:
                return f"solution.py\n```python\n{task.prompt}    return s[::-1]\n```"
            return "finish"
        return '{"choice": 0}'

    model = ScriptedModel(respond)
    config = SearchConfig(
        samples=1,
        budget=BudgetConfig(
            max_nodes=8, max_expansions_per_node=3, widen_after=0, enough_finished=1, agreement=1, max_depth=4
        ),
    )
    example = load_example()
    ctx = example.make_context(world, model, config)  # type: ignore[attr-defined]
    app = example.build_refine_search(ctx, attempts=3, accept=0.7).compile()  # type: ignore[attr-defined]
    await app.ainvoke({}, {"recursion_limit": 200})
    # the second attempt at the root was told what the first one ran into
    assert "Notes from other attempts" in solver_prompts[1]
    assert "Expected:" in solver_prompts[1] or "0 of 2 pass" in solver_prompts[1]
    final = ctx.tree.final.node  # type: ignore[union-attr]
    await world.restore(ctx.tree.get(final).state_id or "")
    assert (await world.reward()).resolved
