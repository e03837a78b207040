from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from trellis.errors import FormatError
from trellis.parsing import finite_number, json_objects, parse_action, parse_actions, parse_judge
from trellis.store import TreeStore
from trellis.tools import ToolSpec, action_format_help, action_json_schema
from trellis.tree import Action, Node, Observation, Step


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


# --- model output never crashes the parser (issue 7) -------------------------------------------

_TOKENS = [
    "{", "}", "[", "]", "{{}}", "[[", "]]", "(", ")", '"', "'", "\\", ":", ",", " ", "\n", "it's",
    "1e999", "-1e999", "Infinity", "-Infinity", "NaN", "9" * 400, "-" + "9" * 400, "1j", "...", "b'x'",
    "{1, 2}", "{1: 2}", "{(1, 2): 3}", "{None: 1, True: 2, 1.5: 3}", "True", "None", "null", "true", "false",
    '"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', "'\\ud800'", "\ud800", "\udfff",
    "<tool_call>", "</tool_call>", "```", "```json\n", "```python\n\n",
    '"tool"', '"name"', '"args"', '"arguments"', '"function"', '"__positional__"', '"thought"',
    '"score"', '"choice"', '"explanation"', '"view"', '"finish"', '"path"',
    "[" * 300, "]" * 300, "{" * 2000, '{"a":' * 200, "[-" * 100,
]  # fmt: skip
_RAW_NUMBERS = ["1e999", "-1e999", "Infinity", "-Infinity", "NaN", "9" * 400, "-" + "9" * 400, "1j", "0x10", "1_0"]

# Sampled alphabets keep generation cheap enough for 1,000 examples per property in a few seconds.
_CHARS = [*"ab _{}[]():,'\"\\\n\t0é€😀\x00", "\ud800", "\udbff", "\udc00", "\udfff"]
_text = st.lists(st.sampled_from(_CHARS), max_size=8).map("".join)
_keys = st.one_of(_text, st.sampled_from(["tool", "args", "path", "score", "choice"]))
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 1e308, -0.0, float("inf"), float("-inf"), float("nan")]),
    st.floats(),
    _text,
    st.sampled_from(["view", "finish", "a.py", "1", " 42 ", "1e999", "nan", "-inf", "9" * 400, "3.5"]),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=5,
)


@st.composite
def _encoded(draw: st.DrawFn, value: st.SearchStrategy[object]) -> str:
    """A value written as JSON (escaped or raw unicode, NaN allowed) or as a Python literal."""
    obj = draw(value)
    how = draw(st.sampled_from(["json", "json-raw", "repr"]))
    if how == "repr":
        return repr(obj)
    return json.dumps(obj, ensure_ascii=how == "json")


@st.composite
def _tool_call(draw: st.DrawFn) -> object:
    """The shapes models write tool calls in, with any tool name, arguments and thought."""
    names = st.sampled_from(["view", "finish", "view", " view ", "", "\ud800"])
    name = draw(st.one_of(names, names, names, _scalars))  # mostly tools that exist
    good_args = st.fixed_dictionaries({"path": _text}, optional={"start": st.integers(-2, 9)})
    args = draw(
        st.one_of(
            json_values,
            good_args,
            good_args,
            st.fixed_dictionaries({"path": _scalars}, optional={"start": _scalars, "__positional__": _scalars}),
            st.lists(_scalars, max_size=3),
        )
    )
    thought = draw(st.one_of(_text, json_values))
    shape = draw(st.sampled_from(["plain", "openai", "flat", "list"]))
    if shape == "openai":
        arguments = json.dumps(args) if draw(st.booleans()) else args
        return {"type": "function", "function": {"name": name, "arguments": arguments}, "thought": thought}
    if shape == "flat":
        extra = args if isinstance(args, dict) else {"x": args}
        return {draw(st.sampled_from(["tool", "name", "action"])): name, **extra}
    key = draw(st.sampled_from(["args", "arguments", "parameters", "action_input"]))
    call = {draw(st.sampled_from(["tool", "name", "tool_name"])): name, key: args, "thought": thought}
    return [call, call] if shape == "list" else call


