"""Agent-R's loop end to end: a scripted model searches real code-task worlds (bwrap), revisions are
spliced and replayed, a tiny random Qwen2 is really trained (LoRA, CPU), and the adapter is served
through the loop's model loader. Then: a finished loop is not redone, a killed one resumes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the loop's training needs the train extra (torch)")
pytest.importorskip("peft", reason="the loop's training needs the train extra (peft)")
pytest.importorskip("transformers", reason="the loop's training needs the train extra (transformers)")

import torch
from loop_models import loop_model
from tiny_models import tiny_qwen2, tiny_tokenizer, write_tiny_gguf
from trellis.train.adapters import Adapter, load_adapted
from trellis.train.loop import (
    DONE,
    RESULTS,
    TRIAL,
    AgentRLoop,
    IterationRecord,
    LoopConfig,
    Trial,
    train_adapter,
)
from trellis.train.pairs import PairConfig
from trellis.train.revise import ReviseConfig
from trellis.train.sft import CHECKPOINT_FILE, SFTConfig, TrainReport, load_base, train_lora

from trellis.errors import UserError
from trellis.models import ScriptedModel
from trellis.models.base import ChatModel

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")
torch.set_num_threads(2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny Qwen2 as a Hugging Face folder (what the adapter trains on) and as a GGUF (what searches)."""
    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = tiny_tokenizer()
    model = tiny_qwen2(len(tokenizer))
    model.save_pretrained(folder / "base")
    tokenizer.save_pretrained(folder / "base")
    write_tiny_gguf(model, tokenizer, folder / "tiny.gguf")
    return folder / "base", folder / "tiny.gguf"


def settings(tiny: tuple[Path, Path]) -> LoopConfig:
    base, gguf = tiny
    return LoopConfig(
        train=["reverse_string"],
        eval=["count_vowels"],
        model=f"gguf:{gguf}",
        base=str(base),
        budget=4000,
        sft=SFTConfig(rank=4, lora_alpha=8, learning_rate=3e-2, epochs=2, max_length=4096, seed=1),
    )


class Loader:
    """Serves the scripted model for the search spec: the starting one without an adapter, the trained
    one with any; records what it was asked for."""

    def __init__(self, stall_after: int | None = None) -> None:
        self.calls: list[tuple[str, Adapter | None]] = []
        self.stall_after = stall_after
        self.stalled = asyncio.Event()

    async def __call__(self, spec: str, adapter: Adapter | None) -> ChatModel:
        self.calls.append((spec, adapter))
        model = loop_model(trained=adapter is not None)
        return model if self.stall_after is None else Stalling(model, self.stall_after, self.stalled)


class Stalling:
    """Answers like `inner` for `calls` requests, then waits forever (to be cancelled: a kill mid-search)."""

    def __init__(self, inner: ScriptedModel, calls: int, stalled: asyncio.Event) -> None:
        self.inner, self.left, self.name, self.stalled = inner, calls, inner.name, stalled

    async def complete(self, *args: Any, **kwargs: Any) -> Any:
        if self.left <= 0:
            self.stalled.set()
            await asyncio.Event().wait()
        self.left -= 1
        return await self.inner.complete(*args, **kwargs)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def finished(tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any], Loader]:
    out = tmp_path_factory.mktemp("loop") / "agent-r"
    loader = Loader()
    records = asyncio.run(AgentRLoop(settings(tiny), out, loader=loader).run(2))
    return out, records, loader


def test_two_iterations_search_revise_train_reload_and_evaluate(
    finished: tuple[Path, list[IterationRecord], Loader], tiny: tuple[Path, Path]
) -> None:
    out, records, loader = finished
    assert [r.iteration for r in records] == [0, 1, 2]
    start, first, second = records
    # iteration 0: the starting model on the held-out task only
    assert start.search is None and start.train is None and start.eval is not None
    assert [(t.task, t.seed) for t in start.eval.trials] == [("count_vowels", 0)]
    assert start.eval.solved == 1  # checked by the hidden tests at the final node
    # iteration 1: the training task searched (seed 100), two pairs per tree spliced and replayed
    assert first.search is not None and [(t.task, t.seed) for t in first.search.trials] == [("reverse_string", 100)]
    assert first.revise is not None and first.revise.verified == first.revise.pairs >= 2
    rows = (out / "iter-1" / "revise" / "revisions.jsonl").read_text().splitlines()
    assert len(rows) == first.revise.verified
    assert all(any(m["train"] for m in json.loads(row)["messages"]) for row in rows)
    # a real LoRA adapter on the tiny base, from scratch in iteration 1, continued in iteration 2
    assert first.train is not None and first.train.trained and first.train.started_from == "base"
    assert first.train.steps == 2 * first.revise.verified and len(first.train.losses) == first.train.steps
    adapter = first.train.adapter
    assert adapter is not None and adapter.folder == str(out / "iter-1" / "train" / "adapter")
    assert Path(adapter.folder, "adapter_model.safetensors").is_file()
    assert adapter.gguf == str(Path(adapter.folder) / "adapter.gguf")
    half = first.train.steps // 2
    assert sum(first.train.losses[half:]) < sum(first.train.losses[:half])  # the second epoch fits better
    assert second.train is not None and second.train.started_from == adapter.folder
    assert second.search is not None and second.search.trials[0].seed == 200
    # each model is loaded once, when a stage first needs it: the start, then each iteration's adapter
    second_adapter = second.train.adapter
    assert loader.calls == [
        (f"gguf:{tiny[1]}", None),
        (f"gguf:{tiny[1]}", adapter),
        (f"gguf:{tiny[1]}", second_adapter),
    ]
    assert first.model == f"gguf:{tiny[1]} + adapter 1" and second.model == f"gguf:{tiny[1]} + adapter 2"
    assert first.eval is not None and first.eval.solved == 1
    # the default loader serves the same adapter with llama.cpp over the GGUF base
    served = asyncio.run(load_adapted(f"gguf:{tiny[1]}", adapter))
    assert served.name.endswith(f"+lora:{adapter.gguf}")
    asyncio.run(served.aclose())
    saved = json.loads((out / RESULTS).read_text())
    assert [IterationRecord.model_validate(r) for r in saved] == records


