"""The whole search on a real code-task world (bwrap) with a scripted model playing every role."""

from __future__ import annotations

import asyncio
import json
import os
import random
from pathlib import Path

import pytest
from rich.console import Console
from scripted_agents import code_task_model
from trellis.agents.prompts import DROPPED, completion_prompt
from trellis.cli.runview import prompt_for
from trellis.envs.code.workspace import add_worktree
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.world import CodeTaskWorld, get_task, make_task_repository
from trellis.search.config import BudgetConfig, SearchConfig
from trellis.search.engine import finished_nodes
from trellis.search.run import RunDir, run_search

from trellis.errors import ModelError, UserError
from trellis.models import Completion, CompletionRequest, ScriptedModel
from trellis.models.base import BaseChatModel
from trellis.render import TreeView, node_detail
from trellis.store import TreeStore
from trellis.tree import Tree
from trellis.world import Opening

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")

TASK = get_task("reverse_string")


def worlds(root: Path, count: int = 1) -> list[CodeTaskWorld]:
    repo = make_task_repository(TASK, root / "repo")
    folders = [repo] + [add_worktree(repo, root / f"worktree{i}") for i in range(1, count)]
    return [CodeTaskWorld(TASK, BwrapSandbox(folder)) for folder in folders]


def config(**changes: object) -> SearchConfig:
    base = {
        "samples": 3,
        "budget": BudgetConfig(max_nodes=25, enough_finished=2, reward_threshold=0.99, stop_when_checked=False),
        "critic": {"mode": "score"},
        "finish_when_checked": False,  # the solver says `finish` itself (test_a_checked_answer_is_finished_...)
    }
    return SearchConfig(**{**base, **changes})  # type: ignore[arg-type]


def search(root: Path, model: ScriptedModel, cfg: SearchConfig, count: int = 1) -> object:
    found = worlds(root, count)
    return asyncio.run(run_search(task=found[0].task, worlds=found, model=model, config=cfg, run_dir=root / "run"))


def test_search_finds_finishes_and_decides(tmp_path: Path) -> None:
    model = code_task_model(TASK)
    # margin 1: every finished answer goes to the debate, however the critic valued it
    outcome = search(tmp_path, model, config(discriminator={"margin": 1.0}))
    tree = RunDir(tmp_path / "run").load_tree()
    tree.check()
    finished = [n for n in tree if n.terminal_reason == "finished"]
    assert len({n.state_id for n in finished}) >= 2
    assert outcome.stop_reason == "2 distinct finished candidates"  # type: ignore[attr-defined]
    assert outcome.final_node in {n.id for n in finished}  # type: ignore[attr-defined]
    assert "return s[::-1]" in outcome.patch  # type: ignore[attr-defined]
    # the debate is kept, with every reviewer's turn
    decision = json.loads((tmp_path / "run" / "decision.json").read_text())
    assert decision["strategy"] == "debate" and len(decision["transcript"]) == 2
    # every evaluated node was backed up exactly once
    evaluated = [n for n in tree if n.parent_id is not None and n.reward is not None]
    assert tree.root.visits == len(evaluated)
    for node in tree:
        assert node.visits >= sum(c.visits for c in tree.children(node.id))
    # branches that reach the same files are marked as duplicates, and are not expanded further
    duplicates = [n for n in tree if n.duplicate_of]
    assert duplicates and all(not tree.children(n.id) for n in duplicates)
    # events cover every node
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    created = {e["node"]["id"] for e in events if e["event"] == "node_created"}
    assert created == {n.id for n in tree}
    assert {e["event"] for e in events} >= {"node_created", "node_evaluated", "node_backed_up", "decided"}


def test_same_seed_same_tree(tmp_path: Path) -> None:
    search(tmp_path / "a", code_task_model(TASK), config())
    search(tmp_path / "b", code_task_model(TASK), config())
    a = RunDir(tmp_path / "a" / "run").load_tree()
    b = RunDir(tmp_path / "b" / "run").load_tree()
    assert {k: v.model_dump(exclude={"usage"}) for k, v in a.nodes.items()} == {
        k: v.model_dump(exclude={"usage"}) for k, v in b.nodes.items()
    }
    # another seed reaches the model as other sampling seeds
    first, other = code_task_model(TASK), code_task_model(TASK)
    search(tmp_path / "c", first, config())
    search(tmp_path / "d", other, config(seed=7))
    assert [r.seed for r in first.requests][:3] != [r.seed for r in other.requests][:3]


def test_parallel_expansion_uses_several_worlds(tmp_path: Path) -> None:
    model = code_task_model(TASK)
    search(tmp_path, model, config(parallel=2), count=2)
    tree = RunDir(tmp_path / "run").load_tree()
    tree.check()
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    batches = [e["nodes"] for e in events if e["event"] == "selected"]
    assert any(len(batch) == 2 and len(set(batch)) == 2 for batch in batches)


def test_feedback_and_reflections_reach_later_prompts(tmp_path: Path) -> None:
    model = code_task_model(TASK, wrong="    return s\n")
    budget = BudgetConfig(
        max_nodes=30,
        enough_finished=5,
        reward_threshold=0.99,
        max_expansions_per_node=3,
        widen_after=1,
        stop_when_checked=False,
    )
    search(tmp_path, model, config(budget=budget))
    solver_prompts = [
        r.messages[-1].content for r in model.requests if r.messages[0].content.startswith("You are a careful")
    ]
    assert any("Notes from other attempts" in p and "check the edge cases" in p for p in solver_prompts)
    tree = RunDir(tmp_path / "run").load_tree()
    # a wrong branch finished, was reflected on, and the lesson reached a later expansion's prompt
    assert tree.reflections
    assert any("Lesson: test the function" in p for p in solver_prompts)


def test_switching_agents_off(tmp_path: Path) -> None:
    model = code_task_model(TASK)
    search(tmp_path, model, config(feedback=False, reflection=False))
    prompts = [r.messages[-1].content for r in model.requests if r.messages[0].content.startswith("You are a careful")]
    assert not any("Notes from other attempts" in p for p in prompts)
    assert not any(r.messages[0].content.startswith("An attempt") for r in model.requests)


