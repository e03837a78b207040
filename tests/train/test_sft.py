"""Masked LoRA fine-tuning of a tiny random Qwen2 on CPU: masks, loss, adapters in PEFT and GGUF form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="training needs the train extra (torch)")
pytest.importorskip("peft", reason="training needs the train extra (peft)")
pytest.importorskip("transformers", reason="training needs the train extra (transformers)")

import torch
from tiny_models import conversation, tiny_qwen2, tiny_tokenizer
from trellis.train.sft import IGNORE, SFTConfig, TrainReport, encode, save_adapter, token_loss, train_lora

from trellis.errors import UserError
from trellis.models import load_model

torch.set_num_threads(2)  # a tiny model: more threads only wait on each other


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return tiny_tokenizer()


def test_labels_fall_only_on_the_trained_messages(tokenizer: object) -> None:
    chat = conversation()
    encoded = encode(tokenizer, chat, max_length=4096)
    assert len(encoded.input_ids) == len(encoded.labels)
    text = tokenizer.decode(encoded.input_ids)  # type: ignore[attr-defined]
    assert text == tokenizer.apply_chat_template(chat, tokenize=False)  # type: ignore[attr-defined]
    trained = tokenizer.decode(
        [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE]
    )  # type: ignore[attr-defined]
    # the trained tokens are exactly the two trained assistant messages with their end-of-turn marks
    assert trained == (
        "I realise my approach was wrong.\n\nrevert start<|im_end|>\n"
        "def reverse_string(s: str) -> str:\n    return s[::-1]\n<|im_end|>\n"
    )
    assert "return None" not in trained and "Task" not in trained and "<|im_start|>assistant" not in trained
    # without flags, assistant messages are trained
    plain = [{"role": m["role"], "content": m["content"]} for m in chat]
    assert "return None" in tokenizer.decode(
        [t for t, label in zip(*encode(tokenizer, plain, 4096).model_dump().values(), strict=True) if label != IGNORE]
    )  # type: ignore[attr-defined]


def test_masked_positions_add_nothing_to_the_loss() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 11)
    labels = torch.tensor([[IGNORE, IGNORE, 3, IGNORE, 5, 7]])
    expected = torch.nn.functional.cross_entropy(logits[0, [1, 3, 4]], torch.tensor([3, 5, 7]))
    assert torch.isclose(token_loss(logits, labels), expected)
    # whatever the masked positions' logits, the loss and its gradient there are the same / zero
    logits.requires_grad_(True)
    token_loss(logits, labels).backward()
    assert logits.grad is not None and torch.all(logits.grad[0, [0, 2, 5]] == 0)


def test_a_few_steps_lower_the_loss_and_save_the_adapter(tokenizer: object, tmp_path: Path) -> None:
    model = tiny_qwen2(len(tokenizer))  # type: ignore[arg-type]
    config = SFTConfig(rank=4, lora_alpha=8, learning_rate=3e-2, epochs=5, seed=1)
    adapted, report = train_lora(model, tokenizer, [conversation()] * 2, config)
    assert report.steps == 10 and report.examples == 2 and report.skipped == 0
    assert report.losses[-1] < 0.5 * report.losses[0]
    trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)  # the base stays frozen

    saved = save_adapter(adapted, tmp_path / "adapter", report)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert saved.gguf_adapter == str(tmp_path / "adapter" / "adapter.gguf")
    assert (tmp_path / "adapter" / "train.json").is_file()

    import gguf

    reader = gguf.GGUFReader(str(tmp_path / "adapter" / "adapter.gguf"))
    fields = {name: field for name, field in reader.fields.items()}
    assert bytes(fields["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(fields["adapter.type"].parts[-1]).decode() == "lora"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 8.0
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}
    assert len(shapes) == 2 * 7 * 2  # two layers, seven adapted linear layers, A and B each
    assert shapes["blk.0.attn_q.weight.lora_a"] == (32, 4)  # GGUF order: (in, rank)
    assert shapes["blk.1.ffn_down.weight.lora_b"] == (4, 32)  # (rank, out)


def test_an_example_with_nothing_to_learn_is_refused(tokenizer: object) -> None:
    masked = [{**m, "train": False} for m in conversation()]
    with pytest.raises(UserError, match="no example has a trained token"):
        train_lora(tiny_qwen2(len(tokenizer)), tokenizer, [masked], SFTConfig())  # type: ignore[arg-type]


def test_llama_cpp_applies_the_gguf_adapter_as_peft_does(tokenizer: object, tmp_path: Path) -> None:
    """The GGUF adapter over a GGUF of the same base gives llama.cpp the logits PEFT gives transformers."""
    import llama_cpp
    import numpy as np
    from tiny_models import write_tiny_gguf

    model = tiny_qwen2(len(tokenizer))  # type: ignore[arg-type]
    write_tiny_gguf(model, tokenizer, tmp_path / "base.gguf")
    ids = encode(tokenizer, conversation(), 4096).input_ids[:40]
    with torch.no_grad():
        base_logits = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    config = SFTConfig(rank=4, lora_alpha=8, learning_rate=3e-2, epochs=5, seed=1)
    adapted, report = train_lora(model, tokenizer, [conversation()] * 2, config)
    with torch.no_grad():
        adapted_logits = adapted(input_ids=torch.tensor([ids])).logits[0].numpy()
    saved = save_adapter(adapted, tmp_path / "adapter", report)

    def llama_logits(**lora: str) -> np.ndarray:
        llm = llama_cpp.Llama(model_path=str(tmp_path / "base.gguf"), n_ctx=64, logits_all=True, verbose=False, **lora)
        try:
            llm.eval(ids)
            return np.array(llm.scores[: len(ids)])
        finally:
            llm.close()

    assert np.abs(adapted_logits - base_logits).max() > 1.0  # training moved the model
    assert np.abs(llama_logits() - base_logits).max() < 0.05
    assert np.abs(llama_logits(lora_path=str(saved.gguf_adapter)) - adapted_logits).max() < 0.05
    # the model spec that loads base and adapter together
    spec = load_model(f"gguf:{tmp_path / 'base.gguf'}+lora:{saved.gguf_adapter}", n_ctx=64)
    assert spec.name == f"gguf:base.gguf+lora:{saved.gguf_adapter}"
    assert spec.lora_path == tmp_path / "adapter" / "adapter.gguf"  # type: ignore[attr-defined]


class Killed(Exception):
    pass


def test_a_killed_training_goes_on_from_its_checkpoint(tokenizer: object, tmp_path: Path) -> None:
    config = SFTConfig(rank=4, lora_alpha=8, learning_rate=3e-2, epochs=4, seed=1)
    # different examples, so going on in another order than the unbroken run's would change the losses
    chats = [
        conversation(),
        [{**m, "content": m["content"].replace("s[::-1]", "''.join(reversed(s))")} for m in conversation()],
    ]

    def train(settings: SFTConfig, **options: Any) -> TrainReport:
        """A run as a new process makes it: a fresh base with fresh adapters, then the checkpoint's."""
        _, report = train_lora(tiny_qwen2(len(tokenizer)), tokenizer, chats, settings, **options)  # type: ignore[arg-type]
        return report

    whole = train(config)
    checkpoint = tmp_path / "checkpoint.pt"

    def kill_at_5(step: int, loss: float) -> None:
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train(config, on_step=kill_at_5, checkpoint=checkpoint, checkpoint_every=2)
    assert checkpoint.is_file()
    ran: list[int] = []
    resumed = train(config, on_step=lambda step, loss: ran.append(step), checkpoint=checkpoint, checkpoint_every=2)
    assert ran == [5, 6, 7, 8]  # steps 1-4 were in the checkpoint; step 5 died before its checkpoint
    assert resumed.steps == whole.steps == 8
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-4)  # as if it had never stopped

    other = SFTConfig(rank=4, lora_alpha=8, learning_rate=1e-2, epochs=4, seed=1)
    with pytest.raises(UserError, match="made from other data or settings"):
        train(other, checkpoint=checkpoint)
    with pytest.raises(UserError, match="made from other data or settings"):  # another base under the adapter
        train(config, checkpoint=checkpoint, identity="other")

    # a checkpoint at the step limit: nothing more is trained
    capped = SFTConfig(rank=4, lora_alpha=8, learning_rate=3e-2, epochs=4, seed=1, max_steps=4)
    limit = tmp_path / "limit.pt"
    train(capped, checkpoint=limit, checkpoint_every=4)
    again: list[int] = []
    done = train(capped, on_step=lambda step, loss: again.append(step), checkpoint=limit, checkpoint_every=4)
    assert again == [] and done.steps == 4 and len(done.losses) == 4
