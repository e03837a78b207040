"""A scripted model that plays every role for a code task, deterministically from the request.

The solver's moves depend on how many steps the trajectory has and on the sample's seed, so a
search grows a real tree: some branches view the file, some fix it, some fix it wrongly, some finish.
"""

from __future__ import annotations

import json
import zlib

from trellis.envs.tasks.catalog import CodeTask

from trellis.models import CompletionRequest, ScriptedModel


def _pick(request: CompletionRequest, i: int, options: int) -> int:
    key = f"{request.seed}:{i}:{request.messages[-1].content}:{len(request.messages)}"
    return zlib.crc32(key.encode()) % options


def code_task_model(task: CodeTask, *, wrong: str = "    return None\n", delay: float = 0.0) -> ScriptedModel:
    fixed = task.solution

    def respond(request: CompletionRequest, i: int) -> str:
        if delay:
            import time

            time.sleep(delay)
        system = request.messages[0].content
        if system.startswith("You are a careful software engineer"):
            steps = sum(1 for m in request.messages if m.role == "assistant")
            choice = _pick(request, i, 4)
            if steps == 0 and choice == 0:
                return "Look at the file first.\n\nview_file solution.py"
            if steps <= 1:
                content = fixed if choice != 3 else task.prompt + wrong
                if choice == 2:  # the same edit through the shell
                    return f"Write it.\n\n```bash\ncat > solution.py <<'EOF'\n{content}EOF\n```"
                return f"Write it.\n\nsolution.py\n```python\n{content}```"
            if choice == 3:
                return "I am not sure what to do."
            return "Done.\n\nfinish"
        if system.startswith("You check"):
            return "Yes" if fixed.strip().splitlines()[-1].strip() in request.messages[-1].content else "No"
        if system.startswith("You review"):
            text = request.messages[-1].content
            score = 80 if "return s[::-1]" in text or "finish" in text else 10
            return json.dumps({"explanation": "scripted review", "score": score, "feedback": "check the edge cases"})
        if system.startswith("An attempt"):
            return "Lesson: test the function before finishing."
        # the debater argues for the first candidate that holds the reference line
        text = request.messages[-1].content
        parts = text.split("Candidate ")[1:]
        good = next((i for i, part in enumerate(parts) if fixed.strip().splitlines()[-1].strip() in part), 0)
        return f'Candidate {good} is right. {{"choice": {good}, "reason": "it holds the fix"}}'

    return ScriptedModel(respond, name="scripted-agents")
