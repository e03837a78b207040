"""A scripted model for Agent-R loop tests: it plays every role on any shipped code task.

The starting model opens with a stub that fails the examples (greedy) or with a reply that is no
action at all (sampled); asked to repair the stub it writes the reference solution (as does its
greedy agent step, whose sampled one is again no action); with the solution written it finishes.
Every tree therefore holds a finished leaf that passes the hidden tests and unparsable replies beside
its path: pairs that splice and replay.
The trained model (`trained=True`) opens with the solution at once (its sampled openings are still no
action, so its trees give pairs too).
"""

from __future__ import annotations

from trellis.envs.tasks.catalog import TASKS, CodeTask

from trellis.models import CompletionRequest, ScriptedModel

CONFUSED = "I am not sure what to do."


def _task(request: CompletionRequest) -> CodeTask:
    text = "\n".join(m.content for m in request.messages)
    return next(task for task in TASKS if f"def {task.entry_point}(" in text)


def _marker(task: CodeTask) -> str:
    return task.solution.strip().splitlines()[-1].strip()


def loop_model(*, trained: bool = False) -> ScriptedModel:
    def respond(request: CompletionRequest, i: int) -> str:
        system = request.messages[0].content
        greedy = request.temperature == 0
        if system.startswith("Complete the following"):
            task = _task(request)
            if len(request.messages) > 1:  # a focused repair of the failing stub: the solution
                return f"Fixed.\n\n```python\n{task.solution}```"
            if not greedy:
                return CONFUSED
            code = task.solution if trained else f"{task.prompt}    return None\n"
            return f"```python\n{code}```"
        if system.startswith("You are a careful"):
            task = _task(request)
            last = next((m.content for m in reversed(request.messages) if m.role == "assistant"), "")
            if _marker(task) in last:
                return "Done.\n\nfinish"
            return f"Write it.\n\nsolution.py\n```python\n{task.solution}```" if greedy else CONFUSED
        if system.startswith("You review one step"):  # the first-error locator
            return "No" if "not a valid action" in request.messages[-1].content.split("The step to judge")[1] else "Yes"
        if system.startswith("You check"):
            return "Yes"
        if system.startswith("You review"):
            return '{"explanation": "scripted", "score": 50, "feedback": ""}'
        if system.startswith("An attempt"):
            return "Lesson: write the whole function."
        return 'Candidate 0 is right. {"choice": 0, "reason": "scripted"}'

    return ScriptedModel(respond, name="loop-trained" if trained else "loop-start")
