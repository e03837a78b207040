"""ScriptedModel, ReplayModel and request validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trellis.errors import ModelError, ReplayMissError, UserError
from trellis.models import ChatModel, ReplayModel, ScriptedModel, make_request, total_usage
from trellis.tree import Message

HELLO = [{"role": "user", "content": "hello there"}]


async def test_scripted_returns_in_order_and_records_requests() -> None:
    model = ScriptedModel(["one", "two words", "three"])
    assert isinstance(model, ChatModel)
    first = await model.complete(HELLO, n=2, temperature=0.5)
    assert [c.text for c in first] == ["one", "two words"]
    assert first[1].usage.completion_tokens == 2 and first[0].usage.prompt_tokens == 2
    assert total_usage(first).calls == 2
    assert model.remaining == 1
    assert model.requests[0].temperature == 0.5
    await model.complete(HELLO)
    with pytest.raises(ModelError, match="ran out of responses after 3"):
        await model.complete(HELLO)


async def test_scripted_function() -> None:
    model = ScriptedModel(lambda request, i: f"{request.messages[-1].content}#{i}")
    assert [c.text for c in await model.complete(HELLO, n=3)] == ["hello there#0", "hello there#1", "hello there#2"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n": 0}, "n"), ({"temperature": 3.0}, "temperature"), ({"max_tokens": 0}, "max_tokens")],
)
def test_bad_requests_are_user_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        make_request(HELLO, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="at least one message"):
        make_request([])
    with pytest.raises(UserError):
        make_request([{"role": "robot", "content": "x"}])


def test_request_key_is_stable() -> None:
    a = make_request(HELLO, seed=1)
    b = make_request([Message(role="user", content="hello there")], seed=1)
    assert a.key() == b.key()
    assert a.key() != make_request(HELLO, seed=2).key()


async def test_replay_reproduces_a_recording_exactly(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    inner = ScriptedModel(["a", "b", "c", "d"])
    recorder = ReplayModel.record(inner, cassette)
    recorded = [
        await recorder.complete(HELLO, seed=1),
        await recorder.complete(HELLO, seed=1),  # same request twice: two different answers
        await recorder.complete([{"role": "user", "content": "other"}], n=2, json_schema={"type": "object"}),
    ]
    assert len(cassette.read_text().splitlines()) == 3
    player = ReplayModel(cassette)
    assert len(player) == 3
    replayed = [
        await player.complete(HELLO, seed=1),
        await player.complete(HELLO, seed=1),
        await player.complete([{"role": "user", "content": "other"}], n=2, json_schema={"type": "object"}),
    ]
    assert replayed == recorded
    # once the recordings of a request run out, the last one is served again
    assert await player.complete(HELLO, seed=1) == recorded[1]


async def test_replay_miss_shows_the_request(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    await ReplayModel.record(ScriptedModel(["a"]), cassette).complete(HELLO)
    player = ReplayModel(cassette)
    with pytest.raises(ReplayMissError) as info:
        await player.complete([{"role": "user", "content": "never asked"}], temperature=0.1)
    assert "never asked" in str(info.value) and "holds 1 calls" in str(info.value)


def test_replay_bad_cassettes(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        ReplayModel(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"key": "k"}) + "\n")
    with pytest.raises(UserError, match=r"bad\.jsonl:1"):
        ReplayModel(bad)


async def test_replay_ignores_wall_clock_durations(tmp_path: Path) -> None:
    cassette = tmp_path / "run.jsonl"
    await ReplayModel.record(ScriptedModel(["ok"]), cassette).complete(
        [{"role": "user", "content": "1 passed in 0.45s"}]
    )
    out = await ReplayModel(cassette).complete([{"role": "user", "content": "1 passed in 0.52s"}])
    assert out[0].text == "ok"
    with pytest.raises(ReplayMissError):
        await ReplayModel(cassette).complete([{"role": "user", "content": "2 passed in 0.45s"}])