@st.composite
def numbered_replies(draw: st.DrawFn, key: str) -> str:
    """A reply holding `{key: number}` (a critic's score, a debater's choice), the number anything a model writes."""
    number = draw(
        st.one_of(
            st.sampled_from(_RAW_NUMBERS),
            st.integers(-2, 4).map(str),
            _encoded(_scalars),
            _encoded(json_values),
        )
    )
    reply = f'{{"explanation": {json.dumps(draw(_text))}, "{key}": {number}, "feedback": "f"}}'
    before, after = draw(st.sampled_from(["", "Verdict: ", "```json\n", "{", "[", "\ud800"])), draw(_text)
    return before + reply + after


_good_calls = _encoded(
    st.one_of(
        st.fixed_dictionaries({"tool": st.just("view"), "args": st.fixed_dictionaries({"path": _text})}),
        st.fixed_dictionaries({"name": st.just("finish"), "arguments": st.just({})}, optional={"thought": _text}),
    )
)
_pieces = st.one_of(
    st.sampled_from(_TOKENS),
    _good_calls,
    _text,
    _encoded(json_values),
    _encoded(_tool_call()),
    numbered_replies("score"),
    numbered_replies("choice"),
)


@st.composite
def model_outputs(draw: st.DrawFn) -> str:
    """Text a model might reply: fragments, JSON and literals, tool calls, wrapped in tags or fences."""
    text = "".join(draw(st.lists(_pieces, max_size=6)))
    wrap = draw(st.sampled_from(["", "tag", "fence", "open-tag", "open-fence"]))
    return {
        "": text,
        "tag": f"<tool_call>\n{text}\n</tool_call>",
        "fence": f"```json\n{text}\n```",
        "open-tag": f"<tool_call>{text}",
        "open-fence": f"```\n{text}",
    }[wrap]


def _short(value: object) -> str:
    """A test id that does not print 65k brackets."""
    text = ascii(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)})"


def _assert_storable(action: Action) -> None:
    assert isinstance(action, Action) and action.tool.strip() == action.tool != ""
    assert Action.model_validate_json(action.model_dump_json()) == action


@settings(max_examples=1000, deadline=None)
@given(model_outputs())
def test_parse_actions_returns_actions_or_format_error(text: str) -> None:
    for tools in (None, TOOLS):
        try:
            actions = parse_actions(text, tools)
        except FormatError as exc:
            exc.text.encode("utf-8")
            continue
        assert actions
        for action in actions:
            _assert_storable(action)
            if tools:
                assert action.tool in {"view", "finish"}
        assert parse_action(text, tools) == actions[0]


@settings(max_examples=1000, deadline=None)
@given(model_outputs())
def test_json_objects_yield_plain_json(text: str) -> None:
    for obj in json_objects(text):
        assert isinstance(obj, dict)
        json.dumps(obj, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42.0),
        (-3.5, -3.5),
        (" 85 ", 85.0),
        ("1e2", 100.0),
        (10**400, 100.0),
        (-(10**400), -100.0),
        ("9" * 400, 100.0),
        (float("inf"), None),
        (float("nan"), None),
        ("1e999", None),
        ("Infinity", None),
        ("NaN", None),
        ("9" * 5000, None),
        (True, None),
        (None, None),
        ("high", None),
        ([1], None),
        (1j, None),
    ],
    ids=_short,
)
def test_finite_number(value: object, expected: float | None) -> None:
    assert finite_number(value, low=-100, high=100) == expected


