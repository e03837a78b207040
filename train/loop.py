"""Agent-R's iterative self-training on code tasks: search, revise, train, reload, evaluate, again.

Iteration 0 evaluates the starting model on the held-out tasks. Each iteration n >= 1 then:

1. search: every training task (each seed) with the current model: MCTS with UCT, c = 0.25, as
   Agent-R searches, the root opened with the task's focused prompt, the `revert` tool offered;
2. revise: pairs labelled by the hidden tests, first errors found by the current model, splices
   replayed in fresh worlds (`revise`), written as a dataset;
3. train: a LoRA adapter on the verified revision trajectories. By default it continues from the
   previous iteration's adapter (that adapter is the model that searched, so its revisions are
   corrections of it, and what earlier iterations taught is kept without training on all old data
   again); `continue_training=False` trains a fresh adapter on the base with every iteration's data.
   An iteration with no verified trajectory trains nothing and keeps the model it had;
4. eval: every held-out task (each seed) with the base plus the adapter; solved = the final answer
   passes the hidden tests, which neither the search nor the training sees.

Everything is kept under the loop's folder, one folder per stage:

    FOLDER/agent_r.json                  the loop's settings (a rerun must use the same)
    FOLDER/results.json                  one record per iteration, rewritten after every stage
    FOLDER/iter-N/search/TASK-SEED/      run/ (the search's run folder), repo/, trial.json
    FOLDER/iter-N/revise/                runs/*.json (one per searched run), the dataset, done.json
    FOLDER/iter-N/train/                 adapter/ (PEFT, adapter.gguf, train.json), done.json, checkpoint.pt
    FOLDER/iter-N/eval/TASK-SEED/        as search/

A stage's `done.json` is written last: a stage that has one is skipped on a rerun. Inside a stage a
finished search (`trial.json`) or revised run is not redone, a search killed halfway is resumed from
its run folder (`run_search(resume=True)`), and a killed training goes on from its last checkpoint
(`train/checkpoint.pt`, every 10 steps).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table
from trellis.agents.first_error import FirstErrorLocator
from trellis.agents.prompts import completion_prompt
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.catalog import CodeTask
from trellis.envs.tasks.world import REVISION_TOOLS, SOLUTION, CodeTaskWorld, fresh_task_repository, get_task
from trellis.search.config import SearchConfig, SelectorConfig, token_budget_mcts
from trellis.search.run import RunDir, run_search
from trellis.train.adapters import Adapter, ModelLoader, describe, load_adapted
from trellis.train.export import load_conversations, write_dataset
from trellis.train.revise import ReviseConfig, ReviseResult, revise_runs
from trellis.train.sft import CHECKPOINT_FILE, SFTConfig, TrainReport

from trellis.errors import UserError
from trellis.models.base import ChatModel
from trellis.world import Opening

SETTINGS = "agent_r.json"
RESULTS = "results.json"
DONE = "done.json"
TRIAL = "trial.json"
ADAPTER = "adapter"
UCT_C = 0.25
"""Agent-R's exploration constant."""

Progress = Callable[[str], None]
Stage = TypeVar("Stage", bound=BaseModel)


def search_config(budget: int, seed: int) -> SearchConfig:
    """The search of every loop stage: the search benchmark's MCTS budget shape with Agent-R's UCT (c = 0.25).

    The hidden tests stay unseen (`use_world_reward=False`); they label the leaves afterwards."""
    return token_budget_mcts(budget, seed, selector=SelectorConfig(name="uct", exploration=UCT_C))


class LoopConfig(BaseModel):
    """What a loop searches, trains and evaluates; stored in the loop's folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: list[str] = Field(min_length=1)
    """Training task ids."""
    eval: list[str] = Field(min_length=1)
    """Held-out task ids."""
    model: str = "embedded"
    """The search model's spec (without an adapter)."""
    base: str = "embedded"
    """What the adapter is trained on (see `adapters`)."""
    budget: int = Field(default=8000, ge=1)
    """Model tokens per search (one task, one seed)."""
    seeds: int = Field(default=1, ge=1)
    """Searches per task: seeds 0..seeds-1 (evaluation), 100 n + seed in iteration n's training search."""
    continue_training: bool = True
    """Continue the previous iteration's adapter (else: a fresh adapter on the base, on all data so far)."""
    sft: SFTConfig = Field(default_factory=SFTConfig)
    revise: ReviseConfig = Field(default_factory=ReviseConfig)


class Trial(BaseModel):
    """One search of one task and its outcome by the hidden tests."""

    model_config = ConfigDict(extra="forbid")

    task: str
    seed: int
    solved: bool
    tokens: int
    nodes: int
    seconds: float
    """Wall time of the attempt that finished it (search and hidden tests)."""
    stop_reason: str = ""
    resumed: bool = False
    """Whether it finished a search an earlier attempt had begun."""


class SearchStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trials: list[Trial] = Field(default_factory=list)

    @property
    def solved(self) -> int:
        return sum(t.solved for t in self.trials)

    @property
    def tokens(self) -> int:
        return sum(t.tokens for t in self.trials)

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.trials)


class ReviseStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pairs: int = 0
    spliced: int = 0
    verified: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)
    preferences: int = 0
    locator_tokens: int = 0
    seconds: float = 0.0


class RevisedRun(BaseModel):
    """What revising one searched run gave (kept so a rerun does not revise it again)."""

    model_config = ConfigDict(extra="forbid")

    result: ReviseResult
    seconds: float


class TrainStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    adapter: Adapter | None = None
    """The model's adapter after this stage (a new one, or the previous one when nothing was trained)."""
    trained: bool = False
    note: str = ""
    started_from: str = "base"
    """`base` or the folder of the adapter training continued."""
    examples: int = 0
    steps: int = 0
    losses: list[float] = Field(default_factory=list)
    seconds: float = 0.0


class IterationRecord(BaseModel):
    """One row of the loop's table."""

    model_config = ConfigDict(extra="forbid")

    iteration: int
    model: str = ""
    """The model evaluated at the end of the iteration."""
    search: SearchStage | None = None
    revise: ReviseStage | None = None
    train: TrainStage | None = None
    eval: SearchStage | None = None


TrainFn = Callable[[str, list[list[dict[str, Any]]], SFTConfig, Path, Path | None], TrainReport]


def train_adapter(
    base: str, conversations: list[list[dict[str, Any]]], config: SFTConfig, out: Path, previous: Path | None
) -> TrainReport:
    """Train (blocking) an adapter on `base` and save it in `out`; `previous`: a PEFT adapter to continue.
    Progress is kept beside `out` (`CHECKPOINT_FILE`), so a training killed halfway goes on from it."""
    from trellis.train.sft import load_base, save_adapter, train_lora

    model, tokenizer = load_base(base)
    if previous is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(previous), is_trainable=True)
    identity = f"{base}+{previous}" if previous is not None else base
    checkpoint = out.parent / CHECKPOINT_FILE
    adapted, report = train_lora(model, tokenizer, conversations, config, checkpoint=checkpoint, identity=identity)
    return save_adapter(adapted, out, report.model_copy(update={"base": base}))