def test_a_failing_model_is_recorded_not_fatal(tmp_path: Path) -> None:
    model = ScriptedModel([])  # every call fails: "ran out of responses"
    outcome = search(tmp_path, model, config(budget=BudgetConfig(max_nodes=6, max_iterations=5), max_model_errors=2))
    tree = RunDir(tmp_path / "run").load_tree()
    # a failed call is no child: the root stays open and is tried again, until its error budget is spent
    assert len(tree) == 1
    assert len(tree.root.meta["model_errors"]) == 2 and "ran out of responses" in tree.root.meta["model_errors"][0]
    assert outcome.final_node is None and outcome.patch == ""  # type: ignore[attr-defined]
    assert outcome.stop_reason == "no node left to expand"  # type: ignore[attr-defined]


def test_the_search_stops_when_a_finished_answer_passes_the_visible_checks(tmp_path: Path) -> None:
    budget = BudgetConfig(max_nodes=25, enough_finished=5, reward_threshold=1.0, agreement=1)
    outcome = search(tmp_path, code_task_model(TASK), config(budget=budget))
    assert outcome.stop_reason == "a finished candidate passes every visible check"  # type: ignore[attr-defined]
    tree = RunDir(tmp_path / "run").load_tree()
    final = tree.get(outcome.final_node)  # type: ignore[attr-defined]
    assert final.meta["hard"] == 1.0 and "Examples from the docstring: 2 of 2 pass" in final.step.observation.text


REVERSED = {
    "edge": "def reverse_string(s: str) -> str:\n    return s[::-1] if len(s) > 1 else '?'\n",  # passes the examples
    "slice": "def reverse_string(s: str) -> str:\n    return s[::-1]\n",
    "join": "def reverse_string(s: str) -> str:\n    return ''.join(reversed(s))\n",
}


def answers_model(order: list[str]) -> ScriptedModel:
    """Writes the answers of REVERSED in `order` (one per fresh trajectory), then finishes."""
    written = iter(order)

    def respond(request: CompletionRequest, i: int) -> str:
        system = request.messages[0].content
        if system.startswith("You are a careful software engineer"):
            if any(m.role == "assistant" for m in request.messages):
                return "Done.\n\nfinish"
            return f"Write it.\n\nsolution.py\n```python\n{REVERSED[next(written)]}```"
        if system.startswith("You check"):
            return "Yes"
        return json.dumps({"explanation": "scripted review", "score": 80, "feedback": ""})

    return ScriptedModel(respond, name="answers")


@pytest.mark.parametrize("agreement", [1, 2])
def test_the_search_goes_on_until_checked_answers_agree(tmp_path: Path, agreement: int) -> None:
    """Three answers pass the examples; the first is wrong on an empty string. With agreement 2 the
    search goes on past it (its node closed, the root widened) until two different answers behave
    alike on the probes, and those are chosen; with agreement 1 the first is taken."""
    budget = BudgetConfig(
        max_nodes=25, enough_finished=5, reward_threshold=1.0, agreement=agreement, max_expansions_per_node=4
    )
    cfg = config(budget=budget, samples=1, root_samples=1, discriminator={"margin": 1.0})
    outcome = search(tmp_path, answers_model(["edge", "slice", "join", "slice"]), cfg)
    tree = RunDir(tmp_path / "run").load_tree()
    finished = [n for n in tree if n.terminal_reason == "finished"]
    final = tree.get(outcome.final_node)  # type: ignore[attr-defined]
    if agreement == 1:
        assert outcome.stop_reason == "a finished candidate passes every visible check"  # type: ignore[attr-defined]
        assert len(finished) == 1 and "'?'" in outcome.patch  # type: ignore[attr-defined]
        return
    assert outcome.stop_reason == (  # type: ignore[attr-defined]
        "2 distinct finished candidates pass every visible check and behave alike"
    )
    assert len(finished) == 3 and all(n.meta.get("behaviour") for n in finished)
    assert "'?'" not in outcome.patch  # type: ignore[attr-defined]
    assert final.meta["behaviour"] != finished[0].meta["behaviour"]
    edge = tree.parent(finished[0].id)
    assert edge is not None and edge.meta["submitted"] == finished[0].id  # closed: no second finish of it
    assert len(tree.children(edge.id)) == 1
    assert tree.decision["reason"] == "2 distinct answers behave alike on the probe inputs"


CRASHING = "def reverse_string(s: str) -> str:\n    first = s[0]\n    return s[::-1]\n"  # '' raises IndexError


@pytest.mark.parametrize("crash_free", [True, False])
def test_an_answer_that_crashes_on_a_probe_is_repaired_and_does_not_end_the_search(
    tmp_path: Path, crash_free: bool
) -> None:
    """The first answer passes the examples but raises IndexError on an empty string, a probe input.
    With `crash_free` it does not end the search (even at agreement 1): its node stays open, the
    repair shows the model the crash, and the repaired answer is chosen. Without, it is taken."""
    opening = Opening(prompt=completion_prompt(TASK.prompt), path="solution.py")
    answers = iter([CRASHING, REVERSED["join"]])
    repairs = iter([CRASHING, REVERSED["slice"]])  # the first repair repeats the code it was shown

    def respond(request: CompletionRequest, i: int) -> str:
        if request.messages[0].content.startswith("Complete the following"):
            last = request.messages[-1].content
            body = next(repairs) if "raised IndexError" in last else next(answers)
            return f"```python\n{body}```"
        return json.dumps({"explanation": "scripted review", "score": 80, "feedback": ""})

    budget = BudgetConfig(
        max_nodes=25,
        enough_finished=5,
        reward_threshold=1.0,
        agreement=1,
        crash_free=crash_free,
        max_expansions_per_node=3,
    )
    cfg = config(budget=budget, samples=1, root_samples=1, finish_when_checked=True)
    found = worlds(tmp_path)
    model = ScriptedModel(respond)
    run = tmp_path / "run"
    outcome = asyncio.run(
        run_search(task=found[0].task, worlds=found, model=model, config=cfg, run_dir=run, opening=opening)
    )
    tree = RunDir(run).load_tree()
    crashed = tree.get("0.0")
    assert crashed.terminal_reason == "finished" and crashed.meta["hard"] == 1.0
    assert crashed.meta["crashes"] == ["reverse_string('') raised IndexError: string index out of range"]
    assert outcome.stop_reason == "a finished candidate passes every visible check"  # type: ignore[attr-defined]
    if not crash_free:
        assert outcome.final_node == "0.0" and not tree.children("0.0")  # type: ignore[attr-defined]
        return
    # the finished answer was expanded: a repair that repeated it (that answer again, no candidate of
    # its own) and one that fixed the crash
    echo, repair = tree.children("0.0")
    assert echo.duplicate_of == "0.0" and echo.id not in {n.id for n in finished_nodes(tree)}
    assert repair.meta.get("repair") and repair.terminal_reason == "finished" and "crashes" not in repair.meta
    focused = [r for r in model.requests if r.messages[0].content.startswith("Complete the following")]
    asked = [r for r in focused if len(r.messages) > 1][-1]  # the repair that fixed it
    assert [m.role for m in asked.messages] == ["user", "assistant", "user"] and "first = s[0]" in asked.messages[
        1
    ].content
    assert "reverse_string('') raised IndexError: string index out of range" in asked.messages[2].content
    assert "examples must still pass" in asked.messages[2].content
    assert "reply with: finish" not in asked.messages[2].content  # a finished answer's hint is left out
    view = prompt_for(tree, repair)  # `trellis tree node` shows the prompt the model saw
    assert view is not None and [m.content for m in view.messages] == [m.content for m in asked.messages]
    assert outcome.final_node == repair.id and "first = s[0]" not in outcome.patch  # type: ignore[attr-defined]
    console = Console(width=100, record=True)
    console.print(node_detail(tree, "0.0"))
    assert "crashed on probe inputs" in console.export_text()


