"""Prompt layouts of the agent roles.

The solver's prompt for a node is its parent's prompt plus the parent's step (the action as the
assistant said it, the observation as the user's reply), so a model with a prefix cache only
evaluates the new tokens. Hints (critic feedback, reflections) go at the very end, where they
cost nothing to the shared prefix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from trellis.tools import ToolSpec, action_format_help
from trellis.tree import Message, Trajectory

SOLVER_SYSTEM = (
    "You are a careful software engineer working in a repository through tools. "
    "Take one small step at a time: look before you edit, keep edits minimal, and check your change. "
    "When the task is done, call finish; if your approach cannot work, call reject."
)
MAX_OBSERVATION_CHARS = 2500


def action_text(thought: str, tool: str, args: dict[str, object]) -> str:
    """The canonical form of an action in the transcript (what the model is shown it said)."""
    return json.dumps({"thought": thought, "tool": tool, "args": args}, ensure_ascii=False)


def solver_messages(
    task: str, tools: Sequence[ToolSpec], trajectory: Trajectory, hints: Sequence[str] = ()
) -> list[Message]:
    """The solver's chat for the node at the end of `trajectory`."""
    messages = [
        Message(role="system", content=f"{SOLVER_SYSTEM}\n\n{action_format_help(tools)}"),
        Message(role="user", content=f"Task:\n{task}"),
    ]
    for step in trajectory.steps:
        if step.action is not None:
            messages.append(
                Message(role="assistant", content=action_text(step.action.thought, step.action.tool, step.action.args))
            )
        else:
            messages.append(Message(role="assistant", content=step.completion[:500]))
        if step.judge is not None and not step.judge.keep:
            text = f"(observation dropped: {step.judge.reason})"
        elif step.observation is not None:
            text = step.observation.text
        else:
            text = f"Error: {step.error}"
        if len(text) > MAX_OBSERVATION_CHARS:
            text = text[: MAX_OBSERVATION_CHARS // 2] + "\n[...]\n" + text[-MAX_OBSERVATION_CHARS // 2 :]
        messages.append(Message(role="user", content=f"Observation:\n{text}"))
    if hints:
        notes = "\n".join(f"- {hint}" for hint in hints)
        last = messages[-1]
        messages[-1] = Message(role=last.role, content=f"{last.content}\n\nNotes from other attempts:\n{notes}")
    return messages


def trajectory_summary(trajectory: Trajectory, limit: int = 6, chars: int = 600) -> str:
    """The last steps of a trajectory as plain text, for the critic and the reflection agent."""
    lines = []
    steps = trajectory.steps[-limit:]
    skipped = len(trajectory.steps) - len(steps)
    if skipped:
        lines.append(f"({skipped} earlier steps not shown)")
    for i, step in enumerate(steps, skipped + 1):
        action = step.action.summary(120) if step.action else f"(unparsable output: {step.error})"
        observation = step.observation.text if step.observation else ""
        if len(observation) > chars:
            observation = observation[: chars // 2] + " [...] " + observation[-chars // 2 :]
        lines.append(f"Step {i}: {action}\nResult: {observation}")
    return "\n".join(lines) or "(no steps yet)"


CRITIC_SYSTEM = (
    "You review an engineer's progress on a task. Judge whether the latest step moves the work toward a "
    "correct solution. Answer with JSON: "
    '{"explanation": "...", "score": <integer from -100 (clearly wrong) to 100 (clearly right)>, '
    '"feedback": "advice for the next attempt"}.'
)

CRITIC_SCHEMA = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string", "maxLength": 300},
        "score": {"type": "integer", "minimum": -100, "maximum": 100},
        "feedback": {"type": "string", "maxLength": 200},
    },
    "required": ["explanation", "score", "feedback"],
    "additionalProperties": False,
}


def critic_messages(task: str, trajectory: Trajectory, signals: Sequence[str]) -> list[Message]:
    facts = "\n".join(f"- {s}" for s in signals) or "- none"
    return [
        Message(role="system", content=CRITIC_SYSTEM),
        Message(
            role="user",
            content=f"Task:\n{task}\n\nSteps so far:\n{trajectory_summary(trajectory)}\n\n"
            f"Checked facts:\n{facts}\n\nScore the latest step.",
        ),
    ]


REFLECTION_SYSTEM = (
    "An attempt at a task failed. In one or two sentences, state the lesson a later attempt should use: "
    "what went wrong and what to do instead. Reply with the lesson only."
)


def reflection_messages(task: str, trajectory: Trajectory, outcome: str) -> list[Message]:
    return [
        Message(role="system", content=REFLECTION_SYSTEM),
        Message(
            role="user", content=f"Task:\n{task}\n\nAttempt:\n{trajectory_summary(trajectory)}\n\nOutcome: {outcome}"
        ),
    ]


DEBATE_SYSTEM = (
    "You are one of several reviewers choosing the best candidate solution for a task. Candidates are "
    "numbered. Argue briefly for the one you believe is correct, answering the other reviewers' points. "
    'End with JSON: {"choice": <candidate number>, "reason": "..."}.'
)


def debate_messages(
    task: str, candidates: Sequence[str], transcript: Sequence[tuple[str, str]], agent: int
) -> list[Message]:
    listing = "\n\n".join(f"Candidate {i}:\n{text}" for i, text in enumerate(candidates))
    history = "\n\n".join(f"{speaker}: {text}" for speaker, text in transcript) or "(nobody has spoken yet)"
    return [
        Message(role="system", content=DEBATE_SYSTEM),
        Message(
            role="user",
            content=f"Task:\n{task}\n\n{listing}\n\nDiscussion so far:\n{history}\n\n"
            f"You are reviewer {agent}. Give your argument and choice.",
        ),
    ]
