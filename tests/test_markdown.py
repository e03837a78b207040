"""The markdown action format: what small models write parses into typed actions, the rest is a FormatError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trellis.envs.code.tools import CODE_TOOLS
from trellis.envs.qa.world import QA_TOOLS

from trellis.errors import FormatError
from trellis.markdown import code_reply, markdown_format_help, parse_markdown_action, render_markdown_action, usage
from trellis.tree import Action

TOOLS = [spec for spec, _ in CODE_TOOLS.values()]
TASK_TOOLS = [CODE_TOOLS[name][0] for name in ("view_file", "write_file", "replace", "shell", "run_tests", "finish")]


def parse(text: str, tools: list = TOOLS, default: str | None = None) -> Action:  # type: ignore[type-arg]
    return parse_markdown_action(text, tools, default_path=default)


def test_whole_file_after_a_path_line() -> None:
    action = parse("I will fix it.\n\nsolution.py\n```python\ndef f():\n    return 1\n```\n")
    assert action.tool == "write_file"
    assert action.args == {"path": "solution.py", "content": "def f():\n    return 1\n"}
    assert action.thought == "I will fix it."


@pytest.mark.parametrize(
    "path_line", ["**solution.py**", "`solution.py`", "File: solution.py", "### solution.py", "solution.py:"]
)
def test_path_lines_with_markup(path_line: str) -> None:
    action = parse(f"Here.\n{path_line}\n```python\nx = 1\n```")
    assert action.args["path"] == "solution.py"


def test_a_block_without_a_path_goes_to_the_default_file() -> None:
    text = "Here is the complete function:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert parse(text, default="solution.py").args["path"] == "solution.py"
    with pytest.raises(FormatError, match="path on the line just before"):
        parse(text)


def test_a_path_comment_on_the_first_line() -> None:
    action = parse("```python\n# tinycalc/core.py\ndef add(a, b):\n    return a + b\n```")
    assert action.args == {"path": "tinycalc/core.py", "content": "def add(a, b):\n    return a + b\n"}


def test_an_unclosed_block_runs_to_the_end() -> None:
    action = parse("solution.py\n```python\ndef f():\n    return 2", default=None)
    assert action.args["content"] == "def f():\n    return 2\n"


def test_search_replace_edit() -> None:
    text = (
        "The sign is wrong.\n\ntinycalc/__init__.py\n```python\n<<<<<<< SEARCH\n    return a - b\n=======\n"
        "    return a + b\n>>>>>>> REPLACE\n```"
    )
    action = parse(text)
    assert action.tool == "replace"
    assert action.args == {"path": "tinycalc/__init__.py", "old": "    return a - b", "new": "    return a + b"}


def test_an_edit_block_without_a_divider_says_what_is_missing() -> None:
    with pytest.raises(FormatError, match="======="):
        parse("a.py\n```\n<<<<<<< SEARCH\nx\n>>>>>>> REPLACE\n```")


def test_shell_block() -> None:
    action = parse("Run it.\n```bash\npython -c 'print(1)'\n```")
    assert action.tool == "shell" and action.args["command"] == "python -c 'print(1)'"


@pytest.mark.parametrize(
    ("text", "tool", "args"),
    [
        ("All examples pass.\n\nfinish", "finish", {}),
        ("Done.\n`finish`", "finish", {}),
        ("**Action:** finish", "finish", {}),
        ("```\nview_file src/app.py 10 40\n```", "view_file", {"path": "src/app.py", "start": 10, "end": 40}),
        ("Look.\nview_file src/app.py", "view_file", {"path": "src/app.py", "start": 1, "end": None}),
        ("```bash\nrun_tests\n```", "run_tests", {"command": None}),
        ("find_symbol Config.from_file", "find_symbol", {"name": "Config.from_file"}),
        ("search 'def add' tinycalc", "search", {"pattern": "def add", "path": "tinycalc"}),
        ("search def add", "search", {"pattern": "def add", "path": "."}),
        ('view_file(path="a.py", start=3)', "view_file", {"path": "a.py", "start": 3, "end": None}),
        ("reject this cannot work without a network", "reject", {"reason": "this cannot work without a network"}),
    ],
)
def test_tool_lines(text: str, tool: str, args: dict) -> None:  # type: ignore[type-arg]
    action = parse(text)
    assert action.tool == tool
    assert action.args == args


def test_bad_arguments_name_the_usage() -> None:
    with pytest.raises(FormatError, match=r"view_file PATH \[START\] \[END\]"):
        parse("view_file a.py 10 twenty")


def test_prose_alone_is_a_format_error_that_lists_the_forms() -> None:
    with pytest.raises(FormatError, match="exactly one of") as info:
        parse("I think the function is now correct and the examples pass.", TASK_TOOLS)
    assert "finish" in str(info.value)


def test_a_reply_that_only_states_a_finding_is_shown_each_command_written_out() -> None:
    with pytest.raises(FormatError) as info:
        parse("Prarkthi Reimtros was born in Kaixhoskby in 1791.", list(QA_TOOLS))
    assert "search QUERY, answer TEXT" in str(info.value)


def test_tools_the_world_lacks_are_refused() -> None:
    no_shell = [spec for spec in TOOLS if spec.name != "shell"]
    with pytest.raises(FormatError, match="shell commands cannot be run here"):
        parse("```bash\nls\n```", no_shell)


@pytest.mark.parametrize(
    "action",
    [
        Action(tool="write_file", args={"path": "a.py", "content": "x = 1\n"}, thought="t"),
        Action(tool="replace", args={"path": "a.py", "old": "x = 1", "new": "x = 2"}),
        Action(tool="shell", args={"command": "ls -la"}),
        Action(tool="view_file", args={"path": "a b.py", "start": 3, "end": 9}),
        Action(tool="finish", args={}),
        Action(tool="search", args={"pattern": "def (add|sub)", "path": "."}),
    ],
)
def test_rendered_actions_parse_back(action: Action) -> None:
    for rendered in (render_markdown_action(action), render_markdown_action(action, TOOLS)):
        again = parse(rendered)
        assert again.tool == action.tool
        for name, value in action.args.items():
            assert again.args[name] == value


@pytest.mark.parametrize(
    ("action", "said"),
    [
        (Action(tool="reject", args={"reason": "it's the wrong file"}), "reject it's the wrong file"),
        (Action(tool="search", args={"pattern": "def add", "path": "."}), "search def add"),  # "." is the default
        (Action(tool="search", args={"pattern": "def add", "path": "src"}), "search 'def add' src"),
        (Action(tool="view_file", args={"path": "a.py", "start": 3, "end": 9}), "view_file a.py 3 9"),
        # read back plainly, this would be a pattern and a path: it stays quoted
        (Action(tool="search", args={"pattern": "foo 10"}), "search 'foo 10'"),
    ],
)
def test_with_the_tools_a_command_line_is_written_as_a_model_writes_it(action: Action, said: str) -> None:
    """Shell quoting in the transcript (`'it'"'"'s'`) is copied by a small model into its next replies."""
    assert render_markdown_action(action, TOOLS) == said
    parsed = parse(said).args  # with the tool's defaults filled in
    assert {k: parsed[k] for k in action.args} == action.args


def test_in_a_reply_of_plain_lines_that_plays_later_turns_too_the_first_command_is_the_action() -> None:
    """What the 0.5B model wrote on a QA question: its search, then the searches and answers it imagined,
    each with the help line's description copied after it."""
    reply = (
        "search Tosker Workshop  (Search file contents with a regex)\n"
        "view_file 1.py\n"
        "search Thallvo Guild  (Search file contents with a regex)\n"
        "finish"
    )
    search = next(spec for spec in TOOLS if spec.name == "search")
    assert search.description == "Search file contents with a regex"  # the description this reply copied
    assert parse(reply).tool == "search" and parse(reply).args["pattern"] == "Tosker Workshop"
    # a thought, then one command: that command, as before
    assert parse("The tests come next.\n\nrun_tests").tool == "run_tests"
    # with a code block, the block decides, as before
    assert parse("view_file a.py\n\na.py\n```python\nx = 1\n```").tool == "write_file"