def test_a_checked_answer_is_finished_without_asking_the_solver(tmp_path: Path) -> None:
    """`finish_when_checked`: in a code task's world a write that passes every example is a finished
    answer itself; a write that fails one is not, and no solver call is spent on saying `finish`."""
    budget = BudgetConfig(max_nodes=25, enough_finished=5, reward_threshold=1.0, max_expansions_per_node=4)
    model = answers_model(["edge", "slice", "join"])
    cfg = config(budget=budget, samples=1, root_samples=1, finish_when_checked=True)
    outcome = search(tmp_path, model, cfg)
    tree = RunDir(tmp_path / "run").load_tree()
    finished = [n for n in tree if n.terminal_reason == "finished"]
    assert [n.action.tool for n in finished if n.action] == ["write_file"] * 3
    assert all(n.depth == 1 for n in finished)
    solver_calls = [r for r in model.requests if r.messages[0].content.startswith("You are a careful")]
    assert len(solver_calls) == 3 and not any(m.role == "assistant" for r in solver_calls for m in r.messages)
    assert outcome.stop_reason == (  # type: ignore[attr-defined]
        "2 distinct finished candidates pass every visible check and behave alike"
    )
    assert "'?'" not in outcome.patch  # type: ignore[attr-defined]


def test_a_transient_model_error_does_not_close_the_node(tmp_path: Path) -> None:
    inner = code_task_model(TASK)
    calls = {"n": 0}

    def flaky(request: CompletionRequest, i: int) -> str:
        calls["n"] += 1
        if calls["n"] <= 3:  # the first call and both of the solver's retries fail
            raise ModelError("server busy")
        return inner._fn(request, i)  # type: ignore[misc]

    outcome = search(tmp_path, ScriptedModel(flaky), config())
    tree = RunDir(tmp_path / "run").load_tree()
    assert tree.root.meta["model_errors"] and tree.children("0")
    assert outcome.final_node is not None  # type: ignore[attr-defined]


class Jittery(BaseChatModel):
    """Another model's answers after a random pause, so parallel expansions finish in random order."""

    def __init__(self, inner: ScriptedModel, seed: int) -> None:
        self.inner, self.rng, self.name = inner, random.Random(seed), "jittery"

    async def generate(self, request: CompletionRequest) -> list[Completion]:
        await asyncio.sleep(self.rng.random() * 0.05)
        return await self.inner.generate(request)


def test_same_seed_same_tree_with_parallel_expansion(tmp_path: Path) -> None:
    trees = []
    for run in range(3):
        model = Jittery(code_task_model(TASK), seed=run)
        search(tmp_path / str(run), model, config(parallel=2), count=2)  # type: ignore[arg-type]
        trees.append(RunDir(tmp_path / str(run) / "run").load_tree())
    dumps = [{k: v.model_dump(exclude={"usage"}) for k, v in tree.nodes.items()} for tree in trees]
    assert dumps[0] == dumps[1] == dumps[2]
    assert any(n.duplicate_of for n in trees[0])  # the case that used to depend on timing is present


def test_run_folder_guards(tmp_path: Path) -> None:
    search(tmp_path, code_task_model(TASK), config())
    found = worlds(tmp_path / "again")
    with pytest.raises(UserError, match="already holds a run"):
        asyncio.run(
            run_search(task="x", worlds=found, model=code_task_model(TASK), config=config(), run_dir=tmp_path / "run")
        )
    with pytest.raises(UserError, match="there is no run folder"):
        asyncio.run(
            run_search(
                task="x",
                worlds=found,
                model=code_task_model(TASK),
                config=config(),
                run_dir=tmp_path / "empty",
                resume=True,
            )
        )
    # a finished run resumed is simply reported again
    outcome = asyncio.run(
        run_search(
            task="x", worlds=found, model=code_task_model(TASK), config=config(), run_dir=tmp_path / "run", resume=True
        )
    )
    with TreeStore(tmp_path / "run" / "tree.db", readonly=True) as store:
        assert outcome.nodes == store.count()


def test_malformed_output_is_retried_with_the_error_then_recorded(tmp_path: Path) -> None:
    def respond(request: object, i: int) -> str:
        messages = request.messages  # type: ignore[attr-defined]
        if messages[0].content.startswith("You are a careful"):
            return "I would look at the file first."
        return '{"explanation": "x", "score": 0, "feedback": ""}'

    model = ScriptedModel(respond)
    search(tmp_path, model, config(samples=1, budget=BudgetConfig(max_nodes=4, max_iterations=2)))
    tree = RunDir(tmp_path / "run").load_tree()
    errors = [n for n in tree if n.terminal_reason == "format error"]
    assert errors and "no action found" in (errors[0].step.error or "")  # type: ignore[union-attr]
    retries = [r for r in model.requests if r.messages[-1].content.startswith("Your reply could not be used")]
    assert retries and "no action found" in retries[0].messages[-1].content


