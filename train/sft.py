"""Masked supervised fine-tuning with LoRA (torch + peft): the `train` extra.

Each example is a chat whose messages carry a `train` flag (see `export`). The chat is rendered with
the base model's own chat template one message at a time, so every token is known to belong to one
message: tokens of trained messages are labels, all others are -100 and add nothing to the loss. Of
a trained assistant message, the role header the template puts before it is context too; its
content and end-of-turn tokens are learned.

A run given a checkpoint file saves its progress there every few steps (the adapter's weights, the
optimiser's state, the losses so far) and, started again with the same data and settings, goes on
from the last one instead of starting over.

The base comes from a GGUF file (the embedded model: transformers dequantises it) or a Hugging Face
folder. The adapter is saved in PEFT's format and, for architectures llama.cpp applies adapters to
without reordering weights, as a GGUF LoRA adapter too (`gguf_lora`).

torch, transformers and peft are imported inside the functions here, never at module import.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trellis.errors import UserError
from trellis.models import weights

IGNORE = -100
"""The label of a token that adds nothing to the loss (the cross-entropy's ignore index)."""
TRAIN_FILE = "train.json"
GGUF_ADAPTER = "adapter.gguf"
CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_EVERY = 10
"""Optimiser steps between two checkpoints (`train_lora(checkpoint=...)`)."""


def require_train_extra() -> None:
    """Raise UserError unless torch, transformers and peft can be imported."""
    missing = []
    for name in ("torch", "transformers", "peft"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(f"training needs {', '.join(missing)}: pip install 'trellis[train]'")


class SFTConfig(BaseModel):
    """LoRA fine-tuning settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(default=8, ge=1)
    lora_alpha: int = Field(default=16, ge=1)
    """LoRA scale numerator: the update is scaled by lora_alpha / rank."""
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    """Linear layers that get adapters (those the base model has)."""
    learning_rate: float = Field(default=2e-4, gt=0)
    epochs: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many optimiser steps (default: the epochs decide)."""
    batch_size: int = Field(default=1, ge=1)
    max_length: int = Field(default=2048, ge=8)
    """Longer examples are cut at the end; one left with no trained token is skipped."""
    seed: int = 0


class Encoded(BaseModel):
    """An example as token ids and labels (IGNORE where no loss falls)."""

    model_config = ConfigDict(extra="forbid")

    input_ids: list[int]
    labels: list[int]

    @property
    def trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


class TrainReport(BaseModel):
    """What a training run did."""

    model_config = ConfigDict(extra="forbid")

    examples: int
    skipped: int = 0
    """Examples with no trained token left after cutting to `max_length`."""
    steps: int = 0
    losses: list[float] = Field(default_factory=list)
    trained_tokens: int = 0
    seconds: float = 0.0
    base: str = ""
    adapter: str = ""
    gguf_adapter: str | None = None
    gguf_note: str = ""
    config: dict[str, Any] = Field(default_factory=dict)


def _is_trained(message: dict[str, Any]) -> bool:
    if "train" in message:
        return bool(message["train"])
    if "weight" in message:
        return bool(message["weight"])
    return message.get("role") == "assistant"


def encode(tokenizer: Any, messages: Sequence[dict[str, Any]], max_length: int) -> Encoded:
    """Token ids and labels of a chat, message by message through the tokenizer's chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("the base model's tokenizer has no chat template; use a chat (instruct) model")
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]

    def render(count: int, generation: bool = False) -> str:
        if count == 0:
            return ""
        return str(tokenizer.apply_chat_template(plain[:count], tokenize=False, add_generation_prompt=generation))

    ids: list[int] = []
    labels: list[int] = []

    def add(text: str, trained: bool) -> None:
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        ids.extend(tokens)
        labels.extend(tokens if trained else [IGNORE] * len(tokens))

    before = ""
    for count, message in enumerate(messages, 1):
        upto = render(count)
        if not upto.startswith(before):
            raise UserError(
                "the chat template does not render a chat as the prefix of a longer one, so the tokens of each "
                "message cannot be told apart; use a model whose template does (Qwen2, Llama 3 and most others do)"
            )
        trained = _is_trained(message)
        header = render(count - 1, generation=True) if trained and message["role"] == "assistant" else before
        if header.startswith(before) and upto.startswith(header):
            add(header[len(before) :], False)  # the role header is context, not something to learn
            add(upto[len(header) :], trained)
        else:
            add(upto[len(before) :], trained)
        before = upto
    return Encoded(input_ids=ids[:max_length], labels=labels[:max_length])


def token_loss(logits: Any, labels: Any) -> Any:
    """Mean next-token cross-entropy over the positions whose label is not IGNORE."""
    import torch

    shifted = logits[:, :-1, :].reshape(-1, logits.shape[-1]).float()
    targets = labels[:, 1:].reshape(-1)
    return torch.nn.functional.cross_entropy(shifted, targets, ignore_index=IGNORE)


def batches(encoded: Sequence[Encoded], size: int, pad_id: int) -> list[dict[str, Any]]:
    """Padded tensors (`input_ids`, `attention_mask`, `labels`), `size` examples each."""
    import torch

    out = []
    for start in range(0, len(encoded), size):
        group = encoded[start : start + size]
        width = max(len(e.input_ids) for e in group)
        ids = [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in group]
        mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in group]
        labels = [e.labels + [IGNORE] * (width - len(e.labels)) for e in group]
        out.append(
            {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}
        )
    return out


def add_lora(model: Any, config: SFTConfig) -> Any:
    """`model` wrapped with fresh LoRA adapters on the configured layers it has."""
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in config.target_modules if t in names]
    if not targets:
        raise UserError(f"the base model has none of the layers {list(config.target_modules)} to put adapters on")
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def train_lora(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[dict[str, Any]]],
    config: SFTConfig,
    *,
    on_step: Callable[[int, float], None] | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    identity: str = "",
) -> tuple[Any, TrainReport]:
    """Fine-tune LoRA adapters on `conversations`; returns the adapted model and what happened.

    `checkpoint`: a file to save progress in every `checkpoint_every` steps; where it exists, training
    goes on from it (the same steps in the same order, so on the CPU, or without dropout, a killed
    run ends as an unbroken one would). A checkpoint made with other data, settings or `identity`
    (what the caller trains on top of: the base model's spec, an adapter it continues) is refused."""
    import torch

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    encoded = [encode(tokenizer, messages, config.max_length) for messages in conversations]
    usable = [e for e in encoded if e.trained]
    report = TrainReport(
        examples=len(usable), skipped=len(encoded) - len(usable), config=config.model_dump(mode="json")
    )
    if not usable:
        raise UserError("no example has a trained token; check the dataset's `train` flags or raise --max-length")
    peft_model = model if hasattr(model, "peft_config") else add_lora(model, config)
    peft_model.train()
    trainable = {name: p for name, p in peft_model.named_parameters() if p.requires_grad}
    optimiser = torch.optim.AdamW(list(trainable.values()), lr=config.learning_rate)
    device = next(peft_model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    digest = _digest(usable, config, identity)
    done = _resume(checkpoint, digest, trainable, optimiser, report) if checkpoint is not None else 0
    rng = random.Random(config.seed)
    steps = 0
    for _ in range(config.epochs):
        order = list(usable)
        rng.shuffle(order)
        for batch in batches(order, config.batch_size, pad_id):
            steps += 1
            if steps <= done:  # trained before the checkpoint: the same batch, already learned
                if config.max_steps is not None and steps >= config.max_steps:
                    break
                continue
            batch = {key: value.to(device) for key, value in batch.items()}
            logits = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = token_loss(logits, batch["labels"])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            report.losses.append(float(loss.detach()))
            if checkpoint is not None and steps % checkpoint_every == 0:
                _save_checkpoint(checkpoint, digest, steps, trainable, optimiser, report.losses)
            if on_step is not None:
                on_step(steps, report.losses[-1])
            if config.max_steps is not None and steps >= config.max_steps:
                break
        if config.max_steps is not None and steps >= config.max_steps:
            break
    report.steps = steps
    report.trained_tokens = sum(e.trained for e in usable)
    report.seconds = time.perf_counter() - started
    peft_model.eval()
    return peft_model, report


def _digest(usable: Sequence[Encoded], config: SFTConfig, identity: str) -> str:
    """What a checkpoint must have been made from: the encoded examples, the settings and the base."""
    data = json.dumps([[e.input_ids, e.labels] for e in usable]) + config.model_dump_json() + identity
    return hashlib.sha256(data.encode()).hexdigest()


def _save_checkpoint(
    path: Path, digest: str, steps: int, trainable: dict[str, Any], optimiser: Any, losses: list[float]
) -> None:
    import torch

    state = {
        "digest": digest,
        "steps": steps,
        "losses": list(losses),
        "weights": {name: p.detach().cpu().clone() for name, p in trainable.items()},
        "optimiser": optimiser.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)  # whole or not at all


def _resume(path: Path, digest: str, trainable: dict[str, Any], optimiser: Any, report: TrainReport) -> int:
    """Load the checkpoint at `path` into the adapter and optimiser; the steps it holds (0 without one)."""
    import torch

    if not path.is_file():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds of error for a damaged file
        raise UserError(f"checkpoint {path} cannot be read ({exc}); delete it to train from the start") from exc
    shapes = {name: tuple(tensor.shape) for name, tensor in state.get("weights", {}).items()}
    if state.get("digest") != digest or shapes != {name: tuple(p.shape) for name, p in trainable.items()}:
        raise UserError(
            f"checkpoint {path} was made from other data or settings; delete it to train from the start, "
            "or train with what made it"
        )
    with torch.no_grad():
        for name, parameter in trainable.items():
            parameter.copy_(state["weights"][name].to(parameter.device))
    optimiser.load_state_dict(state["optimiser"])
    torch.set_rng_state(state["torch_rng"])
    report.losses = list(state["losses"])
    return int(state["steps"])


def base_source(spec: str) -> tuple[Path, str | None]:
    """Where a base model spec's weights are: (folder, GGUF file name in it or None for a HF folder).

    `embedded[:NAME]` is an embedded model's GGUF; `gguf:PATH` or a path ending in .gguf any GGUF
    file; anything else a local Hugging Face folder (with config.json).
    """
    backend, _, rest = spec.partition(":")
    if backend == "embedded":
        name = rest or weights.DEFAULT_EMBEDDED
        if name not in weights.EMBEDDED_MODELS:
            raise UserError(f"unknown embedded model {name!r}; see `trellis models`")
        path = weights.resolve(name)
        return path.parent, path.name
    if backend == "gguf" or spec.endswith(".gguf"):
        path = Path(rest if backend == "gguf" else spec).expanduser()
        if not path.is_file():
            raise UserError(f"GGUF file {path} does not exist; give the path to a .gguf model file")
        return path.parent, path.name
    folder = Path(spec).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(
            f"base model {spec!r} is not an embedded model, a GGUF file or a Hugging Face folder with config.json; "
            "give --base embedded, --base gguf:/path/model.gguf or --base /path/to/hf-folder"
        )
    return folder, None


def load_base(spec: str) -> tuple[Any, Any]:
    """The base model (float32, on the GPU where there is one) and its tokenizer; GGUF weights are dequantised
    by transformers."""
    require_train_extra()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf_file = base_source(spec)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, **extra)
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, dtype=torch.float32, **extra
        )
    except (OSError, ValueError) as exc:
        raise UserError(f"transformers cannot load base model {spec!r} ({exc})") from exc
    if torch.cuda.is_available():  # train where the GPU is; the adapter is saved from there as from the CPU
        model = model.to("cuda")
    return model, tokenizer


def save_adapter(model: Any, out: Path, report: TrainReport) -> TrainReport:
    """Save the adapter in PEFT's format in `out`, and as `adapter.gguf` where the architecture allows."""
    from trellis.train.gguf_lora import UnsupportedArchitecture, write_gguf_lora

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    report = report.model_copy(update={"adapter": str(out)})
    try:
        base = model.get_base_model().config
        path = write_gguf_lora(out, out / GGUF_ADAPTER, model_type=base.model_type, layers=base.num_hidden_layers)
    except UnsupportedArchitecture as exc:
        report = report.model_copy(update={"gguf_note": str(exc)})
    else:
        report = report.model_copy(update={"gguf_adapter": str(path)})
    (out / TRAIN_FILE).write_text(json.dumps(report.model_dump(mode="json"), indent=1), encoding="utf-8")
    return report
