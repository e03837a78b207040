"""The solver: both action formats, greedy first samples, retries of malformed and repeated output,
and transient model errors."""

from __future__ import annotations

import json

import pytest
from trellis.agents.solver import Solver, SolverConfig
from trellis.envs.code.tools import CODE_TOOLS

from trellis.errors import ModelError
from trellis.models import CompletionRequest, ScriptedModel
from trellis.tree import Action, Observation, Step, Tree

TOOLS = [CODE_TOOLS[name][0] for name in ("view_file", "write_file", "replace", "shell", "run_tests", "finish")]


def empty() -> object:
    return Tree.new().path("0")


async def test_markdown_is_the_default_format() -> None:
    model = ScriptedModel(["Write it.\n\nsolution.py\n```python\nx = 1\n```"])
    (proposal,) = await Solver(model)("task", TOOLS, empty(), n=1)  # type: ignore[arg-type]
    assert proposal.action == Action(
        tool="write_file", args={"path": "solution.py", "content": "x = 1\n"}, thought="Write it."
    )
    system = model.requests[0].messages[0].content
    assert "<<<<<<< SEARCH" in system and "view_file PATH [START] [END]" in system
    assert model.requests[0].json_schema is None  # no grammar: code is not squeezed into JSON


async def test_a_block_without_path_goes_to_the_default_file() -> None:
    model = ScriptedModel(["```python\ndef f():\n    return 1\n```"])
    (proposal,) = await Solver(model)("task", TOOLS, empty(), n=1, default_path="solution.py")  # type: ignore[arg-type]
    assert proposal.action is not None and proposal.action.args["path"] == "solution.py"


async def test_json_format_with_schema() -> None:
    reply = json.dumps({"thought": "t", "tool": "view_file", "args": {"path": "a.py"}})
    model = ScriptedModel([reply])
    solver = Solver(model, SolverConfig(action_format="json"))
    (proposal,) = await solver("task", TOOLS, empty(), n=1)  # type: ignore[arg-type]
    assert proposal.action is not None and proposal.action.tool == "view_file"
    assert model.requests[0].json_schema is not None
    assert "Reply with exactly one JSON object" in model.requests[0].messages[0].content


async def test_the_first_sample_is_greedy_the_rest_sampled() -> None:
    model = ScriptedModel(["finish", "finish", "finish"])
    await Solver(model, SolverConfig(temperature=0.8))("task", TOOLS, empty(), n=3, seed=5)  # type: ignore[arg-type]
    assert [(r.n, r.temperature) for r in model.requests] == [(1, 0.0), (2, 0.8)]
    model = ScriptedModel(["finish", "finish"])
    await Solver(model, SolverConfig(temperature=0.8))("t", TOOLS, empty(), n=2, greedy=False)  # type: ignore[arg-type]
    assert [(r.n, r.temperature) for r in model.requests] == [(2, 0.8)]


async def test_malformed_output_is_retried_with_the_error() -> None:
    model = ScriptedModel(["I am not sure.", "finish"])
    (proposal,) = await Solver(model, SolverConfig(greedy_first=False))("task", TOOLS, empty(), n=1)  # type: ignore[arg-type]
    assert proposal.action is not None and proposal.action.tool == "finish"
    retry = model.requests[1].messages
    assert retry[-2].content == "I am not sure." and "no action found" in retry[-1].content
    assert proposal.usage.calls == 2


async def test_a_repeat_of_the_last_action_is_retried() -> None:
    tree = Tree.new()
    viewed = Action(tool="view_file", args={"path": "a.py", "start": 1, "end": None})
    child = tree.add_child("0", 0, Step(action=viewed, observation=Observation(text="1 x = 1")))
    model = ScriptedModel(["view_file a.py", "finish"])
    solver = Solver(model, SolverConfig(greedy_first=False))
    (proposal,) = await solver("task", TOOLS, tree.path(child.id), n=1, avoid=[viewed.key()])
    assert proposal.action is not None and proposal.action.tool == "finish"
    assert "repeating it changes nothing" in model.requests[1].messages[-1].content