def test_a_token_budget_is_not_overshot_by_more_than_one_expansion(tmp_path: Path) -> None:
    budget = BudgetConfig(
        max_nodes=200, max_iterations=200, max_tokens=2500, enough_finished=50, stop_when_checked=False
    )
    outcome = search(tmp_path, code_task_model(TASK), config(budget=budget))
    assert outcome.stop_reason in ("token budget (2500) spent", "no node left to expand")  # type: ignore[attr-defined]
    tree = RunDir(tmp_path / "run").load_tree()
    per_expansion: dict[tuple[str | None, object], int] = {}
    for node in tree:
        if node.parent_id is not None:
            key = (node.parent_id, node.expansion)
            per_expansion[key] = per_expansion.get(key, 0) + node.usage.total_tokens
    used = tree.total_usage().total_tokens
    assert used <= 2500 + max(per_expansion.values())
    assert len(per_expansion) >= 3  # the budget was spent over several expansions, not one


def test_the_root_is_expanded_with_the_opening_and_later_steps_see_it_as_their_first(tmp_path: Path) -> None:
    opening = Opening(prompt=completion_prompt(TASK.prompt), path="solution.py")
    agent = code_task_model(TASK)

    def respond(request: CompletionRequest, i: int) -> str:
        if request.messages[0].content.startswith("Complete the following"):
            # greedy: the right function; sampled: a wrong one
            body = TASK.solution if request.temperature == 0 else TASK.prompt + "    return None\n"
            return f"Here it is.\n\n```python\n{body}```\n\n```python\nprint({TASK.entry_point}('ab'))\n```"
        return agent._one(request, i)

    model = ScriptedModel(respond)
    cfg = config(budget=BudgetConfig(max_nodes=8, enough_finished=1, reward_threshold=0.99))
    found = worlds(tmp_path)
    run = tmp_path / "run"
    outcome = asyncio.run(
        run_search(task=found[0].task, worlds=found, model=model, config=cfg, run_dir=run, opening=opening)
    )
    tree = RunDir(run).load_tree()
    assert tree.meta["opening"] == opening.model_dump()  # kept with the run for a resume
    first = model.requests[0]
    assert [m.role for m in first.messages] == ["user"] and first.messages[0].content == opening.prompt
    level1 = tree.children("0")
    assert level1 and all(c.meta.get("opening") for c in level1)
    right = next(c for c in level1 if "return s[::-1]" in c.step.action.args["content"])  # type: ignore[union-attr]
    # the usage example after the function is not the answer; the function block is
    assert right.step.action.tool == "write_file" and "print(" not in right.step.action.args["content"]  # type: ignore[union-attr]
    assert "2 of 2 pass" in right.step.observation.text  # type: ignore[union-attr]
    # below the root the agent's prompt is back, with the opening's write as its first step
    deeper = [r for r in model.requests if r.messages[0].content.startswith("You are a careful")]
    assert deeper
    assert any("return s[::-1]" in r.messages[2].content and r.messages[2].role == "assistant" for r in deeper)
    assert not any(c.meta.get("opening") for n in level1 for c in tree.children(n.id))
    assert "return s[::-1]" in outcome.patch  # type: ignore[attr-defined]


def test_without_an_opening_the_root_sees_the_agent_prompt(tmp_path: Path) -> None:
    model = code_task_model(TASK)
    search(tmp_path, model, config(budget=BudgetConfig(max_nodes=4)))
    assert model.requests[0].messages[0].content.startswith("You are a careful")
    tree = RunDir(tmp_path / "run").load_tree()
    assert "opening" not in tree.meta and not any(c.meta.get("opening") for c in tree.children("0"))


def judging_model() -> ScriptedModel:
    """Views solution.py, judges that view useless (No) and writes the answer, judges the write's
    result useful (Yes) and finishes; other roles answer as the code-task model does."""

    def respond(request: CompletionRequest, i: int) -> str:
        system = request.messages[0].content
        if system.startswith("You are a careful"):
            steps = sum(1 for m in request.messages if m.role == "assistant")
            if steps == 0:
                return "view_file solution.py"
            if steps == 1:
                return f"<judge>No</judge>\nWrite it.\n\nsolution.py\n```python\n{TASK.solution}```"
            return "<judge>Yes</judge>\nfinish"
        return code_task_model(TASK)._one(request, i)

    return ScriptedModel(respond)


def test_an_observation_the_solver_judged_useless_leaves_the_branch_s_prompts_not_the_tree(tmp_path: Path) -> None:
    model = judging_model()
    cfg = config(samples=1, solver={"judge": True}, budget=BudgetConfig(max_nodes=5, enough_finished=1))
    search(tmp_path, model, cfg)
    tree = RunDir(tmp_path / "run").load_tree()
    viewed, written, finished = tree.get("0.0"), tree.get("0.0.0"), tree.get("0.0.0.0")
    assert viewed.step.judge is None  # type: ignore[union-attr]
    assert written.step.judge is not None and not written.step.judge.keep  # type: ignore[union-attr]
    assert finished.step.judge is not None and finished.step.judge.keep  # type: ignore[union-attr]
    assert finished.terminal_reason == "finished"
    solver_calls = [r for r in model.requests if r.messages[0].content.startswith("You are a careful")]
    last = "\n".join(m.content for m in solver_calls[-1].messages)
    file_view = viewed.step.observation.text  # type: ignore[union-attr]
    assert "def reverse_string" in file_view  # the tree keeps the observation ...
    assert file_view not in last and DROPPED in last  # ... the next prompt leaves it out
    assert "<judge>No</judge>" in last  # with the verdict as the model gave it
    console = Console(record=True, width=200)
    console.print(TreeView(tree))
    drawn = console.export_text()
    assert "judged:dropped" in drawn and "judged:kept" in drawn
    console.print(node_detail(tree, "0.0.0"))  # what `trellis tree node` shows
    assert "No: node 0.0's observation is left out of this branch's later prompts" in console.export_text()


