"""SWE-bench instances, their loaders, and predictions files in the official format."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trellis.errors import UserError
from trellis.records import json_records


class SWEInstance(BaseModel):
    """One SWE-bench task, with every field of the dataset."""

    model_config = ConfigDict(extra="allow")

    instance_id: str
    repo: str
    base_commit: str
    patch: str = ""
    """The reference (gold) patch."""
    test_patch: str = ""
    problem_statement: str = ""
    hints_text: str = ""
    created_at: str = ""
    version: str = ""
    environment_setup_commit: str = ""
    FAIL_TO_PASS: list[str] = Field(default_factory=list)
    PASS_TO_PASS: list[str] = Field(default_factory=list)
    test_cmd: str | None = None
    """Overrides the test command trellis derives for the repository."""

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # the Hugging Face layout stores these lists as JSON strings
            try:
                return json.loads(value) if value.strip() else []
            except ValueError as exc:
                raise ValueError(f"expected a JSON list of test ids, got {value[:80]!r}") from exc
        return value

    @property
    def test_files(self) -> list[str]:
        """Files the test patch touches."""
        return patch_files(self.test_patch)


def patch_files(patch: str) -> list[str]:
    files = []
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            parts = line.split()
            if len(parts) >= 4 and parts[3].startswith("b/"):
                files.append(parts[3][2:])
    return files


HF_DATASETS = {
    "lite": "SWE-bench/SWE-bench_Lite",
    "verified": "SWE-bench/SWE-bench_Verified",
    "full": "SWE-bench/SWE-bench",
}


def _records(path: Path) -> Iterable[dict[str, Any]]:
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise UserError("reading parquet needs pyarrow: pip install pyarrow") from exc
        yield from pq.read_table(path).to_pylist()
        return
    yield from json_records(path, "give a JSON list or a JSON Lines file of instances")


def load_instances(source: str | Path, split: str = "test") -> list[SWEInstance]:
    """Instances from a JSON, JSONL or parquet file, or a Hugging Face dataset name (online only)."""
    path = Path(source)
    if path.is_dir():
        raise UserError(f"instances file {path} is a folder; give the .json, .jsonl or .parquet file inside it")
    if path.exists():
        try:
            instances = [SWEInstance.model_validate(record) for record in _records(path)]
        except OSError as exc:
            raise UserError(f"cannot read instances file {path}: {exc}") from exc
        except ValueError as exc:
            raise UserError(f"{path} holds an invalid SWE-bench instance: {exc}") from exc
        if not instances:
            raise UserError(f"instances file {path} holds no instances; give a SWE-bench .json/.jsonl/.parquet file")
        twice = sorted(i for i, n in Counter(x.instance_id for x in instances).items() if n > 1)
        if twice:
            raise UserError(f"{path} holds instances more than once: {twice[:5]}; keep one line per instance id")
        return instances
    name = HF_DATASETS.get(str(source).lower(), str(source))
    looks_like_file = path.suffix in (".json", ".jsonl", ".parquet") or str(source).startswith(("/", "."))
    if "/" not in name or looks_like_file:
        raise UserError(f"no instances file {source}; give a .json/.jsonl/.parquet file or one of {list(HF_DATASETS)}")
    try:
        import datasets
    except ImportError as exc:
        raise UserError(
            f"{source} is not a file; loading {name} from Hugging Face needs `pip install datasets`"
        ) from exc
    try:
        rows = datasets.load_dataset(name, split=split)
    except Exception as exc:
        raise UserError(f"could not load {name} from Hugging Face (is this machine online?): {exc}") from exc
    return [SWEInstance.model_validate(dict(row)) for row in rows]


def select(instances: list[SWEInstance], ids: Iterable[str]) -> list[SWEInstance]:
    """The instances with these ids, in the order given, each once; an unknown id is a UserError."""
    by_id = {i.instance_id: i for i in instances}
    wanted = list(dict.fromkeys(ids))
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise UserError(f"unknown instance ids {missing}; the file holds {sorted(by_id)[:10]}")
    return [by_id[i] for i in wanted]


class Prediction(BaseModel):
    """One line of a predictions JSONL file, in the official format."""

    model_config = ConfigDict(extra="allow")

    instance_id: str
    model_name_or_path: str
    model_patch: str | None


def read_predictions(path: str | Path) -> list[Prediction]:
    """Every prediction in a JSON or JSONL file, in file order (see `unique_predictions`)."""
    file = Path(path)
    if file.is_dir():
        raise UserError(f"predictions file {file} is a folder; give the predictions .jsonl file")
    if not file.exists():
        raise UserError(f"predictions file {file} does not exist")
    try:
        return [Prediction.model_validate(record) for record in _records(file)]
    except OSError as exc:
        raise UserError(f"cannot read predictions file {file}: {exc}") from exc
    except ValueError as exc:
        raise UserError(f"{file} holds an invalid prediction: {exc}") from exc


def unique_predictions(predictions: Iterable[Prediction]) -> tuple[list[Prediction], list[str]]:
    """One prediction per instance, as the official harness keeps them (the last one of an id wins,
    in the place of the id's first), and the ids that appeared more than once."""
    kept: dict[str, Prediction] = {}
    counts: dict[str, int] = {}
    for prediction in predictions:
        kept[prediction.instance_id] = prediction
        counts[prediction.instance_id] = counts.get(prediction.instance_id, 0) + 1
    return list(kept.values()), [i for i, n in counts.items() if n > 1]


def write_predictions(path: str | Path, predictions: Iterable[Prediction]) -> None:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", encoding="utf-8") as out:
        for prediction in predictions:
            out.write(prediction.model_dump_json() + "\n")