async def test_transient_model_errors_are_retried_then_raised() -> None:
    calls = {"n": 0}

    def flaky(request: CompletionRequest, i: int) -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ModelError("server busy")
        return "finish"

    (proposal,) = await Solver(ScriptedModel(flaky), SolverConfig(model_retries=2))("t", TOOLS, empty(), n=1)  # type: ignore[arg-type]
    assert proposal.action is not None and calls["n"] == 3

    def down(request: CompletionRequest, i: int) -> str:
        raise ModelError("server down")

    with pytest.raises(ModelError, match="server down"):
        await Solver(ScriptedModel(down), SolverConfig(model_retries=1))("t", TOOLS, empty(), n=1)  # type: ignore[arg-type]


async def test_a_format_retry_that_meets_a_transient_error_is_retried() -> None:
    replies = iter(["no action here", ModelError("server busy"), "finish"])

    def script(request: CompletionRequest, i: int) -> str:
        reply = next(replies)
        if isinstance(reply, ModelError):
            raise reply
        return reply

    solver = Solver(ScriptedModel(script), SolverConfig(model_retries=2, retries=1))  # type: ignore[arg-type]
    (proposal,) = await solver("t", TOOLS, empty(), n=1)
    assert proposal.action is not None and proposal.action.tool == "finish" and proposal.error is None

    def down_on_retry(request: CompletionRequest, i: int) -> str:
        if len(request.messages) > 2:  # the retry turn
            raise ModelError("server down")
        return "no action here"

    solver = Solver(ScriptedModel(down_on_retry), SolverConfig(model_retries=1, retries=1))  # type: ignore[arg-type]
    (proposal,) = await solver("t", TOOLS, empty(), n=1)
    assert proposal.action is None and proposal.error is not None and "retry failed: server down" in proposal.error


async def test_hints_come_last() -> None:
    tree = Tree.new()
    step = Step(action=Action(tool="view_file", args={"path": "a.py"}), observation=Observation(text="CONTENT"))
    child = tree.add_child("0", 0, step)
    model = ScriptedModel(["finish"])
    await Solver(model)("task", TOOLS, tree.path(child.id), n=1, hints=["try the edge case"])
    last = model.requests[0].messages[-1].content
    assert last == "Observation:\nCONTENT\n\nNotes from other attempts:\n- try the edge case"
    assert model.requests[0].messages[-2].content == "view_file a.py"


async def test_an_opening_asks_its_prompt_alone_and_writes_the_code_to_its_path() -> None:
    from trellis.world import Opening

    model = ScriptedModel(
        ["```python\ndef f():\n    return 1\n```", "No idea.", "```python\ndef f():\n    return 2\n```"]
    )
    opening = Opening(prompt="Complete f.", path="pkg/f.py")
    solver = Solver(model, SolverConfig(temperature=0.8, keep_prompts=True))
    first, unusable, other = await solver.open(opening, TOOLS, n=3, seed=1)
    assert [(r.n, r.temperature) for r in model.requests] == [(1, 0.0), (2, 0.8)]  # greedy first
    assert [m.content for m in model.requests[0].messages] == ["Complete f."]  # no system prompt, no tools
    assert first.action == Action(tool="write_file", args={"path": "pkg/f.py", "content": "def f():\n    return 1\n"})
    assert unusable.action is None and "no code found" in (unusable.error or "") and unusable.usage.calls == 1
    assert other.action is not None and "return 2" in other.action.args["content"]
    assert first.prompt is not None and first.prompt[0].content == "Complete f."
    model = ScriptedModel(["```python\nx = 1\n```"])
    await Solver(model, SolverConfig(temperature=0.8)).open(opening, TOOLS, n=1, greedy=False)
    assert [(r.n, r.temperature) for r in model.requests] == [(1, 0.8)]


def _searched(*observations: str, verdicts: tuple[bool | None, ...] = ()) -> object:
    """A trajectory of shell steps with the given observations; verdicts go on the steps after the first."""
    from trellis.tree import JudgeVerdict

    tree = Tree.new()
    parent = "0"
    for i, text in enumerate(observations):
        verdict = verdicts[i - 1] if 0 < i <= len(verdicts) else None
        step = Step(
            action=Action(tool="shell", args={"command": f"grep -rn thing{i} ."}),
            observation=Observation(text=text),
            judge=None if verdict is None else JudgeVerdict(keep=verdict),
        )
        parent = tree.add_child(parent, 0, step).id
    return tree.path(parent)