def test_a_code_world_with_a_reference_patch_scores_the_verdicts_on_reads(tmp_path: Path) -> None:
    """The reply after `view_file solution.py` judges it useless, but the reference patch changes that
    file: a wrong No (-0.3), kept on the finished node. The verdict on the write is not on a read."""
    from trellis.envs.code.gold import gold_evidence

    reference = "--- a/solution.py\n+++ b/solution.py\n@@ -1 +1,2 @@\n def reverse_string(s: str) -> str:\n+    pass\n"
    found = worlds(tmp_path)
    found[0].gold = gold_evidence(reference)
    cfg = config(samples=1, solver={"judge": True}, budget=BudgetConfig(max_nodes=5, enough_finished=1))
    asyncio.run(run_search(task=TASK, worlds=found, model=judging_model(), config=cfg, run_dir=tmp_path / "run"))
    finished = RunDir(tmp_path / "run").load_tree().get("0.0.0.0")
    assert finished.terminal_reason == "finished"
    assert finished.meta["judge_reward"] == {"per_step": {"2": -0.3}, "total": -0.3, "count": 1}


def test_without_a_reference_patch_no_state_is_restored_to_score_verdicts(tmp_path: Path) -> None:
    """A code world that cannot tell a useful read from a useless one is not moved to the finished
    node's state for the judge reward; with the reference patch it is, once per finished node."""
    from trellis.envs.code.gold import gold_evidence

    def restores(gold: bool, where: Path) -> list[str]:
        found = worlds(where)
        if gold:
            found[0].gold = gold_evidence("--- a/solution.py\n+++ b/solution.py\n@@ -1 +1 @@\n-x\n+y\n")
        restored: list[str] = []
        original = found[0].restore

        async def counted(state: str) -> None:
            restored.append(state)
            await original(state)

        found[0].restore = counted  # type: ignore[method-assign]
        cfg = config(samples=1, solver={"judge": True}, budget=BudgetConfig(max_nodes=5, enough_finished=1))
        asyncio.run(run_search(task=TASK, worlds=found, model=judging_model(), config=cfg, run_dir=where / "run"))
        finished = RunDir(where / "run").load_tree().get("0.0.0.0")
        assert finished.terminal_reason == "finished" and ("judge_reward" in finished.meta) == gold
        return restored

    with_gold, without = restores(True, tmp_path / "gold"), restores(False, tmp_path / "plain")
    assert len(with_gold) == len(without) + 1  # the one restore the judge reward needs


def test_a_judge_agent_of_its_own_drops_what_it_judges_useless_from_later_prompts(tmp_path: Path) -> None:
    from trellis.agents.prompts import JUDGE_SYSTEM

    def respond(request: CompletionRequest, i: int) -> str:
        system = request.messages[0].content
        if system == JUDGE_SYSTEM:  # the file view is judged useless, everything else useful
            return "No" if "view_file" in request.messages[1].content else "Yes"
        if system.startswith("You are a careful"):
            steps = sum(1 for m in request.messages if m.role == "assistant")
            if steps == 0:
                return "view_file solution.py"
            if steps == 1:
                return f"Write it.\n\nsolution.py\n```python\n{TASK.solution}```"
            return "finish"
        return code_task_model(TASK)._one(request, i)

    model = ScriptedModel(respond)
    cfg = config(samples=1, judge_agent=True, budget=BudgetConfig(max_nodes=5, enough_finished=1))
    search(tmp_path, model, cfg)
    tree = RunDir(tmp_path / "run").load_tree()
    viewed, written, finished = tree.get("0.0"), tree.get("0.0.0"), tree.get("0.0.0.0")
    assert written.step.judge is not None and not written.step.judge.keep and written.step.judge.by_agent  # type: ignore[union-attr]
    assert finished.step.judge is not None and finished.step.judge.keep  # type: ignore[union-attr]
    judge_calls = [r for r in model.requests if r.messages[0].content == JUDGE_SYSTEM]
    assert len(judge_calls) == 2 and all(r.max_tokens == 1 for r in judge_calls)
    assert viewed.usage.total_tokens > 0 and written.usage.total_tokens > 0  # the judge's calls are charged
    solver_calls = [r for r in model.requests if r.messages[0].content.startswith("You are a careful")]
    last = "\n".join(m.content for m in solver_calls[-1].messages)
    file_view = viewed.step.observation.text  # type: ignore[union-attr]
    assert file_view not in last and DROPPED in last  # the tree keeps it; the next prompt leaves it out
    assert "<judge>" not in last  # the solver's replies stay as it wrote them
    # without the judge agent, the same replies leave the file view in the prompt
    model = ScriptedModel(respond)
    search(tmp_path / "plain", model, config(samples=1, budget=BudgetConfig(max_nodes=5, enough_finished=1)))
    solver_calls = [r for r in model.requests if r.messages[0].content.startswith("You are a careful")]
    assert file_view in "\n".join(m.content for m in solver_calls[-1].messages)


def test_the_root_takes_its_own_number_of_samples(tmp_path: Path) -> None:
    model = code_task_model(TASK)
    search(tmp_path, model, config(samples=1, root_samples=3, budget=BudgetConfig(max_nodes=6)))
    solver_calls = [r for r in model.requests if r.messages[0].content.startswith("You are a careful")]
    at_root = [r for r in solver_calls if not any(m.role == "assistant" for m in r.messages)]
    deeper = [r for r in solver_calls if any(m.role == "assistant" for m in r.messages)]
    assert [(r.n, r.temperature) for r in at_root[:2]] == [(1, 0.0), (2, 0.8)]  # greedy, then two sampled
    assert deeper and all(r.n == 1 for r in deeper)


def test_a_node_expanded_again_hears_the_critic_s_advice_on_its_own_step() -> None:
    from types import SimpleNamespace

    from trellis.search.engine import hints_for

    from trellis.tree import Action, Observation, Step, Tree

    tree = Tree.new()
    step = Step(
        action=Action(tool="write_file", args={"path": "a.py", "content": "x"}), observation=Observation(text="ok")
    )
    advised = tree.add_child("0", 0, step, feedback="handle the empty string")
    failed_step = Step(
        action=Action(tool="shell", args={"command": "pytest"}), observation=Observation(text="boom", is_error=True)
    )
    restated = tree.add_child("0", 1, failed_step, feedback="running `pytest` led to: boom")
    ctx = SimpleNamespace(config=SearchConfig(reflection=False), tree=tree)
    assert hints_for(ctx, advised)[0] == "handle the empty string"  # type: ignore[arg-type]
    # what its own step ran into is its last observation already: not repeated as a note
    assert "running `pytest` led to: boom" not in hints_for(ctx, restated)  # type: ignore[arg-type]
    assert hints_for(ctx, restated) == ["handle the empty string"]  # type: ignore[arg-type]  # the sibling's


