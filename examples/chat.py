"""Ask the embedded model for a tool call, constrained to the tool's JSON schema, and parse it.

Run:  python examples/chat.py
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from trellis.models import load_model
from trellis.parsing import parse_action
from trellis.tools import ToolSpec, action_format_help, action_json_schema


class SearchArgs(BaseModel):
    pattern: str = Field(description="a regular expression")
    path: str = Field(default=".", description="where to search")


TOOLS = [ToolSpec(name="search", description="Search the repository with a regex", args=SearchArgs)]


async def main() -> None:
    model = load_model("embedded")
    messages = [
        {"role": "system", "content": "You explore a Python repository.\n" + action_format_help(TOOLS)},
        {"role": "user", "content": "Find where the function parse_config is defined."},
    ]
    (completion,) = await model.complete(messages, max_tokens=160, temperature=0, json_schema=action_json_schema(TOOLS))
    print("model said:", completion.text)
    action = parse_action(completion.text, TOOLS)
    print("parsed:    ", action.summary())
    print("usage:     ", completion.usage)
    await model.aclose()


if __name__ == "__main__":
    asyncio.run(main())