def test_a_finished_loop_is_not_redone(finished: tuple[Path, list[IterationRecord], Loader], tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out, symlinks=True)

    async def no_model(spec: str, adapter: Adapter | None) -> ChatModel:
        raise AssertionError("a finished stage asked for a model")

    def no_training(*args: Any) -> TrainReport:
        raise AssertionError("a finished stage trained again")

    config = LoopConfig.model_validate(json.loads((out / "agent_r.json").read_text()))
    again = asyncio.run(AgentRLoop(config, out, loader=no_model, trainer=no_training).run(2))
    assert again == finished[1]
    # other settings in the same folder are refused
    other = config.model_copy(update={"budget": 999})
    with pytest.raises(UserError, match="other settings \\(budget differ\\)"):
        asyncio.run(AgentRLoop(other, out, loader=no_model).run(2))


def test_a_killed_loop_resumes_its_search_and_its_training(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "agent-r"
    config = settings(tiny)

    async def killed_mid_search() -> None:
        loader = Loader(stall_after=3)
        task = asyncio.create_task(AgentRLoop(config, out, loader=loader).run(1))
        await asyncio.wait({task, asyncio.create_task(loader.stalled.wait())}, return_when=asyncio.FIRST_COMPLETED)
        assert loader.stalled.is_set() and not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(killed_mid_search())
    trial = out / "iter-0" / "eval" / "count_vowels-0"
    assert (trial / "run" / "tree.db").is_file() and not (trial / TRIAL).exists()
    assert not (out / "iter-0" / "eval" / DONE).exists()

    def killed_training(base: str, conversations: Any, sft: SFTConfig, adapter: Path, previous: Any) -> TrainReport:
        model, tokenizer = load_base(base)

        def die(step: int, loss: float) -> None:
            if step == 2:
                adapter.mkdir(parents=True)
                (adapter / "half-written").write_text("x")
                raise RuntimeError("killed while training")

        checkpoint = adapter.parent / CHECKPOINT_FILE
        # as the loop's own trainer does it: the base is what the checkpoint was made on
        train_lora(
            model, tokenizer, conversations, sft, on_step=die, checkpoint=checkpoint, checkpoint_every=1, identity=base
        )
        raise AssertionError("not killed")

    with pytest.raises(RuntimeError, match="killed while training"):
        asyncio.run(AgentRLoop(config, out, loader=Loader(), trainer=killed_training).run(1))
    checkpoint = out / "iter-1" / "train" / CHECKPOINT_FILE
    state = torch.load(checkpoint, weights_only=True)
    assert state["steps"] == 2
    state["losses"] = [99.0, 98.0]  # marked, so the stage's losses show where training went on from
    torch.save(state, checkpoint)
    resumed = Trial.model_validate_json((trial / TRIAL).read_text())
    assert resumed.resumed and resumed.solved
    for stage in ("iter-0/eval", "iter-1/search", "iter-1/revise"):
        assert (out / stage / DONE).is_file(), stage
    assert not (out / "iter-1" / "train" / DONE).exists()

    loader = Loader()
    records = asyncio.run(AgentRLoop(config, out, loader=loader, trainer=train_adapter).run(1))
    assert records[1].train is not None and records[1].train.trained
    assert records[1].train.losses[:2] == [99.0, 98.0]  # went on from the checkpoint, not from the start
    assert not checkpoint.exists()  # the adapter is whole: the checkpoint is gone
    assert not (out / "iter-1" / "train" / "adapter" / "half-written").exists()
    assert loader.calls == [(config.model, records[1].train.adapter)]  # only the new model's evaluation ran


def test_an_iteration_without_revisions_keeps_its_model(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "agent-r"
    # no leaf's value exceeds alpha = 1: no pair, no revision
    config = settings(tiny).model_copy(update={"revise": ReviseConfig(pairs=PairConfig(alpha=1.0))})

    def no_training(*args: Any) -> TrainReport:
        raise AssertionError("trained without data")

    records = asyncio.run(AgentRLoop(config, out, loader=Loader(), trainer=no_training).run(1))
    train = records[1].train
    assert train is not None and not train.trained and train.adapter is None and "nothing to train" in train.note
    assert records[1].model == config.model


def test_a_folder_that_holds_something_else_is_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match=r"is not empty and holds no agent_r\.json"):
        asyncio.run(AgentRLoop(settings(tiny), tmp_path, loader=Loader()).run(1))