def test_hindsight_and_room_for_reflections() -> None:
    """A node expanded again hears what its own children ran into (SWE-Search's hindsight), before its
    siblings' feedback; with more feedback than room, reflections still get their share of the notes."""
    from types import SimpleNamespace

    from trellis.search.engine import hints_for

    from trellis.tree import Action, Observation, Reflection, Step, Tree

    def write(content: str) -> Step:
        return Step(
            action=Action(tool="write_file", args={"path": "a.py", "content": content}),
            observation=Observation(text="ok"),
        )

    tree = Tree.new()
    node = tree.add_child("0", 0, write("a"))
    tree.add_child("0", 1, write("b"), feedback="sibling: check the types")
    tree.add_child(node.id, 0, write("a1"), reward=0.2, feedback="child: the loop is off by one")
    tree.add_child(node.id, 1, write("a2"), reward=0.1, feedback="child: empty input raises")
    tree.reflections = [Reflection(node="0.1", lesson="lesson: read the examples first")]

    ctx = SimpleNamespace(config=SearchConfig(reflection=False, max_hints=4), tree=tree)
    hints = hints_for(ctx, tree.get(node.id))  # type: ignore[arg-type]
    # the children's feedback, worst first, then the sibling's
    assert hints == ["child: empty input raises", "child: the loop is off by one", "sibling: check the types"]

    ctx = SimpleNamespace(config=SearchConfig(reflection=True, max_hints=2), tree=tree)
    hints = hints_for(ctx, tree.get(node.id))  # type: ignore[arg-type]
    assert hints == ["child: empty input raises", "lesson: read the examples first"]  # one of two notes kept for it


def _repair_search(root: Path, **changes: object) -> tuple[ScriptedModel, object]:
    """An opening whose first answer fails the examples; a reply in the opening's conversation fixes it."""
    opening = Opening(prompt=completion_prompt(TASK.prompt), path="solution.py")
    agent = code_task_model(TASK)
    wrong = TASK.prompt + "    return s\n"

    def respond(request: CompletionRequest, i: int) -> str:
        first = request.messages[0].content
        if first.startswith("Complete the following"):
            body = wrong if len(request.messages) == 1 else TASK.solution
            return f"```python\n{body}```"
        return agent._one(request, i)

    model = ScriptedModel(respond)
    budget = BudgetConfig(max_nodes=6, enough_finished=1, reward_threshold=0.99)
    cfg = config(samples=1, budget=budget, **changes)
    found = worlds(root)
    asyncio.run(
        run_search(task=found[0].task, worlds=found, model=model, config=cfg, run_dir=root / "run", opening=opening)
    )
    return model, RunDir(root / "run").load_tree()


def test_a_failed_focused_step_is_repaired_in_the_opening_s_conversation(tmp_path: Path) -> None:
    from trellis.agents.prompts import FOCUSED_FIX
    from trellis.cli.runview import prompt_for

    model, tree = _repair_search(tmp_path)
    (opened,) = tree.children("0")  # type: ignore[attr-defined]
    assert "0 of 2 pass" in opened.step.observation.text
    focused = [r for r in model.requests if r.messages[0].content.startswith("Complete the following")]
    repair = focused[1].messages
    assert focused[0].temperature == 0 and focused[1].temperature > 0  # the opening starts greedy; repairs sample
    assert [m.role for m in repair] == ["user", "assistant", "user"]
    assert repair[0].content == completion_prompt(TASK.prompt)
    assert repair[1].content == opened.step.completion
    assert repair[2].content.startswith(opened.step.observation.text.strip()) and repair[2].content.endswith(
        FOCUSED_FIX
    )
    (repaired,) = tree.children(opened.id)  # type: ignore[attr-defined]
    assert repaired.meta.get("repair") and "return s[::-1]" in repaired.step.action.args["content"]
    assert "2 of 2 pass" in repaired.step.observation.text
    # checks pass: the agent's prompt takes over (to finish), with both focused writes as its steps
    after = [r for r in model.requests if r.messages[0].content.startswith("You are a careful")]
    assert after and sum(m.role == "assistant" for m in after[0].messages) == 2
    assert not any(c.meta.get("repair") for c in tree.children(repaired.id))  # type: ignore[attr-defined]
    view = prompt_for(tree, repaired)  # type: ignore[arg-type]
    assert view is not None and view.source == "focused repair" and view.messages == list(repair)


def test_without_focused_repair_a_failed_opening_goes_on_with_the_agent_prompt(tmp_path: Path) -> None:
    model, tree = _repair_search(tmp_path, focused_repair=False)
    solver = [r for r in model.requests if r.messages[0].role != "system" or "careful" in r.messages[0].content]
    assert len(solver) > 1 and solver[1].messages[0].content.startswith("You are a careful")
    assert not any(n.meta.get("repair") for n in tree)  # type: ignore[attr-defined]


def test_a_run_saved_before_focused_repair_resumes_without_it(tmp_path: Path) -> None:
    tree = Tree.new(config={"samples": 2})  # a configuration from before the setting existed
    assert RunDir(tmp_path).saved_config(tree).focused_repair is False
    tree = Tree.new(config={"samples": 2, "focused_repair": True})
    assert RunDir(tmp_path).saved_config(tree).focused_repair is True


def test_a_run_saved_before_partial_credit_resumes_without_it(tmp_path: Path) -> None:
    assert RunDir(tmp_path).saved_config(Tree.new(config={"samples": 2})).partial_credit == 0.0
    assert RunDir(tmp_path).saved_config(Tree.new(config={"partial_credit": 0.5})).partial_credit == 0.5