@pytest.mark.parametrize(
    "text",
    [
        "{{}}",
        "[{{}}]",
        '{"tool": "view", "args": {{}}}',
        "[" * 5000 + "]" * 5000,
        "{" * 5000,
        '{"a":' * 5000 + "1" + "}" * 5000,
        "[" + "-" * 90000 + "1]",
        "(" * 5000 + ")" * 5000,
        '{"tool": "view", "args": {"path": Infinity}}',
        '{"tool": "view", "args": {"path": NaN}}',
        '{"tool": "view", "args": {"path": 1e999}}',
        "{'tool': 'view', 'args': {(1, 2): 'a'}}",
        "{'tool': 'view', 'args': {'path': b'a'}}",
        "{'tool': 'view', 'args': {'path': {'a'}}}",
        "{'tool': 'view', 'args': {'path': ...}}",
        "{'tool': 'view', 'args': {'path': 1j}}",
        '{"tool": "view", "args": {"path": "a"' + "\x00",
    ],
    ids=_short,
)
def test_malformed_output_is_a_format_error(text: str) -> None:
    with pytest.raises(FormatError):
        parse_action(text, TOOLS)
    with pytest.raises(FormatError):
        parse_action(text)
    list(json_objects(text))


@pytest.mark.parametrize(
    "text",
    [
        "{" * 65536,
        "[" * 65536,
        "{'" * 32768,
        "{a}" * 21000,
        "<tool_call>x" + " " * 65000 + "y",
        "```" + "\n" * 65000,
        "```\n{a}" * 10000,
        "it's a {thing} " * 70000,
    ],
    ids=_short,
)
def test_long_pathological_output_finishes(text: str) -> None:
    # The bracket scan is one pass and the candidates are bounded; each of these took seconds or more
    # with a quadratic scan or backtracking patterns. No timing is asserted: finishing is the test.
    with pytest.raises(FormatError):
        parse_action(text, TOOLS)
    assert list(json_objects(text)) == []


def test_scan_is_linear_in_work() -> None:
    # Stray brackets before a real call leave it findable, without rescanning the text per bracket.
    text = "{" * 50000 + ' {"tool": "view", "args": {"path": "a"}}'
    assert parse_action(text, TOOLS).args == {"path": "a", "start": 1}


def test_non_string_keys_become_strings() -> None:
    action = parse_action("{'tool': 'anything', 'args': {1: 'a', None: 'b', False: 'c', 1.5: 'd'}}")
    assert action.args == {"1": "a", "null": "b", "false": "c", "1.5": "d"}
    with pytest.raises(FormatError, match="path: Field required"):
        parse_action("{'tool': 'view', 'args': {1: 'a.py'}}", TOOLS)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("null", {}),
        ("5", {"__positional__": [5]}),
        ('"a.py"', {"__positional__": ["a.py"]}),
        ('{"__positional__": null}', {"__positional__": None}),
        ('{"__positional__": 7}', {"__positional__": 7}),
    ],
)
def test_any_args_value_is_normalised(args: str, expected: dict[str, object]) -> None:
    text = f'{{"tool": "view", "args": {args}}}'
    assert parse_action(text).args == expected
    try:
        action = parse_action(text, TOOLS)
    except FormatError:
        return
    assert action.tool == "view"


def test_null_args_mean_no_arguments() -> None:
    assert parse_action('{"tool": "finish", "args": null}', TOOLS).args == {}
    assert parse_action('{"tool": "view", "args": "a.py"}', TOOLS).args == {"path": "a.py", "start": 1}
    with pytest.raises(FormatError, match="path: Input should be a valid string"):
        parse_action('{"tool": "view", "args": {"__positional__": 5}}', TOOLS)


@pytest.mark.parametrize(
    "text",
    [
        '{"tool": "view", "args": {"path": "a\\ud800"}, "thought": "\\udc00 hm"}',
        '{"tool": "view", "args": {"path": "a\ud800"}, "thought": "\udc00 hm"}',
        "{'tool': 'view', 'args': {'path': 'a\\ud800'}, 'thought': '\\udc00 hm'}",
        '{"tool": "view", "args": {"path\\ud800": "x", "path": "a\\ud800"}, "thought": "\\udc00 hm"}',
    ],
)
def test_lone_surrogates_are_replaced(text: str) -> None:
    action = parse_action(text)
    assert action.args["path"] == "a\ufffd" and action.thought == "\ufffd hm"
    _assert_storable(action)
    assert parse_action(text, TOOLS).args == {"path": "a\ufffd", "start": 1}


