"""The debate's choice parsing takes any model text: a choice in range or None, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_parsing import model_outputs, numbered_replies
from trellis.agents.discriminator import parse_choice


@settings(max_examples=1000, deadline=None)
@given(st.one_of(numbered_replies("choice"), model_outputs()), st.integers(1, 5))
def test_any_reply_gives_a_choice_in_range_or_none(text: str, count: int) -> None:
    choice = parse_choice(text, count)
    assert choice is None or (type(choice) is int and 0 <= choice < count)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("1", 1),
        ("0", 0),
        ("1.0", 1),
        ('"1"', 1),
        ('" 2 "', 2),
        ("1.5", None),
        ("-1", None),
        ("3", None),
        ("9" * 400, None),
        ("-" + "9" * 400, None),
        ('"' + "9" * 400 + '"', None),
        ("1e999", None),
        ("-1e999", None),
        ("Infinity", None),
        ("NaN", None),
        ('"nan"', None),
        ("true", None),
        ("null", None),
        ("[1]", None),
    ],
    ids=lambda value: ascii(value)[:30],
)
def test_choices(choice: str, expected: int | None) -> None:
    assert parse_choice(f'{{"reason": "r", "choice": {choice}}}', 3) == expected


def test_a_later_usable_choice_is_taken() -> None:
    assert parse_choice('{"choice": ' + "9" * 400 + '} I mean {"choice": 2}', 3) == 2


@pytest.mark.parametrize(
    "text",
    ["{{}}", '{"choice": {{}}}', "[" * 5000 + "]" * 5000, '{"choice":' * 3000 + "1" + "}" * 3000, "{" * 65536],
    ids=["braces", "set-of-dict", "deep-list", "deep-dict", "open-braces"],
)
def test_malformed_replies_give_no_choice(text: str) -> None:
    assert parse_choice(text, 3) is None
