"""Terminal views of a search tree (rich renderables) and its exports (dot, mermaid, json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from trellis.tree import Node, Tree


def _append_step(text: Text, node: Node, on_best: bool, *, lead: str, width: int) -> None:
    """What a node did, in a tree line: `root`, its action, or the error of a reply that was none."""
    if node.step is None:
        text.append(f"{lead}root", style="dim")
    elif node.action is not None:
        text.append(lead + node.action.summary(width), style="bold" if on_best else "")
    else:
        text.append(f"{lead}! {(node.step.error or 'no action')[:width]}", style="red")


def node_label(node: Node, on_best: bool, final: str | None) -> Text:
    """One line about a node: id, action, reward, visits, value, samples, terminal reason, duplicate,
    the judge's verdict on its parent's observation, and whether it is the chosen answer."""
    text = Text()
    text.append(node.id, style="bold cyan" if on_best else "cyan")
    _append_step(text, node, on_best, lead=" ", width=48)
    reward = "  -  " if node.reward is None else f"{node.reward:.2f}"
    text.append(f"  r={reward} n={node.visits} v={node.value:.2f}", style="dim" if not on_best else "green")
    if node.count > 1:
        text.append(f" x{node.count}", style="magenta")
    if node.terminal:
        style = {"finished": "bold green", "rejected": "yellow"}.get(node.terminal_reason, "red")
        text.append(f" [{node.terminal_reason}]", style=style)
    if node.duplicate_of:
        text.append(f" (= {node.duplicate_of})", style="dim")
    if node.step is not None and node.step.judge is not None:  # its verdict on the parent's observation
        text.append(
            " judged:kept" if node.step.judge.keep else " judged:dropped",
            style="dim" if node.step.judge.keep else "yellow",
        )
    if final and node.id == final:
        text.append(" ★ chosen", style="bold yellow")
    return text


class TreeView:
    """The tree, pruned to `depth` levels and the `top` most visited children per node, with the
    current best path highlighted. Renders with rich (`console.print(TreeView(tree))`)."""

    def __init__(self, tree: Tree, *, depth: int | None = None, top: int | None = None, title: str = "") -> None:
        self.tree = tree
        self.depth = depth
        self.top = top
        self.title = title

    def __rich__(self) -> RenderableType:
        tree = self.tree
        best = set(tree.best_path())
        final = tree.final.node if tree.final else None
        rich_root = RichTree(node_label(tree.root, True, final), guide_style="dim")
        stack: list[tuple[Node, RichTree]] = [(tree.root, rich_root)]
        while stack:
            node, branch = stack.pop()
            children = tree.children(node.id)
            if self.depth is not None and node.depth >= self.depth:
                if children:
                    branch.add(Text(f"… {len(tree.descendants(node.id))} nodes below", style="dim"))
                continue
            ranked = sorted(children, key=lambda c: (c.id not in best, -c.visits, -(c.reward or 0), c.index))
            shown = ranked[: self.top] if self.top is not None else ranked
            # children are attached to their branch here, so the traversal order does not change the view
            for child in sorted(shown, key=lambda c: c.index):
                stack.append((child, branch.add(node_label(child, child.id in best, final))))
            if len(shown) < len(children):
                branch.add(Text(f"… {len(children) - len(shown)} more children", style="dim"))
        if self.title:
            return Group(Text(self.title, style="bold"), rich_root)
        return rich_root


def summary(tree: Tree, info: dict[str, Any] | None = None) -> Table:
    """Nodes, tokens, cached tokens, time, best reward and outcome of a run."""
    usage = tree.total_usage()
    finished = [n for n in tree if n.terminal_reason == "finished"]
    rewards = [n.reward for n in tree if n.reward is not None]
    final = tree.final.node if tree.final else None
    decision = tree.decision or {}
    table = Table(title="run summary", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("task", str((info or {}).get("instance_id") or tree.meta.get("instance_id") or "")[:70]),
        (
            "nodes",
            f"{len(tree)} ({len(finished)} finished, {sum(n.duplicate_of is not None for n in tree)} "
            f"duplicates, max depth {max(n.depth for n in tree)})",
        ),
        ("model calls", str(usage.calls)),
        (
            "tokens",
            f"{usage.prompt_tokens} prompt ({usage.cached_tokens} cached, "
            f"{usage.cached_tokens / usage.prompt_tokens:.0%}) + {usage.completion_tokens} completion"
            if usage.prompt_tokens
            else "0",
        ),
        ("model time", f"{usage.seconds:.1f} s"),
        ("best reward", f"{max(rewards):.2f}" if rewards else "-"),
        (
            "outcome",
            f"node {final} chosen by {decision.get('strategy')}: {decision.get('reason')}"
            if final
            else (f"no answer: {decision.get('reason')}" if decision else "running"),
        ),
    ]
    if (info or {}).get("resolved") is not None:
        rows.append(("graded", "resolved" if info["resolved"] else "not resolved"))  # type: ignore[index]
    for key, value in rows:
        if value:
            table.add_row(key, value)
    return table


def _judge_rewards(tree: Tree, node_id: str, judged: dict[str, Any]) -> str:
    """ReSeek's instructive reward of each verdict on the path to a finished node, by the node that gave it."""
    path = tree.ancestors(node_id)
    lines = []
    for depth, value in sorted(judged["per_step"].items(), key=lambda item: int(item[0])):
        judging = path[int(depth)] if int(depth) < len(path) else None
        verdict = judging.step.judge if judging is not None and judging.step is not None else None
        said = "" if verdict is None else (" (Yes)" if verdict.keep else " (No)")
        where = f"node {judging.id}" if judging is not None else f"step {depth}"
        lines.append(f"{where}{said}: {float(value):+.2f}")
    lines.append(f"total {float(judged.get('total', 0.0)):+.2f} over {judged.get('count', len(lines))} verdicts")
    return "\n".join(lines)