@pytest.mark.parametrize(
    ("reply", "tool"),
    [
        ("search returned nothing, so I will look at the file.\nview_file src/app.py", "view_file"),
        ("Plan:\n1. view_file app.py to see the code\n\nview_file app.py", "view_file"),
        ("- search for the definition of parse\n\nfind_symbol parse", "find_symbol"),
        ("# view_file first\n\nfinish", "finish"),
    ],
)
def test_thinking_that_starts_with_a_tool_s_name_is_not_the_action(reply: str, tool: str) -> None:
    """A line in a list, under a heading, or ending like a sentence is thought, not an earlier command."""
    action = parse(reply)
    assert action.tool == tool and action.args.get("path") in (None, "app.py", "src/app.py")


def test_a_shell_quoted_phrase_is_one_argument_as_the_shell_reads_it() -> None:
    action = parse("Look again.\n\nreject 'the founder'\"'\"'s town is elsewhere'")
    assert action.args == {"reason": "the founder's town is elsewhere"}
    assert parse("reject 'a' 'b'").args == {"reason": "'a' 'b'"}  # several quoted words: as written


def test_help_shows_each_form_and_usage_lines() -> None:
    text = markdown_format_help(TASK_TOOLS, example_path="solution.py")
    assert "solution.py\n```python" in text and "<<<<<<< SEARCH" in text and "```bash" in text
    assert usage(CODE_TOOLS["view_file"][0]) in text
    assert "finish" in text