def test_the_stop_rule_waits_for_agreement_only_where_answers_were_probed() -> None:
    import time
    from types import SimpleNamespace

    from trellis.search.engine import stop_reason

    from trellis.tree import Action, Observation, Step, Usage

    def finished(tree: Tree, index: int, behaviour: str | None, reward: float = 0.84) -> None:
        observation = Observation(text="2 of 2 pass", tests={"example 1": "PASSED", "example 2": "PASSED"})
        step = Step(
            action=Action(tool="write_file", args={"path": "solution.py", "content": str(index)}),
            observation=observation,
        )
        meta: dict[str, object] = {"hard": 1.0, **({"behaviour": behaviour} if behaviour is not None else {})}
        tree.add_child(
            "0", index, step, state_id=f"s{index}", reward=reward, terminal=True, terminal_reason="finished", meta=meta
        )

    budget = BudgetConfig(max_nodes=50, enough_finished=5, reward_threshold=0.9, max_tokens=None)
    ctx = SimpleNamespace(config=SearchConfig(budget=budget), tree=None, started=time.monotonic(), usage=Usage())

    def reason(*answers: tuple[str | None, float]) -> str | None:
        tree = Tree.new()
        for index, (behaviour, reward) in enumerate(answers):
            finished(tree, index, behaviour, reward)
        ctx.tree = tree
        return stop_reason(ctx, 1)  # type: ignore[arg-type]

    assert reason(("A", 0.84), ("B", 0.84)) is None  # two answers that disagree: go on
    assert reason(("A", 0.95)) is None  # a high value does not end the wait for agreement
    assert reason(("A", 0.84), ("B", 0.84), ("A", 0.84)) == (
        "2 distinct finished candidates pass every visible check and behave alike"
    )
    assert reason((None, 0.84)) == "a finished candidate passes every visible check"  # nothing to probe with
    assert reason(("A", 0.84), (None, 0.84)) == "a finished candidate passes every visible check"
    assert reason((None, 0.95)) == "a finished candidate reached the reward threshold"
    # an answer that crashed on a probe input counts for nothing (`crash_free`), unless switched off
    tree = Tree.new()
    for index in range(2):
        finished(tree, index, "A")
    tree.get("0.0").meta["crashes"] = ["f('') raised IndexError: string index out of range"]
    ctx.tree = tree
    assert stop_reason(ctx, 1) is None  # type: ignore[arg-type]
    ctx.config = SearchConfig(budget=budget.model_copy(update={"crash_free": False}))
    assert stop_reason(ctx, 1) == "2 distinct finished candidates pass every visible check and behave alike"  # type: ignore[arg-type]
    # an answer and its own repair are one lineage: their agreement is no evidence
    ctx.config = SearchConfig(budget=budget)
    tree = Tree.new()
    finished(tree, 0, "A")
    step = tree.get("0.0").step
    assert step is not None
    repaired = step.model_copy(
        update={"action": Action(tool="write_file", args={"path": "solution.py", "content": "r"})}
    )
    meta: dict[str, object] = {"hard": 1.0, "behaviour": "A", "repair": True}
    tree.add_child(
        "0.0", 0, repaired, state_id="s-r", reward=0.84, terminal=True, terminal_reason="finished", meta=meta
    )
    ctx.tree = tree
    assert stop_reason(ctx, 1) is None  # type: ignore[arg-type]
    # three finished answers that disagree do not end the wait either (`enough_finished` is for the unprobed)
    assert reason(("A", 0.84), ("B", 0.84), ("C", 0.84), ("D", 0.84), ("E", 0.84)) is None


HALF = "def reverse_string(s: str) -> str:\n    return s[::-1] if ' ' in s else s\n"  # one example of two


@pytest.mark.parametrize("by_yield", [True, False])
def test_by_yield_the_budget_turns_from_failing_repairs_to_fresh_samples(tmp_path: Path, by_yield: bool) -> None:
    """Every repair rewrites the failing answer without fixing it; the root's second expansion finds
    the answer. Going by yield, the search returns to the root after one round of repairs; by the
    selector's widening score, it repairs every child first."""
    opening = Opening(prompt=completion_prompt(TASK.prompt), path="solution.py")

    def respond(request: CompletionRequest, i: int) -> str:
        calls = len(model.requests)
        if any(m.role == "assistant" for m in request.messages):  # a focused repair
            return f"```python\n# repair {calls}.{i}\n{HALF}```"
        # the root's first expansion is two calls (greedy, then sampled); its next one finds the answer
        fresh = sum(1 for r in model.requests if not any(m.role == "assistant" for m in r.messages))
        return f"```python\n{TASK.solution if fresh > 2 else f'# sample {calls}.{i}' + chr(10) + HALF}```"

    model = ScriptedModel(respond)
    budget = BudgetConfig(max_nodes=12, max_expansions_per_node=3, widen_after=2, agreement=1)
    cfg = SearchConfig(
        samples=2, root_samples=2, budget=budget, critic={"mode": "none"}, allocate_by_yield=by_yield, reflection=False
    )
    found = worlds(tmp_path)
    outcome = asyncio.run(
        run_search(task=TASK, worlds=found, model=model, config=cfg, run_dir=tmp_path / "run", opening=opening)
    )
    tree = RunDir(tmp_path / "run").load_tree()
    repairs = [n for n in tree if n.meta.get("repair")]
    # by yield, one round of repairs (a repair not yet tried is worth one), then fresh samples; by
    # the widening score, every child of the root is repaired before the root is sampled again
    assert len(repairs) == (2 if by_yield else 4)
    assert len(tree.root.expansions) == 2
    assert outcome.stop_reason == "a finished candidate passes every visible check"  # type: ignore[attr-defined]
    assert "return s[::-1]\n" in outcome.patch  # type: ignore[attr-defined]


SLUG = 'import re\n\n\ndef slug(t):\n    return re.sub(r"[^a-z]", "-", t.lower())\n'
SLUG_ANSWERS = {  # what each root sample writes, and what `tk.slug('Hi,  you!')` then returns
    0: SLUG.replace("t.lower())", "t.lower()).lower()"),  # 'hi---you-': no nearer
    1: SLUG.replace('"[^a-z]"', '"[^a-z]+"'),  # 'hi-you-': most of the way to 'hi-you'
    2: SLUG.replace('"-"', '"_"'),  # 'hi___you_': further away
}