def node_detail(
    tree: Tree,
    node_id: str,
    prompt: list[dict[str, str]] | None = None,
    *,
    prompt_title: str = "prompt",
    prompt_notes: Sequence[str] = (),
    selector: Sequence[tuple[str, str]] = (),
) -> Group:
    """Everything about one step: prompt, completion, action, observation, critic verdict, stats.

    `prompt` replaces the step's stored prompt (a rebuilt one); `prompt_notes` say what may differ
    from what the model saw; `selector` is the selector's score of the node and its parts."""
    node = tree.get(node_id)
    parts: list[RenderableType] = []
    stats = (
        f"depth {node.depth}  visits {node.visits}  value {node.value:.3f}  reward "
        f"{'-' if node.reward is None else f'{node.reward:.3f}'}  samples {node.count}  "
        f"tokens {node.usage.prompt_tokens}+{node.usage.completion_tokens} "
        f"({node.usage.cached_tokens} cached)"
    )
    parts.append(Text(f"node {node.id}  (parent {node.parent_id})", style="bold"))
    parts.append(Text(stats))
    if selector:
        parts.append(Text("  ".join(f"{name} {value}" for name, value in selector), style="dim"))
    if node.terminal or node.duplicate_of:
        parts.append(Text(f"terminal: {node.terminal_reason or '-'}   duplicate of: {node.duplicate_of or '-'}"))
    step = node.step
    messages = (
        prompt if prompt is not None else ([m.model_dump() for m in step.prompt] if step and step.prompt else None)
    )
    for note in prompt_notes:  # before the prompt, which can be long
        parts.append(Text(f"prompt note: {note}", style="yellow"))
    if messages:
        body = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
        parts.append(Panel(Text(body), title=prompt_title, title_align="left"))
    if step is not None:
        parts.append(Panel(Text(step.completion or "(empty)"), title="completion", title_align="left"))
        if step.action is not None:
            action = json.dumps({"tool": step.action.tool, "args": step.action.args}, indent=1)
            thought = f"thought: {step.action.thought}\n" if step.action.thought else ""
            parts.append(Panel(Text(thought + action), title="action", title_align="left"))
        if step.error:
            parts.append(Panel(Text(step.error, style="red"), title="error", title_align="left"))
        if step.observation is not None:
            style = "red" if step.observation.is_error else ""
            parts.append(Panel(Text(step.observation.text, style=style), title="observation", title_align="left"))
        if step.judge is not None:
            verdict = (
                f"Yes: node {node.parent_id}'s observation stays in this branch's prompts"
                if step.judge.keep
                else f"No: node {node.parent_id}'s observation is left out of this branch's later prompts"
            )
            reward = f"\ninstructive reward: {step.judge.reward:+.2f}" if step.judge.reward else ""
            parts.append(Panel(Text(verdict + reward), title="judge", title_align="left"))
    if node.explanation or node.feedback:
        parts.append(
            Panel(
                Text(f"explanation: {node.explanation}\nfeedback: {node.feedback}"), title="critic", title_align="left"
            )
        )
    if node.reflection:
        parts.append(Panel(Text(node.reflection), title="reflection", title_align="left"))
    judged = node.meta.get("judge_reward")
    if isinstance(judged, dict) and judged.get("per_step"):  # scored where the world knew which were useful
        parts.append(Panel(Text(_judge_rewards(tree, node_id, judged)), title="judge rewards", title_align="left"))
    crashes = node.meta.get("crashes")
    if crashes:  # a finished answer's failures on inputs nobody checked (see trellis.world.Behaviour)
        text = "crashed on probe inputs:\n" + "\n".join(f"  {crash}" for crash in crashes)
        parts.append(Panel(Text(text, style="yellow"), title="probes", title_align="left"))
    return Group(*parts)


