"""Shared fixtures. Tests never reach outside this machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trellis.models import weights


def _require(name: str) -> weights.EmbeddedModelInfo:
    info = weights.get_info(name)
    if not weights.is_installed(info):
        pytest.skip(f"embedded model {name} is not installed ({info.install})")
    return info


@pytest.fixture(scope="session")
def qwen_path() -> str:
    _require("qwen2.5-coder-0.5b")
    return str(weights.resolve("qwen2.5-coder-0.5b"))


@pytest.fixture(scope="session")
def smollm_path() -> str:
    _require("smollm2-135m")
    return str(weights.resolve("smollm2-135m"))


@pytest.fixture(scope="session")
def qwen(qwen_path: str) -> Iterator[object]:
    """The default embedded model, loaded once for the session."""
    from trellis.models.embedded import EmbeddedModel

    model = EmbeddedModel("qwen2.5-coder-0.5b", n_ctx=4096)
    yield model
    if model._llm is not None:
        model._llm.close()
