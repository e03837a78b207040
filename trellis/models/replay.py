"""`ReplayModel`: record any backend's completions into a JSONL cassette, and play them back.

Each line holds one call: the request's key, the request itself and its completions. On replay the
k-th identical request gets the k-th recorded answer (the last one once they run out, which is what
a seeded backend would return again); a request the cassette never saw raises `ReplayMissError`
showing that request.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from trellis.errors import ReplayMissError, UserError
from trellis.models.base import BaseChatModel, ChatModel, Completion, CompletionRequest


class ReplayModel(BaseChatModel):
    """Replays a cassette, or records into it when given an inner model."""

    def __init__(self, path: str | Path, *, inner: ChatModel | None = None) -> None:
        self.path = Path(path)
        self.inner = inner
        self.name = f"record:{self.path}" if inner else f"replay:{self.path}"
        self._entries: dict[str, list[list[Completion]]] = defaultdict(list)
        self._seen: dict[str, int] = defaultdict(int)
        if inner is None and not self.path.exists():
            raise UserError(f"cassette {self.path} does not exist; record one with --record {self.path}")
        if self.path.exists():
            self._read()

    @classmethod
    def record(cls, inner: ChatModel, path: str | Path) -> ReplayModel:
        """Wrap `inner` so that every call is appended to the cassette at `path`."""
        return cls(path, inner=inner)

    def _read(self) -> None:
        for lineno, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                completions = [Completion.model_validate(c) for c in entry["completions"]]
                self._entries[entry["key"]].append(completions)
            except (ValueError, KeyError) as exc:
                raise UserError(f"{self.path}:{lineno} is not a cassette entry ({exc}); re-record it") from exc

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    async def generate(self, request: CompletionRequest) -> list[Completion]:
        key = request.key()
        if self.inner is not None:
            completions = await self.inner.complete(
                request.messages,
                n=request.n,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                stop=request.stop,
                seed=request.seed,
                json_schema=request.json_schema,
                logprobs=request.logprobs,
            )
            entry = {
                "key": key,
                "request": request.model_dump(mode="json"),
                "completions": [c.model_dump(mode="json") for c in completions],
            }
            self._entries[key].append(completions)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
            return completions
        recorded = self._entries.get(key)
        if not recorded:
            shown = json.dumps(request.model_dump(mode="json"), indent=1)
            if len(shown) > 2000:
                shown = shown[:2000] + "\n…"
            raise ReplayMissError(
                f"cassette {self.path} has no recording of this request (key {key[:12]}); "
                f"it holds {len(self)} calls. Re-record the run. The request:\n{shown}"
            )
        k = self._seen[key]
        self._seen[key] += 1
        return [c.model_copy(deep=True) for c in recorded[min(k, len(recorded) - 1)]]

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()