def to_dot(tree: Tree) -> str:
    best = set(tree.best_path())
    lines = ["digraph search {", "  node [shape=box, fontname=monospace];"]
    for node in sorted(tree, key=lambda n: (n.depth, n.id)):
        action = node.action.summary(40) if node.action else ("root" if node.step is None else "error")
        label = f"{node.id}\\n{action}\\nr={'-' if node.reward is None else f'{node.reward:.2f}'} n={node.visits}"
        label = label.replace('"', '\\"')
        attrs = [f'label="{label}"']
        if node.id in best:
            attrs.append("color=green, penwidth=2")
        if node.terminal_reason == "finished":
            attrs.append("style=filled, fillcolor=palegreen")
        elif node.terminal:
            attrs.append("style=filled, fillcolor=mistyrose")
        lines.append(f'  "{node.id}" [{", ".join(attrs)}];')
    for node in sorted(tree, key=lambda n: (n.depth, n.id)):
        if node.parent_id is not None:
            lines.append(f'  "{node.parent_id}" -> "{node.id}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(tree: Tree) -> str:
    def key(node_id: str) -> str:
        return "n" + node_id.replace(".", "_")

    lines = ["graph TD"]
    for node in sorted(tree, key=lambda n: (n.depth, n.id)):
        action = node.action.summary(40) if node.action else ("root" if node.step is None else "error")
        action = action.replace('"', "'")
        reward = "-" if node.reward is None else f"{node.reward:.2f}"
        lines.append(f'  {key(node.id)}["{node.id}: {action}<br/>r={reward} n={node.visits}"]')
    for node in sorted(tree, key=lambda n: (n.depth, n.id)):
        if node.parent_id is not None:
            lines.append(f"  {key(node.parent_id)} --> {key(node.id)}")
    for node_id in tree.best_path():
        lines.append(f"  style {key(node_id)} stroke:#2a2,stroke-width:3px")
    return "\n".join(lines) + "\n"


def value_colour(value: float) -> str:
    """Red (0) through yellow (0.5) to green (1)."""
    value = min(max(value, 0.0), 1.0)
    if value < 0.5:
        red, green = 215, int(60 + 300 * value)
    else:
        red, green = int(215 - 330 * (value - 0.5)), 210
    return f"rgb({red},{green},60)"


def browse_label(node: Node, *, on_best: bool, final: str | None, dim: bool = False, mark: str = "") -> Text:
    """A node's line in the tree pane, short facts first so a narrow pane keeps them: a swatch coloured
    by value, » on the best path, id, reward, visits, value, merged samples, duplicate, terminal
    reason, the judge's verdict, ★ for the chosen node, then the action."""
    text = Text()
    text.append("● " if node.visits else "○ ", style=value_colour(node.value) if node.visits else "dim")
    text.append("» " if on_best else "  ", style="bold green")
    if mark:
        text.append(f"{mark} ", style="bold magenta")
    text.append(node.id, style="bold cyan" if on_best else "cyan")
    reward = "-" if node.reward is None else f"{node.reward:.2f}"
    text.append(f" r={reward} n={node.visits} v={node.value:.2f}", style="green" if on_best else "dim")
    if node.count > 1:
        text.append(f" x{node.count}", style="magenta")
    if node.duplicate_of:
        text.append(f" (= {node.duplicate_of})", style="dim")
    if node.terminal:
        style = {"finished": "bold green", "rejected": "yellow"}.get(node.terminal_reason, "red")
        text.append(f" [{node.terminal_reason}]", style=style)
    if node.step is not None and node.step.judge is not None:
        keep = node.step.judge.keep
        text.append(" judged:kept" if keep else " judged:dropped", style="dim" if keep else "yellow")
    if final and node.id == final:
        text.append(" ★ chosen", style="bold yellow")
    _append_step(text, node, on_best, lead="  ", width=60)
    if dim:
        text.stylize("dim")
    return text


def side_by_side(left: tuple[str, str, str], right: tuple[str, str, str], between: str | None) -> RenderableType:
    """Two patches in two columns, each under its (node id, where it comes from) heading."""
    table = Table(expand=True, show_lines=False, padding=(0, 1))
    for node_id, source, _ in (left, right):
        table.add_column(Text(f"{node_id}: {source}", overflow="fold"), ratio=1)

    def cell(patch: str) -> RenderableType:
        if not patch.strip():
            return Text("(no changes)", style="dim")
        return Syntax(patch, "diff", theme="ansi_dark", background_color="default", word_wrap=True)

    table.add_row(cell(left[2]), cell(right[2]))
    parts: list[RenderableType] = [table]
    if between is not None:
        parts.append(Text(f"\nfrom {left[0]} to {right[0]}:", style="bold"))
        parts.append(cell(between))
    return Group(*parts)


class LiveTree:
    """Keeps a rich `Live` display of a growing tree: call it with each search event."""

    def __init__(self, live: Any, tree_getter: Any, *, title: str = "") -> None:
        self.live = live
        self.tree_getter = tree_getter
        self.title = title
        self.status = ""

    def __call__(self, event: dict[str, Any]) -> None:
        tree = self.tree_getter()
        if tree is None:
            return
        kind = event.get("event")
        if kind == "iteration":
            self.status = f"iteration {event.get('iteration')}: expanding {', '.join(event.get('selected') or [])}"
            if event.get("stop"):
                self.status = f"stopping: {event['stop']}; choosing the final answer"
        height = max(self.live.console.size.height - 4, 8)
        top = 3 if len(tree) > height else None
        header = f"{self.title}  {len(tree)} nodes  {self.status}"
        self.live.update(TreeView(tree, top=top, title=header), refresh=True)
