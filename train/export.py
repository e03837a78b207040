"""Training data from splices: chat examples with a per-message train flag, and preference pairs.

An example's messages are exactly the chat the solver would see for the spliced trajectory (system
message with the tools, the task, then each step as the assistant's action and the world's
observation as the user's reply). Each message carries `train` (and `weight`, 0 or 1, the same flag
under the name OpenAI-style fine-tuning files use): on for the revision turn and the good suffix's
actions, off for everything else, so no loss falls on the shared prefix or on the bad steps.

A preference pair from the same tree has the chat up to the common ancestor as its `prompt`, the good
path's turns as `chosen` and the bad path's turns as `rejected` (TRL's conversational format).

A dataset folder holds `revisions.jsonl`, `preferences.jsonl`, `summary.json` and, where the
`datasets` package is installed, the same two tables as Hugging Face datasets under `hf/`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from trellis.agents.prompts import ActionFormat, solver_messages
from trellis.train.pairs import Pair
from trellis.train.splice import Splice, path_steps, steps_trajectory

from trellis.errors import UserError
from trellis.records import json_records
from trellis.tools import ToolSpec
from trellis.tree import Message, Step, Tree

REVISIONS = "revisions.jsonl"
PREFERENCES = "preferences.jsonl"
SUMMARY = "summary.json"
HF_FOLDER = "hf"


class ChatFormat(BaseModel):
    """How a run's solver saw its chat: the task, the tools and the action format."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    task: str
    tools: list[ToolSpec]
    action_format: ActionFormat = "markdown"
    default_path: str | None = None
    judge: bool = False
    """The run's solver judged observations: its replies carry their verdicts (ReSeek's judge turns)."""
    system: str | None = None
    """The run's own role line for the solver (a world that is not a repository)."""

    @classmethod
    def of(cls, tree: Tree, tools: Sequence[ToolSpec], default_path: str | None = None) -> ChatFormat:
        """The format of `tree`'s run, with the tools of the world its splices are replayed in."""
        solver = (tree.meta.get("config") or {}).get("solver") or {}
        return cls(
            task=str(tree.meta.get("task", "")),
            tools=list(tools),
            action_format=solver.get("action_format", "markdown"),
            default_path=default_path,
            judge=bool(solver.get("judge")),
            system=str(tree.meta["system_prompt"]) if tree.meta.get("system_prompt") else None,
        )

    def messages(self, steps: Sequence[Step]) -> list[Message]:
        return solver_messages(
            self.task,
            self.tools,
            steps_trajectory(steps),
            action_format=self.action_format,
            default_path=self.default_path,
            judge=self.judge,
            system=self.system,
        )


def _row(message: Message, train: bool) -> dict[str, Any]:
    return {"role": message.role, "content": message.content, "train": train, "weight": int(train)}


def revision_example(splice: Splice, chat: ChatFormat, **meta: Any) -> dict[str, Any]:
    """One training example: the splice's chat, trained from the revision turn on."""
    messages = chat.messages(splice.steps())[:-1]  # the last observation comes after the last action: nothing to learn
    first_trained = len(splice.prefix) + len(splice.bad)
    rows = []
    for position, message in enumerate(messages):
        step = (position - 2) // 2  # messages 0 and 1 are the system message and the task
        rows.append(_row(message, message.role == "assistant" and step >= first_trained))
    verdicts = splice.first_error.verdicts if splice.first_error is not None else []
    return {
        "messages": rows,
        **meta,
        "good": splice.pair.good,
        "bad": splice.pair.bad,
        "ancestor": splice.pair.ancestor,
        "good_value": splice.pair.good_value,
        "bad_value": splice.pair.bad_value,
        "label_source": splice.pair.good_source,
        "bad_steps_kept": len(splice.bad),
        "bad_steps_total": splice.bad_total,
        "verdicts": [v.verdict for v in verdicts],
        "phrasing": splice.phrasing,
        "verified": splice.verified,
    }


def preference_pair(tree: Tree, pair: Pair, chat: ChatFormat, **meta: Any) -> dict[str, Any]:
    """The pair as prompt (the shared chat) with a chosen (good path) and a rejected (bad path) continuation."""
    prefix = path_steps(tree, tree.root_id, pair.ancestor)
    prompt = chat.messages(prefix)
    chosen = chat.messages([*prefix, *path_steps(tree, pair.ancestor, pair.good)])[len(prompt) : -1]
    rejected = chat.messages([*prefix, *path_steps(tree, pair.ancestor, pair.bad)])[len(prompt) : -1]

    def plain(messages: Sequence[Message]) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in messages]

    return {
        "prompt": plain(prompt),
        "chosen": plain(chosen),
        "rejected": plain(rejected),
        **meta,
        "good": pair.good,
        "bad": pair.bad,
        "good_value": pair.good_value,
        "bad_value": pair.bad_value,
    }


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_dataset(
    out: Path, revisions: Sequence[dict[str, Any]], preferences: Sequence[dict[str, Any]], summary: dict[str, Any]
) -> list[Path]:
    """Write the dataset folder; returns the paths written (the Hugging Face copies where `datasets` is installed)."""
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / REVISIONS, revisions)
    _write_jsonl(out / PREFERENCES, preferences)
    written = [out / REVISIONS, out / PREFERENCES]
    try:
        import datasets
    except ImportError:
        summary = {**summary, "hf": "not written: the datasets package is not installed (pip install 'trellis[train]')"}
    else:
        for name, rows in (("sft", revisions), ("preference", preferences)):
            if rows:
                datasets.Dataset.from_list(list(rows)).save_to_disk(str(out / HF_FOLDER / name))
                written.append(out / HF_FOLDER / name)
    (out / SUMMARY).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    written.append(out / SUMMARY)
    return written


def load_conversations(path: Path) -> list[list[dict[str, Any]]]:
    """The `messages` of every example in a dataset: a dataset folder, a JSONL file, or a Hugging Face
    dataset saved with `save_to_disk`."""
    if path.is_dir() and (path / REVISIONS).is_file():
        path = path / REVISIONS
    if path.is_dir():
        if not (path / "dataset_info.json").is_file():
            raise UserError(
                f"{path} holds no {REVISIONS} and is not a saved Hugging Face dataset; give the folder "
                "`trellis revise --out` wrote"
            )
        try:
            import datasets
        except ImportError as exc:
            raise UserError(
                "reading a Hugging Face dataset needs the datasets package: pip install 'trellis[train]'"
            ) from exc
        rows: list[dict[str, Any]] = list(datasets.load_from_disk(str(path)))
    elif path.is_file():
        rows = json_records(path, "give a JSONL file of examples")
    else:
        raise UserError(f"there is no dataset {path}; give the folder `trellis revise --out` wrote")
    conversations = []
    for number, row in enumerate(rows, 1):
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "content" in m for m in messages):
            raise UserError(f"example {number} of {path} has no list of messages; each row needs `messages`")
        conversations.append(messages)
    return conversations
