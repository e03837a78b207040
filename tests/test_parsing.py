from __future__ import annotations

import pytest
from pydantic import BaseModel

from trellis.errors import FormatError
from trellis.parsing import parse_action, parse_actions
from trellis.tools import ToolSpec, action_format_help, action_json_schema


class ViewArgs(BaseModel):
    path: str
    start: int = 1


class FinishArgs(BaseModel):
    pass


TOOLS = [
    ToolSpec(name="view", description="Show a file", args=ViewArgs),
    ToolSpec(name="finish", description="Submit", args=FinishArgs),
]


@pytest.mark.parametrize(
    "text",
    [
        '{"tool": "view", "args": {"path": "a.py"}}',
        'Sure! Here it is:\n```json\n{"tool": "view", "args": {"path": "a.py"}}\n```\nDone.',
        "```\n{'tool': 'view', 'args': {'path': 'a.py'}}\n```",
        '<tool_call>\n{"name": "view", "arguments": {"path": "a.py"}}\n</tool_call>',
        '{"type": "function", "function": {"name": "view", "arguments": "{\\"path\\": \\"a.py\\"}"}}',
        '{"action": "view", "action_input": {"path": "a.py"}}',
        '{"tool": "view", "path": "a.py"}',
        '{"tool": "view", "args": ["a.py"]}',
        'I will read the file {"tool": "view", "args": {"path": "a.py", "start": 1}} now',
    ],
)
def test_shapes_small_models_produce(text: str) -> None:
    action = parse_action(text, TOOLS)
    assert action.tool == "view"
    assert action.args == {"path": "a.py", "start": 1}


def test_braces_inside_strings_do_not_confuse() -> None:
    action = parse_action('{"tool": "view", "args": {"path": "dir/{x}]/a.py"}}', TOOLS)
    assert action.args["path"] == "dir/{x}]/a.py"


def test_python_literals_and_json_literals() -> None:
    class Flag(BaseModel):
        on: bool
        note: str | None = None

    tools = [ToolSpec(name="flag", description="", args=Flag)]
    assert parse_action('{"tool": "flag", "args": {"on": true, "note": null}}', tools).args == {
        "on": True,
        "note": None,
    }
    assert parse_action("{'tool': 'flag', 'args': {'on': True}}", tools).args["on"] is True


def test_thought_from_field_or_prose() -> None:
    assert parse_action('{"thought": "look", "tool": "view", "args": {"path": "a"}}', TOOLS).thought == "look"
    assert parse_action('Check the file first.\n{"tool": "view", "args": {"path": "a"}}', TOOLS).thought == (
        "Check the file first."
    )


def test_several_actions() -> None:
    text = '[{"tool": "view", "args": {"path": "a"}}, {"tool": "finish", "args": {}}]'
    assert [a.tool for a in parse_actions(text, TOOLS)] == ["view", "finish"]
    text = (
        '<tool_call>{"name": "view", "arguments": {"path": "a"}}</tool_call>\n'
        '<tool_call>{"name": "finish", "arguments": {}}</tool_call>'
    )
    assert [a.tool for a in parse_actions(text, TOOLS)] == ["view", "finish"]


def test_without_tools_any_tool_name_passes() -> None:
    assert parse_action('{"tool": "anything", "args": {"x": 1}}').args == {"x": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("I think the bug is in line 3.", "no tool call found"),
        ('{"tool": "delete_everything", "args": {}}', "unknown tool 'delete_everything'; use one of: view, finish"),
        ('{"tool": "view", "args": {}}', "path: Field required"),
        ('{"tool": "view", "args": {"path": "a", "start": "x"}}', "start: Input should be a valid integer"),
        ('{"tool": "view", "args": ["a", 1, 2]}', "got a list of 3 values"),
        ('{"tool": "view", "args": {"path": "a"', "no tool call found"),
    ],
)
def test_errors_speak_to_the_model(text: str, message: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_action(text, TOOLS)
    assert message in str(info.value)
    assert info.value.text == text


def test_json_schema_and_help() -> None:
    schema = action_json_schema(TOOLS)
    assert [v["properties"]["tool"]["const"] for v in schema["anyOf"]] == ["view", "finish"]
    assert schema["anyOf"][0]["properties"]["args"]["required"] == ["path"]
    single = action_json_schema(TOOLS[:1])
    assert single["properties"]["tool"] == {"const": "view"}
    text = action_format_help(TOOLS)
    assert "view: Show a file" in text and "start?: integer" in text
