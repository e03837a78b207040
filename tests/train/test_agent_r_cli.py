"""`trellis agent-r`'s inputs (task selections, models, folders), the loop's table, and serving an
adapter through a vLLM server's run-time LoRA loading. None of it needs torch."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console
from test_cli_train import run_cli
from trellis.envs.tasks.catalog import TASKS
from trellis.train.adapters import Adapter, default_base, load_adapted
from trellis.train.loop import IterationRecord, ReviseStage, SearchStage, TrainStage, Trial, iteration_table
from trellis.train.selection import level_split, select_tasks

from trellis.errors import UserError

GOLDEN = Path(__file__).parents[1] / "data" / "views" / "agent_r_table.txt"


def test_the_fixed_split_holds_out_two_tasks_of_each_level() -> None:
    train, held = level_split()
    assert (len(train), len(held)) == (25, 10)
    assert {t.id for t in train}.isdisjoint(t.id for t in held) and len(train) + len(held) == len(TASKS)
    for level in {t.level for t in TASKS}:
        assert sum(t.level == level for t in held) == 2
    assert [t.id for t in select_tasks("split:eval")] == [t.id for t in select_tasks("split:eval:10")]
    # a count keeps the first N spread over the levels, easiest first
    assert [t.level for t in select_tasks("split:train:6")] == [1, 2, 3, 4, 5, 1]
    assert [t.level for t in select_tasks("level:2-3:3")] == [2, 3, 2]
    assert [t.id for t in select_tasks("fizzbuzz,reverse_string")] == ["fizzbuzz", "reverse_string"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", "nope", "--eval", "split:eval"], "--train: unknown code task 'nope'"),
        (["--train", "split:train", "--eval", "fizzbuzz,fizzbuzz"], "--eval: task 'fizzbuzz' is named twice"),
        (["--train", "split:train:0", "--eval", "split:eval"], "the count after the last colon must be"),
        (["--train", "level:6", "--eval", "split:eval"], "levels run from 1 to 5"),
        (["--train", "level:3-1", "--eval", "split:eval"], "levels run from 1 to 5"),
        (["--train", "level:x", "--eval", "split:eval"], "levels are written 2 or 1-3"),
        (["--train", "split:test", "--eval", "split:eval"], "the split is split:train or split:eval"),
        (["--train", "tasks:3", "--eval", "split:eval"], "unknown selection 'tasks'"),
        (["--train", " ", "--eval", "split:eval"], "--train is empty"),
        (["--train", "split:eval", "--eval", "split:eval:1"], "is in both --train and --eval"),
        (["--train", "split:train", "--eval", "split:eval", "--model", "replay:x.jsonl"], "not 'replay' ones"),
        (["--train", "split:train", "--eval", "split:eval", "--model", "embedded+lora:a.gguf"], "without an adapter"),
        (["--train", "split:train", "--eval", "split:eval", "--model", "openai:http://h/v1#m"], "give --base"),
        (["--train", "split:train", "--eval", "split:eval", "--base", "{tmp}"], "is not an embedded model"),
    ],
)
def test_bad_input_is_a_one_line_error(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["agent-r", *[a.replace("{tmp}", str(tmp_path)) for a in args], "--iterations", "1"]
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "loop")], capsys)
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "loop").exists()  # nothing was started


def test_the_pairing_settings_reach_the_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import trellis.train.loop as loop
    import trellis.train.sft as sft

    seen: list[Any] = []

    class Recorder:
        def __init__(self, config: Any, out: Path, **_: Any) -> None:
            seen.append(config)

        async def run(self, iterations: int) -> list[IterationRecord]:
            return []

    monkeypatch.setattr(loop, "AgentRLoop", Recorder)
    monkeypatch.setattr(sft, "require_train_extra", lambda: None)
    argv = ["agent-r", "--train", "fizzbuzz", "--eval", "reverse_string", "--iterations", "1"]
    argv += ["--alpha", "0.7", "--beta", "0.3", "--max-pairs", "2", "--no-locate", "--out", str(tmp_path / "loop")]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    (config,) = seen
    pairs = config.revise.pairs
    assert (pairs.alpha, pairs.beta, pairs.max_pairs, config.revise.locate) == (0.7, 0.3, 2, False)


def test_the_table_golden() -> None:
    solved = Trial(task="a", seed=0, solved=True, tokens=1200, nodes=5, seconds=12.0)
    missed = Trial(task="b", seed=0, solved=False, tokens=800, nodes=9, seconds=30.0)
    records = [
        IterationRecord(iteration=0, model="embedded", eval=SearchStage(trials=[solved, missed])),
        IterationRecord(
            iteration=1,
            model="embedded + adapter 1",
            search=SearchStage(trials=[missed, missed]),
            revise=ReviseStage(pairs=4, spliced=4, verified=3, seconds=20.0),
            train=TrainStage(trained=True, steps=3, losses=[1.5, 1.25, 0.75], seconds=90.0),
            eval=SearchStage(trials=[solved, solved]),
        ),
        IterationRecord(
            iteration=2,
            model="embedded + adapter 1",
            search=SearchStage(trials=[solved, missed]),
            revise=ReviseStage(),
            train=TrainStage(note="no verified revision trajectory"),
            eval=SearchStage(trials=[solved, missed]),
        ),
    ]
    console = Console(width=190, color_system=None, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(iteration_table(records))
    text = console.export_text()
    if os.environ.get("TRELLIS_UPDATE_GOLDENS"):
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"missing golden {GOLDEN}; run with TRELLIS_UPDATE_GOLDENS=1"
    assert text == GOLDEN.read_text()


def test_the_base_follows_the_search_model() -> None:
    assert default_base("embedded", None) == "embedded"
    assert default_base("gguf:/m.gguf", None) == "gguf:/m.gguf"
    assert default_base("openai:http://h/v1#m", "/weights/m") == "/weights/m"


class _Server(BaseHTTPRequestHandler):
    posts: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    answer = (200, "Success")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).posts.append((self.path, body))
        self.send_response(self.answer[0])
        self.end_headers()
        self.wfile.write(self.answer[1].encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Server.posts, _Server.answer = [], (200, "Success")
    httpd = HTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_an_adapter_is_loaded_into_a_vllm_server_and_asked_for_by_name(server: str, tmp_path: Path) -> None:
    adapter = Adapter(iteration=3, folder=str(tmp_path / "adapter"))
    model = asyncio.run(load_adapted(f"openai:{server}#Qwen/Qwen2.5-Coder-7B-Instruct", adapter))
    assert _Server.posts == [
        ("/v1/load_lora_adapter", {"lora_name": adapter.served_name, "lora_path": str(tmp_path / "adapter")})
    ]
    assert adapter.served_name.startswith("agent-r-") and adapter.served_name.endswith("-iter-3")
    assert adapter.served_name in model.name
    asyncio.run(model.aclose())
    # a server without run-time LoRA loading says so, and the error says how to start it
    _Server.answer = (404, "Not Found")
    with pytest.raises(UserError, match="start vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"):
        asyncio.run(load_adapted(f"openai:{server}#m", adapter))


def test_an_adapter_without_a_gguf_form_cannot_go_to_llama_cpp(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"has no GGUF form for llama\.cpp"):
        asyncio.run(load_adapted("embedded", Adapter(iteration=1, folder=str(tmp_path))))