def _slug_search(root: Path, partial_credit: float) -> Tree:
    from trellis.envs.code.reproduce import issue_checks
    from trellis.envs.code.workspace import init_repository
    from trellis.envs.code.world import CodeWorld

    init_repository(root / "repo", {"tk/__init__.py": SLUG})
    issue = "`tk.slug('Hi,  you!')` returns 'hi---you-' but should return 'hi-you'."
    world = CodeWorld(BwrapSandbox(root / "repo"), task=issue, issue_checks=issue_checks(issue))

    openings = iter(SLUG_ANSWERS.values())

    def respond(request: CompletionRequest, i: int) -> str:
        if not any(m.role == "assistant" for m in request.messages):  # the root's samples, in order
            return f"Change it.\n\ntk/__init__.py\n```python\n{next(openings)}```"
        return "Done.\n\nfinish"

    settings = SearchConfig(
        root_samples=3,
        samples=1,
        critic={"mode": "none"},
        feedback=False,
        reflection=False,
        partial_credit=partial_credit,
        budget=BudgetConfig(max_nodes=5, max_expansions_per_node=1, stop_when_checked=False),
    )
    model = ScriptedModel(respond)
    asyncio.run(run_search(task=issue, worlds=[world], model=model, config=settings, run_dir=root / "run"))
    return RunDir(root / "run").load_tree()


def test_an_answer_nearer_to_passing_is_valued_higher_and_expanded_first(tmp_path: Path) -> None:
    tree = _slug_search(tmp_path / "on", partial_credit=0.5)
    unchanged, nearer, further = (tree.get(f"0.{i}") for i in range(3))
    assert nearer.step.observation.progress and not unchanged.step.observation.progress
    assert not further.step.observation.progress
    assert 0 < nearer.meta["hard"] < 1 and unchanged.meta["hard"] == further.meta["hard"] == 0.0
    assert nearer.reward > unchanged.reward == further.reward
    assert [n.parent_id for n in tree if n.depth == 2] == ["0.1"]  # the next expansion goes to it
    # without partial credit the three are alike, and the first of them is expanded
    off = _slug_search(tmp_path / "off", partial_credit=0.0)
    assert off.get("0.1").reward == off.get("0.0").reward
    assert [n.parent_id for n in off if n.depth == 2] == ["0.0"]


def test_partial_credit_counts_a_failing_checks_progress_only_in_a_step_that_did_not_fail() -> None:
    from trellis.search.engine import _signals

    from trellis.tree import Action, Observation, Step

    tree = Tree.new()
    tests = {"issue: a": "FAILED", "issue: b": "PASSED"}
    for index, is_error in enumerate((False, True)):
        observation = Observation(text="ran", tests=tests, progress={"issue: a": 0.6}, is_error=is_error)
        tree.add_child("0", index, Step(action=Action(tool="run_tests", args={}), observation=observation))
    moved, failed = tree.get("0.0"), tree.get("0.1")
    assert _signals(moved, 0.5)[1] == pytest.approx((1 + 0.5 * 0.6) / 2)
    assert _signals(moved, 0.0)[1] == 0.5  # switched off: the share of checks that pass
    assert _signals(failed, 0.5)[1] == 0.5


def test_without_a_finished_answer_a_state_that_failed_every_check_is_not_submitted(tmp_path: Path) -> None:
    """The fallback takes the best changed state, but never one whose checks all failed: no patch is
    better than one that breaks every visible example, however a neutral critic valued it."""
    inner = code_task_model(TASK)
    partly = "    return s[::-1] if len(s) > 1 else None\n"  # reverses, but turns "" and "a" into None

    def respond(wrong: str, request: CompletionRequest, i: int) -> str:
        system = request.messages[0].content
        if system.startswith(("You check", "You review", "An attempt")):
            return inner._fn(request, i)  # type: ignore[misc]
        # an answer that never finishes: one fix, then looking at it again and again
        if not any(m.role == "assistant" for m in request.messages[1:]):
            return f"Write it.\n\nsolution.py\n```python\n{TASK.prompt}{wrong}```"
        return "Look again.\n\nview_file solution.py"

    budget = BudgetConfig(max_nodes=4, max_iterations=4)
    settings = config(budget=budget, samples=1, root_samples=1, critic={"mode": "none"})
    outcome = search(tmp_path / "wrong", ScriptedModel(lambda r, i: respond("    return None\n", r, i)), settings)
    tree = RunDir(tmp_path / "wrong" / "run").load_tree()
    written = tree.get("0.0")
    assert written.state_id != tree.root.state_id and written.step.observation.tests  # it changed and was checked
    assert not any(n.terminal_reason == "finished" for n in tree)
    assert outcome.final_node is None and outcome.patch == ""  # type: ignore[attr-defined]
    assert "failed all the checks" in tree.decision["reason"]
    # a state that passes some of its checks is still the fallback's answer
    outcome = search(tmp_path / "partly", ScriptedModel(lambda r, i: respond(partly, r, i)), settings)
    assert outcome.final_node is not None and "s[::-1]" in outcome.patch  # type: ignore[attr-defined]


def test_a_change_that_broke_a_few_tests_next_to_it_may_still_be_the_fallback_answer() -> None:
    """Where the only checks were tests the change broke, it is worse than nothing once it broke at
    least half of those that passed before; one broken test of many may assert the old behaviour.
    A failing check of the issue's own makes any state's failure count; skipped tests are no failure."""
    from trellis.search.engine import _worse_than_nothing

    from trellis.tree import Node, Observation, Step

    def node(tests: dict[str, str], broken: int | None = None, before: int = 0, imports: int = 0) -> Node:
        nearby = {"broken": broken, "passed_before": before, "broken_imports": imports}
        data = {"nearby": nearby} if broken is not None else {}
        return Node(id="0.0", parent_id="0", step=Step(observation=Observation(text="", tests=tests, data=data)))

    one = {"regression: t1": "FAILED"}
    many = {f"regression: t{i}": "FAILED" for i in range(6)}
    assert not _worse_than_nothing(node(one, 1, 337))
    assert _worse_than_nothing(node(many, 6, 10)) and _worse_than_nothing(node(one, 1, 1))
    assert _worse_than_nothing(node({**one, "issue: add(2, 3)": "FAILED"}, 1, 337))
    assert not _worse_than_nothing(node({**one, "issue: add(2, 3)": "PASSED"}, 1, 1))
    assert _worse_than_nothing(node({"example 1": "FAILED"})) and not _worse_than_nothing(node({"x": "SKIPPED"}))
    assert not _worse_than_nothing(node({}))
    assert _worse_than_nothing(node({"regression: import pkg.mod": "FAILED"}, 0, 337, imports=1))
    assert _worse_than_nothing(node({"regression: import pkg.mod": "FAILED", "issue: f()": "PASSED"}, 0, 0, 1))
