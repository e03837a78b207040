"""The critic's verdict parsing takes any model text: a verdict or a FormatError, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_parsing import model_outputs, numbered_replies
from trellis.agents.critic import parse_verdict

from trellis.errors import FormatError


@settings(max_examples=1000, deadline=None)
@given(st.one_of(numbered_replies("score"), model_outputs()))
def test_any_reply_gives_a_verdict_or_format_error(text: str) -> None:
    try:
        score, explanation, feedback = parse_verdict(text)
    except FormatError:
        return
    assert isinstance(score, int) and -100 <= score <= 100
    (explanation + feedback).encode("utf-8")


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ("85", 85),
        ("-7.9", -7),
        ('"42"', 42),
        ('" 60 "', 60),
        ("9" * 400, 100),
        ("-" + "9" * 400, -100),
        ('"' + "9" * 400 + '"', 100),
        ("1e308", 100),
        ("250", 100),
    ],
)
def test_scores_are_clamped(score: str, expected: int) -> None:
    assert parse_verdict(f'{{"explanation": "e", "score": {score}, "feedback": "f"}}') == (expected, "e", "f")


@pytest.mark.parametrize(
    "score",
    ["1e999", "-1e999", "Infinity", "-Infinity", "NaN", '"1e999"', '"inf"', '"nan"', "true", "null", "[]", "{}", '"x"'],
)
def test_scores_that_are_no_finite_number_are_a_format_error(score: str) -> None:
    with pytest.raises(FormatError, match="no score found"):
        parse_verdict(f'{{"explanation": "e", "score": {score}}}')


def test_a_later_usable_score_is_taken() -> None:
    assert parse_verdict('{"score": Infinity} then {"score": 30, "explanation": "ok"}') == (30, "ok", "")


@pytest.mark.parametrize(
    "text",
    ["{{}}", '{"score": {{}}}', "[" * 5000 + "]" * 5000, '{"score":' * 3000 + "1" + "}" * 3000, "{" * 65536],
    ids=["braces", "set-of-dict", "deep-list", "deep-dict", "open-braces"],
)
def test_malformed_replies_are_a_format_error(text: str) -> None:
    with pytest.raises(FormatError):
        parse_verdict(text)


def test_explanation_is_utf8_safe() -> None:
    score, explanation, feedback = parse_verdict('{"score": 10, "explanation": "a\\ud800", "feedback": "\udc00"}')
    assert (score, explanation, feedback) == (10, "a\ufffd", "\ufffd")
