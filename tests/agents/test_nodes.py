"""Each role as a LangGraph node of its own, in a graph that keeps its own state."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from trellis.agents import Critic, CriticConfig, Discriminator, Reflector, Solver
from trellis.agents.critic import Evaluation
from trellis.agents.discriminator import Candidate
from trellis.agents.judge import Judge
from trellis.agents.nodes import (
    RoleState,
    discriminator_node,
    judge_node,
    reflector_node,
    solver_node,
    value_node,
)
from trellis.agents.prompts import JUDGE_SYSTEM
from trellis.agents.roles import ValueRole
from trellis.envs.code.tools import CODE_TOOLS

from trellis.models import CompletionRequest, ScriptedModel
from trellis.tree import Action, Observation, Step, Trajectory, Tree, Usage
from trellis.world import Opening

TOOLS = [CODE_TOOLS[name][0] for name in ("write_file", "finish")]


def respond(request: CompletionRequest, i: int) -> str:
    first = request.messages[0].content
    if first == JUDGE_SYSTEM:
        return "Yes"
    if "Complete the following" in first:
        return "```python\ndef add(a, b):\n    return a + b\n```"
    if "review" in first:  # the critic's JSON verdict
        return '{"explanation": "adds", "score": 80, "feedback": "check negative numbers"}'
    if "lesson" in first.lower() or "went wrong" in first.lower():
        return "Run the examples before finishing."
    return "finish"


def observed() -> Trajectory:
    tree = Tree.new()
    action = Action(tool="write_file", args={"path": "add.py", "content": "def add(a, b):\n    return a + b\n"})
    child = tree.add_child("0", 0, Step(action=action, observation=Observation(text="wrote add.py")))
    return tree.path(child.id)


async def test_roles_compose_into_a_graph_of_their_own() -> None:
    model = ScriptedModel(respond)
    opening = Opening(prompt="Complete the following Python function.\n\ndef add(a, b): ...", path="add.py")
    graph = StateGraph(RoleState)
    graph.add_node("solve", solver_node(Solver(model), n=2, opening=opening))
    graph.add_node("judge", judge_node(Judge(model)))
    graph.add_node("value", value_node(Critic(model, CriticConfig(mode="score"))))
    graph.add_node("reflect", reflector_node(Reflector(model)))
    graph.add_edge(START, "solve")
    graph.add_edge("solve", "judge")
    graph.add_edge("judge", "value")
    graph.add_edge("value", "reflect")
    graph.add_edge("reflect", END)
    state = await graph.compile().ainvoke(
        {"task": "make add add", "tools": TOOLS, "trajectory": Tree.new().path("0"), "usage": Usage()}
    )
    proposals = state["proposals"]
    assert len(proposals) == 2 and all(p.action is not None and p.action.tool == "write_file" for p in proposals)
    assert "return a + b" in proposals[0].action.args["content"]  # type: ignore[union-attr]
    assert state["evaluation"].value > 0.5
    assert state["lesson"]
    # usage adds up over the nodes: every model call is counted once
    assert state["verdict"] is None  # nothing observed yet: the judge abstains without a call
    assert state["usage"].calls == len(model.requests) == 4  # two openings, the critic, the reflector


class LengthCritic:
    """A user's own value role: shorter changes are better."""

    async def __call__(self, task: str, trajectory: Trajectory, **_: object) -> Evaluation:
        size = sum(len(str(s.action.args)) for s in trajectory.steps if s.action)
        return Evaluation(value=max(0.0, 1.0 - size / 1000), explanation=f"{size} characters")


async def test_a_role_of_your_own_takes_the_place_of_the_shipped_agent() -> None:
    critic = LengthCritic()
    assert isinstance(critic, ValueRole)
    graph = StateGraph(RoleState)
    graph.add_node("value", value_node(critic))
    graph.add_node("judge", judge_node(Judge(ScriptedModel(lambda r, i: "No"))))
    graph.add_node("decide", discriminator_node(Discriminator(ScriptedModel(respond))))
    graph.add_edge(START, "value")
    graph.add_edge("value", "judge")
    graph.add_edge("judge", "decide")
    graph.add_edge("decide", END)
    candidates = [Candidate(node_id="a", answer="x", reward=0.2), Candidate(node_id="b", answer="y", reward=0.9)]
    state = await graph.compile().ainvoke(
        {"task": "t", "trajectory": observed(), "candidates": candidates, "usage": Usage()}
    )
    assert "characters" in state["evaluation"].explanation and 0 < state["evaluation"].value < 1
    assert state["verdict"] is False
    assert state["decision"].node_id == "b"
