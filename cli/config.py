"""Building a `SearchConfig` from a YAML file, command-line flags and `--set a.b=c` overrides, and the
search options every searching command shares, declared once (`search_options`)."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from pydantic import ValidationError
from trellis.search.config import SearchConfig

from trellis.errors import UserError


def _assign(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    if not all(keys):
        raise UserError(f"--set {dotted}: empty part in the setting's name; write it as budget.max_nodes=30")
    current = data
    for key in keys[:-1]:
        current = current.setdefault(key, {})
        if not isinstance(current, dict):
            raise UserError(f"--set {dotted}: {key} is not a section")
    current[keys[-1]] = value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build_config(
    path: Path | None, sets: list[str], flags: dict[str, Any], defaults: dict[str, Any] | None = None
) -> SearchConfig:
    """Defaults, then the YAML file, then flags, then `--set` overrides: later ones win."""
    data: dict[str, Any] = copy.deepcopy(defaults or {})  # overrides below must not change the defaults
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UserError(f"cannot read config {path}: {exc}; give a YAML file of search settings") from exc
        if not isinstance(loaded, dict):
            raise UserError(f"{path} must hold a mapping of settings")
        data = _merge(data, loaded)
    for dotted, value in flags.items():
        if value is not None:
            _assign(data, dotted, value)
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set takes key=value (for example budget.max_nodes=30), got {item!r}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise UserError(f"--set {item}: the value is not valid YAML ({problem}); quote it or fix it") from exc
        _assign(data, key.strip(), value)
    try:
        return SearchConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise UserError(f"invalid search settings: {problems}") from exc


@dataclass(frozen=True)
class SearchOption:
    """A command-line option that sets one search setting."""

    parameter: str
    setting: str
    """The setting's dotted name (`budget.max_nodes`), as `--set` writes it."""
    annotation: Any


SEARCH_OPTIONS = (
    SearchOption("samples", "samples", Annotated[int | None, typer.Option(help="Solver samples per expansion.")]),
    SearchOption(
        "root_samples",
        "root_samples",
        Annotated[int | None, typer.Option(help="Samples per expansion of the root (its focused opening).")],
    ),
    SearchOption("parallel", "parallel", Annotated[int | None, typer.Option(help="Nodes expanded at once.")]),
    SearchOption(
        "max_nodes", "budget.max_nodes", Annotated[int | None, typer.Option(help="Stop after this many nodes.")]
    ),
    SearchOption("max_depth", "budget.max_depth", Annotated[int | None, typer.Option(help="Deepest trajectory.")]),
    SearchOption("max_tokens", "budget.max_tokens", Annotated[int | None, typer.Option(help="Model token budget.")]),
    SearchOption(
        "max_seconds", "budget.max_seconds", Annotated[float | None, typer.Option(help="Wall-time budget in seconds.")]
    ),
    SearchOption(
        "selector",
        "selector.name",
        Annotated[str | None, typer.Option(help="uct, depth_uct, puct, hgm, or package.module:Class (your own).")],
    ),
    SearchOption(
        "discriminator",
        "discriminator.strategy",
        Annotated[str | None, typer.Option(help="mean, majority or debate.")],
    ),
    SearchOption(
        "feedback",
        "feedback",
        Annotated[bool | None, typer.Option("--feedback/--no-feedback", help="Critic feedback in later prompts.")],
    ),
    SearchOption(
        "reflection",
        "reflection",
        Annotated[bool | None, typer.Option("--reflection/--no-reflection", help="Lessons from failures.")],
    ),
    SearchOption("seed", "seed", Annotated[int | None, typer.Option(help="Seed of the whole search.")]),
    SearchOption(
        "action_format",
        "solver.action_format",
        Annotated[
            str | None,
            typer.Option(
                help="markdown (code in fenced blocks; for local models) or json (tool calls; native tool calling)."
            ),
        ],
    ),
    SearchOption(
        "critic_mode",
        "critic.mode",
        Annotated[
            str | None,
            typer.Option(
                "--critic",
                help="verifier (P(Yes) from log-probabilities; small models), score (JSON verdicts), or none.",
            ),
        ],
    ),
)
_FILE_OPTIONS = (
    inspect.Parameter(
        "config",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[Path | None, typer.Option("--config", help="YAML file of search settings.")],
    ),
    inspect.Parameter(
        "set_",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            list[str] | None, typer.Option("--set", help="Override a setting: --set budget.max_nodes=30.")
        ],
    ),
)

Command = TypeVar("Command", bound=Callable[..., Any])


def search_options(
    defaults: dict[str, Any], strategies: dict[str, dict[str, Any]] | None = None
) -> Callable[[Command], Command]:
    """Give a typer command the shared search options (`SEARCH_OPTIONS`, `--config`, `--set`); the
    command takes one `settings: SearchConfig` parameter instead, built from `defaults`, the file, the
    flags and the overrides (later ones win), and a bad value is a `UserError` before the command runs.

    `strategies` adds `--strategy NAME`: the named settings replace `defaults` as the base (`mcts`,
    the default, is `defaults` itself)."""
    choices = {"mcts": defaults, **(strategies or {})}

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        if "settings" not in signature.parameters:
            raise TypeError(f"{command.__name__} takes the search settings as `settings`")
        own = [p for p in signature.parameters.values() if p.name != "settings"]
        added = [
            inspect.Parameter(o.parameter, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=o.annotation)
            for o in SEARCH_OPTIONS
        ]
        if strategies:
            added.insert(0, _strategy_parameter(choices))

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            flags = {o.setting: kwargs.pop(o.parameter, None) for o in SEARCH_OPTIONS}
            path, sets = kwargs.pop("config", None), kwargs.pop("set_", None)
            strategy = kwargs.pop("strategy", None) or "mcts"
            if strategy not in choices:
                raise UserError(f"--strategy {strategy}: unknown; give one of {', '.join(choices)}")
            kwargs["settings"] = build_config(path, list(sets or []), flags, defaults=choices[strategy])
            return command(*args, **kwargs)

        run.__signature__ = signature.replace(parameters=[*own, *added, *_FILE_OPTIONS])  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


STRATEGY_HELP = {
    "mcts": "MCTS over agent trajectories (the default)",
    "linear": "one agent trajectory, one sample per step (greedy, but for focused repairs), until it finishes",
}
"""What `--strategy` says of each strategy a command offers."""


def _strategy_parameter(choices: dict[str, dict[str, Any]]) -> inspect.Parameter:
    described = "; ".join(f"{name}: {STRATEGY_HELP.get(name, 'settings of its own')}" for name in choices)
    option = typer.Option("--strategy", help=f"How to search. {described}. Other options change its settings.")
    return inspect.Parameter(
        "strategy", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[str | None, option]
    )


# Where a batch runs; shared by `swe batch` and `qa batch`.
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="local (in this process) or ray (one Ray task per instance or question, on a Ray cluster; "
        "needs the ray extra).",
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="Ray: the cluster to run on, `auto` (the one `ray start` began on this machine) or HOST:PORT; "
        "default: $RAY_ADDRESS, else a Ray runtime of this command's own.",
    ),
]
RetriesOpt = Annotated[
    int,
    typer.Option(min=0, help="Ray: times a task is run again when its worker dies (it resumes its run)."),
]
EXECUTORS = ("local", "ray")