def _write(path: Path, data: Any) -> None:
    """Write JSON so a kill leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(partial, path)


def _read(path: Path, kind: type[Stage]) -> Stage | None:
    if not path.is_file():
        return None
    try:
        return kind.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{path} is damaged ({exc}); delete it and rerun to redo that stage") from exc


class _Models:
    """The one chat model in use, loaded when a stage first needs it, replaced when the adapter changes."""

    def __init__(self, spec: str, loader: ModelLoader) -> None:
        self.spec, self.loader = spec, loader
        self.current: tuple[str | None, ChatModel] | None = None

    async def get(self, adapter: Adapter | None) -> ChatModel:
        key = adapter.folder if adapter is not None else None
        if self.current is not None and self.current[0] == key:
            return self.current[1]
        await self.close()
        model = await self.loader(self.spec, adapter)
        self.current = (key, model)
        return model

    async def close(self) -> None:
        if self.current is not None:
            model, self.current = self.current[1], None
            await model.aclose()


async def search_trial(folder: Path, task: CodeTask, model: ChatModel, config: SearchConfig) -> Trial:
    """Search `task` in `folder` (resuming a search killed there) and check its final answer by the hidden tests."""
    saved = _read(folder / TRIAL, Trial)
    if saved is not None:
        return saved
    started = time.perf_counter()
    run, repo = RunDir(folder / "run"), folder / "repo"
    resume = run.exists()
    if not resume:  # a fresh start: the workspace of a search that never stored its root goes too
        fresh_task_repository(task, repo)
    sandbox = BwrapSandbox(repo)
    try:
        world = CodeTaskWorld(task, sandbox, tools=REVISION_TOOLS)
        outcome = await run_search(
            task=world.task,
            worlds=[world],
            model=model,
            config=config,
            run_dir=run.path,
            resume=resume,
            info={"code_task": task.id},
            opening=Opening(prompt=completion_prompt(task.prompt), path=SOLUTION),
        )
        solved = False
        if outcome.final_node is not None:
            state = run.load_tree().get(outcome.final_node).state_id
            if state is not None:
                solved = (await world.grade(state)).resolved
    finally:
        await sandbox.close()
    trial = Trial(
        task=task.id,
        seed=config.seed,
        solved=solved,
        tokens=outcome.usage.total_tokens,
        nodes=outcome.nodes,
        seconds=time.perf_counter() - started,
        stop_reason=outcome.stop_reason,
        resumed=resume,
    )
    _write(folder / TRIAL, trial.model_dump(mode="json"))
    return trial


class AgentRLoop:
    """The loop over a folder (see the module docstring). `loader` builds the model with each adapter
    (`load_adapted` by default); `trainer` trains and saves one adapter (`train_adapter` by default)."""

    def __init__(
        self,
        config: LoopConfig,
        out: Path,
        *,
        loader: ModelLoader = load_adapted,
        trainer: TrainFn = train_adapter,
        progress: Progress | None = None,
    ) -> None:
        self.config, self.out = config, Path(out)
        self.train_tasks = [get_task(task_id) for task_id in config.train]
        self.eval_tasks = [get_task(task_id) for task_id in config.eval]
        self.models = _Models(config.model, loader)
        self.trainer = trainer
        self.say: Progress = progress or (lambda message: None)
        self.records: list[IterationRecord] = []

    def check_settings(self) -> None:
        """Write the settings into a new folder; in an old one they must be the ones it was started with."""
        path = self.out / SETTINGS
        mine = self.config.model_dump(mode="json")
        if path.is_file():
            try:
                theirs = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise UserError(f"{path} is damaged ({exc}); choose a new --out folder") from exc
            changed = sorted(key for key in {**mine, **theirs} if mine.get(key) != theirs.get(key))
            if changed:
                raise UserError(
                    f"{self.out} holds a loop started with other settings ({', '.join(changed)} differ); "
                    "rerun with the same settings to resume it, or choose a new --out folder"
                )
        elif self.out.exists() and any(self.out.iterdir()):
            raise UserError(f"{self.out} is not empty and holds no {SETTINGS}; choose a new --out folder")
        else:
            _write(path, mine)

    async def run(self, iterations: int) -> list[IterationRecord]:
        """Run (or resume) iterations 0..`iterations`; returns one record per iteration."""
        self.check_settings()
        self.records = []
        try:
            start = IterationRecord(iteration=0, model=describe(self.config.model, None))
            self.records.append(start)
            start.eval = await self.search_stage(0, "eval", self.eval_tasks, None)
            self._save()
            adapter: Adapter | None = None
            for n in range(1, iterations + 1):
                record = IterationRecord(iteration=n)
                self.records.append(record)
                record.search = await self.search_stage(n, "search", self.train_tasks, adapter)
                self._save()
                record.revise = await self.revise_stage(n, adapter)
                self._save()
                record.train = await self.train_stage(n, adapter)
                adapter = record.train.adapter
                record.model = describe(self.config.model, adapter)
                self._save()
                record.eval = await self.search_stage(n, "eval", self.eval_tasks, adapter)
                self._save()
        finally:
            await self.models.close()
        return self.records

    def _stage(self, n: int, name: str) -> Path:
        return self.out / f"iter-{n}" / name

    def _save(self) -> None:
        _write(self.out / RESULTS, [record.model_dump(mode="json") for record in self.records])

    def _finish(self, folder: Path, stage: Stage) -> Stage:
        _write(folder / DONE, stage.model_dump(mode="json"))
        return stage

    async def search_stage(self, n: int, name: str, tasks: Sequence[CodeTask], adapter: Adapter | None) -> SearchStage:
        """Search every task and seed (`eval`: seeds 0..; `search`: 100 n + seed)."""
        folder = self._stage(n, name)
        done = _read(folder / DONE, SearchStage)
        if done is not None:
            self.say(f"iteration {n} {name}: done before ({done.solved}/{len(done.trials)} solved), skipped")
            return done
        stage = SearchStage()
        offset = 100 * n if name == "search" else 0
        for task in tasks:
            for seed in range(self.config.seeds):
                model = await self.models.get(adapter)
                config = search_config(self.config.budget, offset + seed)
                trial = await search_trial(folder / f"{task.id}-{seed}", task, model, config)
                stage.trials.append(trial)
                self.say(
                    f"iteration {n} {name}: {task.id} seed {offset + seed}: solved={trial.solved} "
                    f"tokens={trial.tokens} nodes={trial.nodes} {trial.seconds:.0f}s"
                )
        return self._finish(folder, stage)

    async def revise_stage(self, n: int, adapter: Adapter | None) -> ReviseStage:
        """Revision data from this iteration's searches, the current model finding first errors."""
        folder = self._stage(n, "revise")
        done = _read(folder / DONE, ReviseStage)
        if done is not None:
            self.say(f"iteration {n} revise: done before ({done.verified} verified), skipped")
            return done
        config = self.config.revise
        result = ReviseResult()
        seconds = 0.0
        runs = sorted(p.parent for p in self._stage(n, "search").glob(f"*/{TRIAL}"))
        for trial_folder in runs:
            cached = folder / "runs" / f"{trial_folder.name}.json"
            part = _read(cached, RevisedRun)
            if part is None:
                started = time.perf_counter()
                model = await self.models.get(adapter) if config.locate else None
                locator = FirstErrorLocator(model, config.first_error) if model is not None else None
                revised = await revise_runs([trial_folder / "run"], locator=locator, config=config)
                part = RevisedRun(result=revised, seconds=time.perf_counter() - started)
                _write(cached, part.model_dump(mode="json"))
                self.say(f"iteration {n} revise: {trial_folder.name}: {revised.reports[0].verified} verified")
            result.revisions += part.result.revisions
            result.preferences += part.result.preferences
            result.reports += part.result.reports
            result.usage = result.usage + part.result.usage
            seconds += part.seconds
        summary = result.summary(config)
        write_dataset(folder, result.revisions, result.preferences, summary)
        stage = ReviseStage(
            pairs=summary["pairs"],
            spliced=summary["spliced"],
            verified=summary["verified"],
            dropped=summary["dropped"],
            preferences=summary["preferences"],
            locator_tokens=summary["locator_tokens"],
            seconds=seconds,
        )
        return self._finish(folder, stage)

    async def train_stage(self, n: int, previous: Adapter | None) -> TrainStage:
        """An adapter trained on this iteration's revisions (or on all so far; see `continue_training`)."""
        folder = self._stage(n, "train")
        done = _read(folder / DONE, TrainStage)
        if done is not None:
            self.say(f"iteration {n} train: done before, skipped")
            return done
        # a training killed halfway goes on from its checkpoint; a half-saved adapter is saved again
        shutil.rmtree(folder / ADAPTER, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        sources = [n] if self.config.continue_training else list(range(1, n + 1))
        conversations = [c for i in sources for c in load_conversations(self._stage(i, "revise"))]
        start = Path(previous.folder) if previous is not None and self.config.continue_training else None
        if not conversations:
            stage = TrainStage(
                adapter=previous,
                note="no verified revision trajectory: nothing to train, the model stays as it was",
                started_from=str(start) if start else "base",
            )
            self.say(f"iteration {n} train: {stage.note}")
            return self._finish(folder, stage)
        await self.models.close()  # the search model's memory goes to training
        self.say(f"iteration {n} train: {len(conversations)} examples on {self.config.base}")
        started = time.perf_counter()
        report = await asyncio.to_thread(
            self.trainer, self.config.base, conversations, self.config.sft, folder / ADAPTER, start
        )
        stage = TrainStage(
            adapter=Adapter(iteration=n, folder=str(folder / ADAPTER), gguf=report.gguf_adapter),
            trained=True,
            note=report.gguf_note,
            started_from=str(start) if start else "base",
            examples=report.examples,
            steps=report.steps,
            losses=report.losses,
            seconds=time.perf_counter() - started,  # loading the base and saving the adapter too
        )
        stage = self._finish(folder, stage)
        (folder / CHECKPOINT_FILE).unlink(missing_ok=True)  # the adapter is whole: nothing left to go on from
        return stage


def _rate(stage: SearchStage | None) -> str:
    if stage is None or not stage.trials:
        return "-"
    return f"{stage.solved}/{len(stage.trials)} ({stage.solved / len(stage.trials):.0%})"


def _tokens(stage: SearchStage | None) -> str:
    return "-" if stage is None or not stage.trials else f"{stage.tokens / len(stage.trials):.0f}"


def _seconds(record: IterationRecord) -> str:
    stages = (record.search, record.revise, record.train, record.eval)
    return "/".join("-" if stage is None else f"{stage.seconds:.0f}" for stage in stages)


def _loss(train: TrainStage | None) -> str:
    if train is None:
        return "-"
    if not train.losses:
        return "not trained"
    return f"{train.losses[0]:.3f} -> {train.losses[-1]:.3f}"


def iteration_table(records: Sequence[IterationRecord]) -> Table:
    """The loop's table: one row per iteration (iteration 0: the starting model on the held-out tasks)."""
    table = Table(
        title="Agent-R iterations",
        caption="solved: passes the hidden tests; train: searched with the iteration's starting model, eval: with "
        "the model after training; tokens per search; seconds of search / revise / train / eval",
    )
    columns = ("iter", "model", "train solved", "train tok", "pairs", "spliced", "verified", "loss")
    for name in (*columns, "eval solved", "eval tok", "seconds"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for record in records:
        revise = record.revise
        table.add_row(
            str(record.iteration),
            record.model,
            _rate(record.search),
            _tokens(record.search),
            "-" if revise is None else str(revise.pairs),
            "-" if revise is None else str(revise.spliced),
            "-" if revise is None else str(revise.verified),
            _loss(record.train),
            _rate(record.eval),
            _tokens(record.eval),
            _seconds(record),
        )
    return table