async def test_judging_asks_for_a_verdict_and_reads_it_apart_from_the_action() -> None:
    model = ScriptedModel(["<judge>No</judge>\nNothing there.\n\n```bash\ngrep -rn other .\n```"])
    solver = Solver(model, SolverConfig(judge=True))
    (proposal,) = await solver("task", TOOLS, _searched("a.py:1: noise"), n=1)  # type: ignore[arg-type]
    assert proposal.judge is False
    assert proposal.action is not None and proposal.action.thought == "Nothing there."
    assert proposal.action.args["command"] == "grep -rn other ."
    asked = model.requests[0].messages
    assert asked[-1].content.startswith("Observation:\na.py:1: noise") and "<judge>Yes</judge>" in asked[-1].content
    assert "<judge>" not in asked[0].content  # asked after the observation, not in the instructions
    # before any observation there is nothing to judge, and nothing asks for a verdict
    model = ScriptedModel(["<judge>Yes</judge>\nfinish"])
    (first,) = await Solver(model, SolverConfig(judge=True))("task", TOOLS, empty(), n=1)  # type: ignore[arg-type]
    assert first.judge is None and first.action == Action(tool="finish")
    assert all("<judge>" not in m.content for m in model.requests[0].messages)
    # without judging, a tag is text and no verdict is read
    model = ScriptedModel(["<judge>No</judge>\nfinish"])
    (plain,) = await Solver(model)("task", TOOLS, _searched("x"), n=1)  # type: ignore[arg-type]
    assert plain.judge is None and "<judge>" not in model.requests[0].messages[0].content


async def test_a_verdict_in_a_reply_without_an_action_counts_after_the_retry() -> None:
    """The 0.5B model, asked for a verdict, often replies with the bare word and no action."""
    model = ScriptedModel(["No", "view_file b.py"])
    solver = Solver(model, SolverConfig(judge=True))
    (proposal,) = await solver("task", TOOLS, _searched("a.py:1: noise"), n=1)  # type: ignore[arg-type]
    assert proposal.action is not None and proposal.action.args["path"] == "b.py"
    assert proposal.judge is False and len(model.requests) == 2  # one retry, the verdict kept


async def test_judging_in_the_json_format() -> None:
    reply = json.dumps({"judge": "No", "thought": "t", "tool": "finish", "args": {}})
    model = ScriptedModel([reply])
    solver = Solver(model, SolverConfig(action_format="json", judge=True))
    (proposal,) = await solver("task", TOOLS, _searched("noise"), n=1)  # type: ignore[arg-type]
    assert proposal.judge is False and proposal.action is not None and proposal.action.tool == "finish"
    schema = model.requests[0].json_schema
    assert schema is not None and '"judge": {"enum": ["Yes", "No"]}' in json.dumps(schema)


def test_an_observation_judged_useless_leaves_later_prompts() -> None:
    from trellis.agents.prompts import DROPPED, JUDGE_HELP, solver_messages

    trajectory = _searched("a.py:3: NOISE-XYZ", "b.py:9: the answer", "c.py:1: latest", verdicts=(False, True))
    messages = solver_messages("task", TOOLS, trajectory, judge=True)  # type: ignore[arg-type]
    text = "\n".join(m.content for m in messages)
    assert "NOISE-XYZ" not in text and DROPPED in text  # step 1's observation, judged No by step 2
    assert "the answer" in text and "latest" in text  # judged Yes; the last one is not judged yet
    # each observation kept asks for its verdict; the dropped one's stub does not
    observations = [m.content for m in messages if m.role == "user"][1:]
    assert [JUDGE_HELP in o for o in observations] == [False, True, True]
    # each reply is shown with its verdict, as the model gave it
    replies = [m.content for m in messages if m.role == "assistant"]
    assert replies[1].startswith("<judge>No</judge>") and replies[2].startswith("<judge>Yes</judge>")
    assert not replies[0].startswith("<judge>")
    # the tree keeps what the prompt leaves out
    assert trajectory.steps[0].observation.text == "a.py:3: NOISE-XYZ"  # type: ignore[attr-defined]