def test_surrogate_pairs_join_and_prose_is_cleaned() -> None:
    action = parse_action('\ud800 look {"tool": "view", "args": {"path": "\\ud83d\\ude00"}}', TOOLS)
    assert action.args["path"] == "\U0001f600"
    assert action.thought == "\ufffd look"


def test_action_with_lone_surrogates_round_trips_through_the_store(tmp_path: Path) -> None:
    parsed = parse_action('{"tool": "view", "args": {"path": "a\\ud800"}, "thought": "\\udfff"}')
    # Built directly, too: the data model replaces lone surrogates wherever the text comes from.
    built = Action(tool="view\ud800", args={"path": ["a\udc00", {"k\ud800": "v"}]}, thought="\ud800")
    assert built == Action(tool="view\ufffd", args={"path": ["a\ufffd", {"k\ufffd": "v"}]}, thought="\ufffd")
    root = Node(id="0", step=Step(action=parsed, completion="\ud800", observation=Observation(text="\udc00")))
    child = Node(id="0.0", parent_id="0", depth=1, step=Step(action=built), explanation="\ud800")
    with TreeStore(tmp_path / "tree.db") as store:
        store.put_many([root, child])
        assert store.get("0") == root
        assert store.get("0.0") == child
    assert root.step is not None and root.step.completion == "\ufffd"


def test_fences_and_tags_with_blank_lines_and_apostrophes() -> None:
    assert parse_action('```json\n\n\n{"tool": "view", "args": {"path": "a"}}\n```', TOOLS).tool == "view"
    assert parse_action('<tool_call>\n\n{"name": "finish", "arguments": {}}  \n\n</tool_call>', TOOLS).tool == "finish"
    text = 'Set x = { then it\'s {"tool": "view", "args": {"path": "it\'s {x}"}} done'
    assert parse_action(text, TOOLS).args["path"] == "it's {x}"


@pytest.mark.parametrize(
    ("reply", "verdict", "cleaned"),
    [
        ("<judge>Yes</judge>\nsearch capital of Oro", True, "search capital of Oro"),
        ("<judge> no </judge>\n\nview_file a.py", False, "view_file a.py"),
        ("Not useful. <JUDGE>No\nsearch other words", False, "Not useful. \nsearch other words"),  # unclosed tag
        ("<judge>No</judge> then <judge>Yes</judge>", False, "then <judge>Yes</judge>"),  # the first counts
        ('{"judge": "yes", "thought": "t", "tool": "finish", "args": {}}', True, None),
        ('{"judge": false, "tool": "finish"}', False, None),
        ("search capital of Oro", None, "search capital of Oro"),
        ("<judge>maybe</judge> finish", None, "<judge>maybe</judge> finish"),
        ("No\nsearch founder of the bank", False, "search founder of the bank"),  # a bare first line
        ("**Yes.**\nanswer Oro", True, "answer Oro"),
        ("No", False, ""),
        ("Yes, the town is Oro.\nanswer Oro", None, "Yes, the town is Oro.\nanswer Oro"),  # a sentence, no verdict
        ("Nothing useful there.\nsearch x", None, "Nothing useful there.\nsearch x"),
    ],
)
def test_a_judge_verdict_in_every_format(reply: str, verdict: bool | None, cleaned: str | None) -> None:
    found, rest = parse_judge(reply)
    assert found is verdict
    assert rest == (reply if cleaned is None else cleaned)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_judge_never_fails(text: str) -> None:
    verdict, rest = parse_judge(text)
    assert verdict in (True, False, None) and len(rest) <= len(text)
