"""`trellis tree browse`: a terminal application over a run folder, live while the run is written.

The tree pane (expand and collapse with the keyboard or the mouse) marks the best path (») and the
chosen node (★), shows merged samples (xN), duplicates (= id) and the judge's verdicts, and colours
each node by its value. The node pane shows one step whole: the prompt as the model saw it,
completion, action, observation, the critic's explanation and feedback, the judge's verdict,
reflection, tokens, visits, value and the selector's score. `/` filters, `m` then `d` compares two
nodes' patches side by side, `r` replays the search iteration by iteration from the event log.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane
from textual.widgets import Tree as TreeWidget
from textual.widgets.tree import TreeNode
from trellis.cli.replay import Frame, replay, tree_at
from trellis.cli.runview import LiveRun, NodeFilter, Patches, node_view

from trellis.errors import UserError
from trellis.render import browse_label, side_by_side
from trellis.tree import Node, NodeId, Tree


class TreeBrowser(App[None]):
    """The browser over one run folder (see the module's docstring for what it shows)."""

    TITLE = "trellis tree browse"
    CSS = """
    #panes { height: 1fr; }
    #tree { width: 1fr; min-width: 30; border-right: solid $primary-darken-2; }
    #tabs { width: 1fr; }
    #filter { display: none; }
    #filter.shown { display: block; }
    #status { height: 1; background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("slash", "filter", "filter"),
        Binding("n", "next_match(1)", "next match", show=False),
        Binding("N", "next_match(-1)", "previous match", show=False),
        Binding("b", "best", "best"),
        Binding("c", "chosen", "chosen"),
        Binding("m", "mark", "mark"),
        Binding("d", "diff", "diff"),
        Binding("r", "replay", "replay"),
        Binding("left_square_bracket", "step(-1)", "back"),
        Binding("right_square_bracket", "step(1)", "forward"),
        Binding("p", "play", "play", show=False),
        Binding("e", "expand_all", "expand all", show=False),
        Binding("x", "collapse_all", "collapse all", show=False),
        Binding("escape", "clear", "clear", show=False),
    ]

    def __init__(
        self,
        run: str | Path,
        *,
        poll_seconds: float = 0.5,
        process: subprocess.Popen[bytes] | None = None,
        log: Path | None = None,
    ) -> None:
        """`process` and its `log`: the search's own process, when the browser watches a run it started."""
        super().__init__()
        self.live = LiveRun(run)
        self.poll_seconds = poll_seconds
        self.process = process
        self.search_log = log
        self._failure_shown = False
        self.filter = NodeFilter()
        self.matches: list[NodeId] = []
        self.marked: NodeId | None = None
        self.frames: list[Frame] = []
        self.frame: int | None = None
        """The replayed frame shown, None for the run as it is."""
        self.message = ""
        self.patches = Patches(self.live.path)
        self._items: dict[NodeId, TreeNode[NodeId]] = {}
        self._shown: set[NodeId] | None = None
        self._matched: set[NodeId] = set()
        self._player: object | None = None

    # --- layout ------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            tree: TreeWidget[NodeId] = TreeWidget("waiting for the run's root…", id="tree")
            tree.auto_expand = False
            yield tree
            with TabbedContent(id="tabs"):
                with TabPane("node", id="node-tab"), VerticalScroll():
                    yield Static("", id="node")
                with TabPane("diff", id="diff-tab"), VerticalScroll():
                    yield Static("mark a node with m, move to another, press d", id="diff")
                with TabPane("timeline", id="timeline-tab"), VerticalScroll():
                    yield Static("", id="timeline")
        yield Input(
            placeholder="filter: tool:NAME reason:finished value>=0.5 value:0.2..0.8 is:best|duplicate|dropped words",
            id="filter",
        )
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_run()
        self.set_interval(self.poll_seconds, self.refresh_run)
        self.query_one("#tree").focus()

    @property
    def tree_widget(self) -> TreeWidget[NodeId]:
        return self.query_one("#tree", TreeWidget)

    # --- reading the run ---------------------------------------------------------------------------

    def refresh_run(self) -> None:
        """Read what the run wrote since the last look and show it (nothing while the screen's widgets
        are not there: the poll timer can fire as the app closes)."""
        try:
            self._refresh_run()
        except NoMatches:
            return

    def _refresh_run(self) -> None:
        events = len(self.live.events)
        try:
            changed = self.live.poll()
        except UserError as exc:
            self.message = str(exc)
            self._show_status()
            return
        if len(self.live.events) != events:
            self.frames = replay(self.live.events)
            self._show_timeline()
        self._show_failure()
        tree = self.live.tree
        if tree is not None and (changed or not self._items) and self.frame is None:
            self._show_tree(self.shown_tree(), incremental=not self.filter)
        self._show_status()

    def shown_tree(self) -> Tree | None:
        tree = self.live.tree
        if tree is None or self.frame is None or not self.frames:
            return tree
        return tree_at(tree, self.frames[min(self.frame, len(self.frames) - 1)])

    def _show_failure(self) -> None:
        """When the search's own process failed, the end of its log goes to the node pane."""
        code = self.process.poll() if self.process is not None else None
        if code in (None, 0) or self._failure_shown:
            return
        self._failure_shown = True
        tail = ""
        if self.search_log is not None and self.search_log.is_file():
            tail = "\n".join(self.search_log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:])
        self.query_one("#node", Static).update(
            Text(
                f"the search stopped with exit code {code}; the end of its log ({self.search_log}):\n\n{tail}",
                style="red",
            )
        )
        self.query_one("#tabs", TabbedContent).active = "node-tab"

    # --- the tree pane -----------------------------------------------------------------------------

    def _label(self, tree: Tree, node: Node, best: set[NodeId], final: str | None) -> Text:
        marks = []
        if node.id == self.marked:
            marks.append("◆ marked")
        if self.frame is not None and self.frames:
            frame = self.frames[min(self.frame, len(self.frames) - 1)]
            if node.id in frame.selected:
                marks.append("◎ expanded")
            if node.id in frame.created:
                marks.append("+ new")
        dim = self._shown is not None and node.id not in self._matched
        return browse_label(node, on_best=node.id in best, final=final, dim=dim, mark=" ".join(marks))

    def _show_tree(self, tree: Tree | None, *, incremental: bool) -> None:
        if tree is None:
            return
        best = set(tree.best_path())
        final = tree.final.node if tree.final else None
        if self.filter:
            self.matches = [n.id for n in _preorder(tree) if self.filter.matches(tree, n, best)]
            shown = {a.id for m in self.matches for a in tree.ancestors(m)}
            self._shown = shown
        else:
            self.matches, self._shown = [], None
        self._matched = set(self.matches)
        wanted = [n for n in sorted(tree, key=_order) if self._shown is None or n.id in self._shown]
        if not incremental or tree.root_id not in self._items or set(self._items) - {n.id for n in wanted}:
            self._rebuild(tree, wanted)
        for node in wanted:
            if node.id not in self._items:
                self._insert(tree, node)
        for node in wanted:
            item = self._items[node.id]
            item.set_label(self._label(tree, node, best, final))
            item.allow_expand = bool(tree.children(node.id))
        self._show_node()

    def _rebuild(self, tree: Tree, wanted: list[Node]) -> None:
        widget = self.tree_widget
        cursor = self.current_id()
        collapsed = {node_id for node_id, item in self._items.items() if not item.is_expanded}
        widget.clear()
        widget.root.data = tree.root_id
        widget.root.expand()
        self._items = {tree.root_id: widget.root}
        for node in wanted:
            if node.id != tree.root_id:
                self._insert(tree, node, expand=node.id not in collapsed)
        if cursor in self._items:
            self._move_to(cursor)

    def _insert(self, tree: Tree, node: Node, *, expand: bool = True) -> None:
        if node.parent_id is None:
            return
        parent = self._items.get(node.parent_id)
        if parent is None:
            return
        later = next((c for c in parent.children if c.data is not None and tree.nodes[c.data].index > node.index), None)
        item = parent.add(Text(node.id), data=node.id, before=later, expand=expand)
        self._items[node.id] = item

    def current_id(self) -> NodeId | None:
        item = self.tree_widget.cursor_node
        return item.data if item is not None else None

    def _move_to(self, node_id: NodeId) -> None:
        item = self._items.get(node_id)
        if item is None:
            return
        parent = item.parent
        while parent is not None:
            if not parent.is_expanded:
                parent.expand()
            parent = parent.parent
        widget = self.tree_widget
        _ = widget.last_line  # lays the lines out anew, so the item's line is where it is now
        widget.move_cursor(item)

    def select(self, node_id: NodeId) -> None:
        """Move the cursor to a node (expanding the branches above it) and show it."""
        self._move_to(node_id)
        self._show_node(node_id)

    def on_tree_node_highlighted(self, event: TreeWidget.NodeHighlighted[NodeId]) -> None:
        self._show_node(event.node.data)

    # --- the node pane -----------------------------------------------------------------------------

    def _show_node(self, node_id: NodeId | None = None) -> None:
        tree = self.shown_tree()
        node_id = node_id or self.current_id()
        if tree is None or node_id is None or node_id not in tree:
            return
        node = tree.nodes[node_id]
        self.query_one("#node", Static).update(node_view(tree, node))

    # --- the status line ---------------------------------------------------------------------------

    def _show_status(self) -> None:
        tree = self.live.tree
        parts = [str(self.live.path)]
        if tree is None:
            parts.append(
                f"waiting for the run to store its root{': ' + self.live.waiting if self.live.waiting else ''}"
            )
        else:
            final = tree.final.node if tree.final else None
            state = f"done, chose {final or 'nothing'}" if self.live.decided else "running"
            parts.append(f"{len(tree)} nodes, {state}")
        if self.process is not None:
            code = self.process.poll()
            parts.append(f"search pid {self.process.pid}" if code is None else f"search exited ({code})")
        if self.filter:
            parts.append(f"filter: {len(self.matches)} match")
        if self.marked:
            parts.append(f"marked {self.marked}")
        if self.frame is not None and self.frames:
            parts.append(f"replay {min(self.frame, len(self.frames) - 1)}/{len(self.frames) - 1}")
        if self.message:
            parts.append(self.message)
        self.query_one("#status", Static).update(Text(" | ".join(parts), overflow="ellipsis", no_wrap=True))

    # --- actions -----------------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.apply_filter(event.value)
        self.tree_widget.focus()

    def apply_filter(self, text: str) -> None:
        """Show only the nodes that match `text` (and the branches above them); '' shows every node."""
        try:
            self.filter = NodeFilter.parse(text)
        except UserError as exc:
            self.message = str(exc)
            self._show_status()
            return
        self.message = ""
        box = self.query_one("#filter", Input)
        if not self.filter:
            box.remove_class("shown")
        self._show_tree(self.shown_tree(), incremental=False)
        if self.matches:
            self.select(self.matches[0])
        self._show_status()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        self.message = ""
        if self.filter:
            self.apply_filter("")
        box.remove_class("shown")
        self.tree_widget.focus()

    def action_next_match(self, step: int) -> None:
        if not self.matches:
            return
        current = self.current_id()
        at = self.matches.index(current) if current in self.matches else -step
        self.select(self.matches[(at + step) % len(self.matches)])

    def action_best(self) -> None:
        tree = self.shown_tree()
        if tree is not None:
            self.select(tree.best_path()[-1])

    def action_chosen(self) -> None:
        tree = self.shown_tree()
        final = tree.final.node if tree is not None and tree.final else None
        if final is None:
            self.message = "no node chosen yet"
            self._show_status()
            return
        self.select(final)

    def action_expand_all(self) -> None:
        self.tree_widget.root.expand_all()

    def action_collapse_all(self) -> None:
        for item in self.tree_widget.root.children:
            item.collapse_all()

    def action_mark(self) -> None:
        self.marked = self.current_id()
        self._show_tree(self.shown_tree(), incremental=True)
        self._show_status()

    def action_diff(self) -> None:
        """The marked node's patch beside the current node's, and the change from one to the other."""
        tree = self.live.tree
        current = self.current_id()
        pane = self.query_one("#diff", Static)
        self.query_one("#tabs", TabbedContent).active = "diff-tab"
        if tree is None or current is None:
            return
        if self.marked is None or self.marked not in tree:
            pane.update(Text("mark a node with m first, then move to another and press d"))
            return
        try:
            left, right = tree.nodes[self.marked], tree.nodes[current]
            a, b = self.patches.patch(left), self.patches.patch(right)
            between = None
            if self.patches.git_dir is not None and left.state_id and right.state_id:
                between = self.patches.diff(left.state_id, right.state_id)
        except UserError as exc:
            pane.update(Text(str(exc), style="red"))
            return
        pane.update(side_by_side((left.id, a[1], a[0]), (right.id, b[1], b[0]), between))

    def action_replay(self) -> None:
        """Replay the search from its first iteration; again: back to the run as it is."""
        if self.frame is not None:
            self.frame = None
            if self._player is not None:
                self._player.stop()  # type: ignore[attr-defined]
                self._player = None
        else:
            self.frames = replay(self.live.events)
            self.frame = 0
            self.query_one("#tabs", TabbedContent).active = "timeline-tab"
        self._show_frame()

    def action_step(self, step: int) -> None:
        if self.frame is None:
            self.frames = replay(self.live.events)
            self.frame = len(self.frames) - 1 if step < 0 else 0
            self.query_one("#tabs", TabbedContent).active = "timeline-tab"
        self.frame = min(max(self.frame + step, 0), max(len(self.frames) - 1, 0))
        self._show_frame()

    def action_play(self) -> None:
        if self._player is not None:
            self._player.stop()  # type: ignore[attr-defined]
            self._player = None
            return
        if self.frame is None:
            self.action_replay()
        self._player = self.set_interval(1.0, self._advance)

    def _advance(self) -> None:
        if self.frame is None or self.frame >= len(self.frames) - 1:
            if self._player is not None:
                self._player.stop()  # type: ignore[attr-defined]
                self._player = None
            return
        self.action_step(1)

    def _show_frame(self) -> None:
        self._show_tree(self.shown_tree(), incremental=False)
        self._show_timeline()
        self._show_status()

    def _show_timeline(self) -> None:
        lines = Text()
        if not self.frames:
            lines.append("the run's event log is empty so far", style="dim")
        current = None if self.frame is None else min(self.frame, len(self.frames) - 1)
        for frame in self.frames:
            here = frame.number == current
            lines.append("▶ " if here else "  ", style="bold yellow")
            lines.append(frame.describe() + "\n", style="bold" if here else "")
        lines.append("\nr: replay from the start (r again: back to now)   [ ]: step   p: play", style="dim")
        self.query_one("#timeline", Static).update(lines)


def _order(node: Node) -> tuple[int, int]:
    return node.depth, node.index


def _preorder(tree: Tree) -> list[Node]:
    """The nodes as the tree pane lists them: depth first, children by sample index."""
    return [tree.root, *tree.descendants(tree.root_id)]


def browse(run: str | Path, *, process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Open the browser on `run` in this terminal, until the user quits it (`process` and `log`: the
    search's own process and its output, when the browser watches a search it started)."""
    app = TreeBrowser(run, process=process, log=log)
    try:
        app.run()
    finally:
        app.live.close()
