"""Prompt layouts of the agent roles.

The solver's prompt for a node is its parent's prompt plus the parent's step (the action as the
assistant said it, the observation as the user's reply), so a model with a prefix cache only
evaluates the new tokens. Hints (critic feedback, reflections) go at the very end, where they
cost nothing to the shared prefix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from trellis.markdown import markdown_format_help, render_markdown_action
from trellis.tools import ToolSpec, action_format_help
from trellis.tree import JudgeVerdict, Message, Step, Trajectory

SOLVER_SYSTEM = (
    "You are a careful software engineer working in a repository. "
    "Work one step at a time: change the code, check the result, and finish when the task is done; "
    "if your approach cannot work, reject it."
)
MAX_OBSERVATION_CHARS = 2500
ActionFormat = Literal["markdown", "json"]


def action_text(thought: str, tool: str, args: dict[str, object], judge: str | None = None) -> str:
    """The canonical JSON form of an action in the transcript (what the model is shown it said)."""
    said: dict[str, object] = {"thought": thought, "tool": tool, "args": args}
    if judge is not None:
        said = {"judge": judge, **said}
    return json.dumps(said, ensure_ascii=False)


# The judge's request, asked right after each observation, not in the instructions: a small model told
# up front to judge answers its first turn, before anything came back, with a verdict instead of an action.
JUDGE_HELP = (
    "Begin your reply with <judge>Yes</judge> if what came back is useful for the task, or <judge>No</judge> if "
    "it is not (then it is left out of what you see from now on); then your thought and your next action."
)
JUDGE_HELP_JSON = (
    'Put "judge": "Yes" in your JSON object if what came back is useful for the task, or "judge": "No" if it is '
    "not (then it is left out of what you see from now on), beside your thought and your next action."
)
DROPPED = "(observation left out: judged not useful)"


def _verdict(step: Step) -> str | None:
    """The verdict the reply wrote itself (a judge agent's verdict is not part of what the solver said)."""
    if step.judge is None or step.judge.by_agent:
        return None
    return "Yes" if step.judge.keep else "No"


def _said(step: Step, action_format: ActionFormat, tools: Sequence[ToolSpec] = ()) -> str:
    action = step.action
    if action is None:
        return step.completion[:500]
    verdict = _verdict(step)
    if action_format == "markdown":
        said = render_markdown_action(action, tools)
        return f"<judge>{verdict}</judge>\n{said}" if verdict else said
    return action_text(action.thought, action.tool, action.args, verdict)


def observation_text(step: Step, verdict: JudgeVerdict | None = None) -> str:
    """What the model sees of a step's outcome: a stub when the next step's reply (`verdict`) judged it
    useless (ReSeek), else the observation, cut to `MAX_OBSERVATION_CHARS`."""
    if verdict is not None and not verdict.keep:
        return DROPPED
    text = step.observation.text if step.observation is not None else f"Error: {step.error}"
    if len(text) > MAX_OBSERVATION_CHARS:
        text = text[: MAX_OBSERVATION_CHARS // 2] + "\n[...]\n" + text[-MAX_OBSERVATION_CHARS // 2 :]
    return text


def solver_messages(
    task: str,
    tools: Sequence[ToolSpec],
    trajectory: Trajectory,
    hints: Sequence[str] = (),
    *,
    action_format: ActionFormat = "markdown",
    default_path: str | None = None,
    judge: bool = False,
    system: str | None = None,
) -> list[Message]:
    """The solver's chat for the node at the end of `trajectory`.

    Each earlier step is the action as the assistant said it (in the chosen format, with its verdict
    on the observation before it) and the observation as the user's reply, or a stub where the next
    reply judged it useless; hints come last, where they cost the shared prefix nothing. With `judge`,
    each observation ends by asking for a verdict on it (`JUDGE_HELP`). `system`: the role line (default: a
    software engineer's, `SOLVER_SYSTEM`).
    """
    if action_format == "markdown":
        help_text = markdown_format_help(tools, example_path=default_path or "path/to/file.py")
    else:
        help_text = action_format_help(tools)
    ask = f"\n\n{JUDGE_HELP if action_format == 'markdown' else JUDGE_HELP_JSON}" if judge else ""
    messages = [
        Message(role="system", content=f"{system or SOLVER_SYSTEM}\n\n{help_text}"),
        Message(role="user", content=f"Task:\n{task}"),
    ]
    steps = trajectory.steps
    for i, step in enumerate(steps):
        messages.append(Message(role="assistant", content=_said(step, action_format, tools)))
        verdict = steps[i + 1].judge if i + 1 < len(steps) else None
        dropped = verdict is not None and not verdict.keep
        said = f"Observation:\n{observation_text(step, verdict)}{'' if dropped else ask}"
        messages.append(Message(role="user", content=said))
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
        action = step.action.describe(120) if step.action else f"(unparsable output: {step.error})"
        observation = step.observation.text if step.observation else ""
        if len(observation) > chars:
            observation = observation[: chars // 2] + " [...] " + observation[-chars // 2 :]
        lines.append(f"Step {i}: {action}\nResult: {observation}")
    return "\n".join(lines) or "(no steps yet)"


REPAIR_PROMPT = (
    "Issue:\n{issue}\n\nThe code the issue concerns ({path}):\n```python\n{code}\n```\n\n"
    "Fix the bug. Reply with the corrected code in one ```python code block."
)
COMPLETION_PROMPT = (
    "Complete the following Python function. Reply with the complete function in one ```python code block.\n\n"
    "```python\n{code}\n```"
)


def repair_prompt(issue: str, path: str, code: str) -> str:
    """A focused first step for an issue (Agentless's repair prompt): the issue and the code to change."""
    return REPAIR_PROMPT.format(issue=issue.strip(), path=path, code=code.strip("\n"))


def completion_prompt(code: str) -> str:
    """A focused first step for a function to write: its stub, as one plain call of the model sees it."""
    return COMPLETION_PROMPT.format(code=code.strip("\n"))


FOCUSED_FIX = (
    "Fix the code so that the failing checks pass. Reply with the complete corrected code in one ```python code block."
)


def focused_messages(opening: str, turns: Sequence[tuple[str, str]]) -> list[Message]:
    """A focused repair conversation (self-debugging): the opening prompt, then for each earlier focused
    step the model's reply and what running it showed, ending with a request for the corrected code.

    Short next to the agent's prompt, and each turn extends the last one's prompt, so a prefix cache
    holds all of it but the newest observation.
    """
    messages = [Message(role="user", content=opening)]
    for reply, observation in turns:
        messages.append(Message(role="assistant", content=reply))
        messages.append(Message(role="user", content=f"{observation.strip()}\n\n{FOCUSED_FIX}"))
    return messages


CRITIC_SYSTEM = (
    "You review an engineer's progress on a task. Judge whether the latest step moves the work toward a "
    "correct solution. Answer with JSON: "
    '{"explanation": "...", "score": <integer from -100 (clearly wrong) to 100 (clearly right)>, '
    '"feedback": <one concrete thing a next attempt should do differently, or an empty string>}.'
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


VERIFIER_SYSTEM = "You check a software engineer's work. Answer with one word: Yes or No."
MAX_CHANGES_CHARS = 3000


JUDGE_SYSTEM = (
    "You judge search results for an engineer or researcher working on a task: is what the last step "
    "returned useful for the task? Answer Yes or No."
)


def judge_messages(task: str, trajectory: Trajectory) -> list[Message]:
    """Ask whether the trajectory's last observation is useful; the answer's first token is read."""
    last = trajectory.steps[-1]
    action = last.action.describe(200) if last.action else f"(unparsable output: {last.error})"
    observation = observation_text(last)
    return [
        Message(role="system", content=JUDGE_SYSTEM),
        Message(
            role="user",
            content=f"Task:\n{task}\n\nThe last step: {action}\nWhat it returned:\n{observation}\n\n"
            "Is what it returned useful for the task? Answer Yes or No.",
        ),
    ]


def verifier_messages(task: str, trajectory: Trajectory, signals: Sequence[str], changes: str) -> list[Message]:
    """Ask whether the work so far is correct; the answer's first token is read as a probability."""
    facts = "\n".join(f"- {s}" for s in signals) or "- none"
    if len(changes) > MAX_CHANGES_CHARS:
        changes = changes[: MAX_CHANGES_CHARS // 2] + "\n[...]\n" + changes[-MAX_CHANGES_CHARS // 2 :]
    shown = f"\n\nThe changes so far:\n```diff\n{changes.strip()}\n```" if changes.strip() else ""
    return [
        Message(role="system", content=VERIFIER_SYSTEM),
        Message(
            role="user",
            content=f"Task:\n{task}\n\nLatest steps:\n{trajectory_summary(trajectory, limit=3)}{shown}\n\n"
            f"Checked facts:\n{facts}\n\nAre these changes a correct solution of the task? Answer Yes or No.",
        ),
    ]