_pieces = st.sampled_from(
    [
        "```",
        "```python\n",
        "```bash\n",
        "\n",
        "solution.py\n",
        "<<<<<<< SEARCH\n",
        "=======\n",
        ">>>>>>> REPLACE\n",
        "finish",
        "view_file ",
        "search ",
        "(",
        ")",
        "=",
        "'",
        '"',
        "1e999",
        "\ud800",
        "{{}}",
        "...",
        "# a.py\n",
        "reject ",
        "   ",
        "9" * 50,
    ]
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(_pieces, st.text(max_size=20)), max_size=25))
def test_any_reply_is_an_action_or_a_format_error(parts: list[str]) -> None:
    text = "".join(parts)
    try:
        action = parse(text, TOOLS, default="solution.py")
    except FormatError:
        return
    assert action.tool in CODE_TOOLS
    action.model_dump_json()  # serialisable: the store can keep it


@pytest.mark.parametrize(
    "marker", ["<<<<<<< SEARCH", "<<<< search", "<<<<<<< SEARCH:", "<<<<<<< HEAD", "<<<<<<< ORIGINAL"]
)
def test_edit_markers_models_actually_write(marker: str) -> None:
    text = f"a.py\n```python\n{marker}\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```"
    action = parse(text)
    assert action.tool == "replace" and action.args["old"] == "x = 1" and action.args["new"] == "x = 2"


@pytest.mark.parametrize(
    "text",
    [
        "```python\nfinish()\n```",
        "```python\nfinish\n```",
    ],
)
def test_a_tool_call_in_a_code_block_is_the_tool_not_file_content(text: str) -> None:
    assert parse(text, default="solution.py").tool == "finish"


@pytest.mark.parametrize(
    "text",
    [
        "Output:\n```\n>>> f(2)\n4\n```",
        "```diff\n- a\n+ b\n```",
        "```output\n4\n```",
    ],
)
def test_output_and_diffs_are_never_written_as_a_file(text: str) -> None:
    with pytest.raises(FormatError):
        parse(text, default="solution.py")


@pytest.mark.parametrize(
    "text",
    [
        "Plan:\n1. view_file solution.py\n2. replace the loop\n3. run_tests\n4. finish the function by summing",
        "- run_tests to see which examples fail",
        "finish the function by returning the sum of the list",
    ],
)
def test_prose_that_mentions_tools_is_no_action(text: str) -> None:
    with pytest.raises(FormatError):
        parse(text)


def test_paths_need_a_real_extension_and_shell_prompts_are_dropped() -> None:
    with pytest.raises(FormatError, match="path"):
        parse("```python\n# v1.0\nx = 1\n```")
    assert parse("```bash\n$ ls -la\n```").args["command"] == "ls -la"


def test_a_code_reply_is_a_write_of_the_given_path() -> None:
    reply = (
        "The bug is the minus.\n\n```bash\npython -c 'import m'\n```\n\n```output\n-1\n```\n\n"
        "```python\nx = add(2, 3)\n```\n\n```python\ndef add(a, b):\n    return a + b\n```"
    )
    action = code_reply(reply, "pkg/m.py", TOOLS)
    # the block that defines something, not the shell, the output or the usage line
    assert action == Action(
        tool="write_file",
        args={"path": "pkg/m.py", "content": "def add(a, b):\n    return a + b\n"},
        thought=action.thought,
    )
    assert action.thought.startswith("The bug is the minus.")
    # no definition anywhere: the first code block is the answer
    assert code_reply("```\nx = 1\n```", "a.py", TOOLS).args["content"] == "x = 1\n"


@pytest.mark.parametrize("reply", ["I would change the sign.", "```bash\nls\n```", "```python\n>>> add(1, 2)\n3\n```"])
def test_a_reply_without_code_is_a_format_error(reply: str) -> None:
    with pytest.raises(FormatError, match="no code found"):
        code_reply(reply, "a.py", TOOLS)


def test_a_code_reply_needs_a_write_tool() -> None:
    with pytest.raises(FormatError, match="cannot be written"):
        code_reply("```python\nx = 1\n```", "a.py", [CODE_TOOLS["finish"][0]])
