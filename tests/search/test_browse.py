"""`trellis tree browse` driven headless (Textual's pilot) on run folders made by real (scripted) searches."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from scripted_agents import code_task_model
from test_render import decided_tree
from test_search import TASK, config
from textual.widgets import Static
from trellis.cli.browse import TreeBrowser
from trellis.cli.replay import replay, tree_at
from trellis.cli.runview import LiveRun, NodeFilter, Patches, prompt_for
from trellis.envs.sandbox import BwrapSandbox
from trellis.envs.tasks.world import CodeTaskWorld, make_task_repository
from trellis.search.run import RunDir, run_search

from trellis.errors import UserError
from trellis.models import ScriptedModel
from trellis.store import TreeStore
from trellis.tree import Message

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed")
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "views"
HERE = Path(__file__).resolve().parent


def solve_task(root: Path, model: ScriptedModel, *, on_context: Any = None, **changes: object) -> Path:
    """A search on a code task whose world's worktree lives in the run folder, as `swe solve` lays it out."""
    run = root / "run"
    world = CodeTaskWorld(TASK, BwrapSandbox(make_task_repository(TASK, run / "worktrees" / "w0")))
    asyncio.run(
        run_search(
            task=world.task,
            worlds=[world],
            model=model,
            config=config(**changes),
            run_dir=run,
            info={"default_path": world.default_path},
            on_context=on_context,
        )
    )
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return solve_task(tmp_path_factory.mktemp("browse"), code_task_model(TASK))


def screen_text(app: TreeBrowser) -> str:
    """The screen as plain text, one line per row (what a person sees, without colours)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text.rstrip() for strip in strips) + "\n"


def pane(app: TreeBrowser, name: str) -> str:
    return str(app.query_one(f"#{name}", Static).render())


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.pause()


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TRELLIS_UPDATE_GOLDENS"):
        path.write_text(text)
    assert path.exists(), f"missing golden {path}; run with TRELLIS_UPDATE_GOLDENS=1"
    assert text == path.read_text()


async def test_navigate_and_open_nodes(run_dir: Path) -> None:
    tree = RunDir(run_dir).load_tree()
    final = tree.final.node  # type: ignore[union-attr]
    app = TreeBrowser(run_dir, poll_seconds=30)
    async with app.run_test(size=(150, 44)) as pilot:
        await settle(pilot)
        assert set(app._items) == set(tree.nodes)  # every node is in the tree pane, expanded
        assert app.current_id() == "0"
        await pilot.press("down")
        await settle(pilot)
        assert app.current_id() == "0.0"
        shown = app.query_one("#node", Static).render()
        text = str(shown)
        assert "node 0.0  (parent 0)" in text or app.current_id() == "0.0"
        await pilot.press("c")
        await settle(pilot)
        assert app.current_id() == final
        await pilot.press("b")
        await settle(pilot)
        assert app.current_id() == tree.best_path()[-1]
        # the tree pane marks the best path, the chosen node, merged samples and duplicates
        screen = screen_text(app)
        assert "» 0 r=" in screen and "★ chosen" in screen
        assert any(n.count > 1 for n in tree) and " x2" in screen
        duplicate = next(n for n in tree if n.duplicate_of)
        assert f"(= {duplicate.duplicate_of})" in screen
        # collapse and expand a branch with the keyboard
        app.select("0.1")
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert not app._items["0.1"].is_expanded
        await pilot.press("space")
        await settle(pilot)
        assert app._items["0.1"].is_expanded


async def test_screen_golden(tmp_path: Path) -> None:
    """The screen on a fixed tree (the rendering goldens' tree), the root opened (no prompt: the
    golden does not change with the agents' prompts)."""
    run = tmp_path / "run"
    with TreeStore(run / "tree.db") as store:
        store.save_tree(decided_tree())
    app = TreeBrowser(run, poll_seconds=30)
    async with app.run_test(size=(150, 44)) as pilot:
        await settle(pilot)
        check_golden("browse_root.txt", screen_text(app).replace(str(run), "RUN"))


async def test_mouse_click_opens_a_node(run_dir: Path) -> None:
    app = TreeBrowser(run_dir, poll_seconds=30)
    async with app.run_test(size=(150, 44)) as pilot:
        await settle(pilot)
        line = app._items["0.1"].line
        await pilot.click("#tree", offset=(12, line))
        await settle(pilot)
        assert app.current_id() == "0.1"


async def test_filter_by_tool_reason_and_value(run_dir: Path) -> None:
    tree = RunDir(run_dir).load_tree()
    finished = [n.id for n in tree if n.terminal_reason == "finished"]
    app = TreeBrowser(run_dir, poll_seconds=30)
    async with app.run_test(size=(150, 44)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"tool:finish", "enter")
        await settle(pilot)
        assert sorted(app.matches) == sorted(finished)
        ancestors = {a.id for f in finished for a in tree.ancestors(f)}
        assert set(app._items) == ancestors  # the matches and the branches above them, nothing else
        assert app.current_id() == app.matches[0]
        await pilot.press("n")
        await settle(pilot)
        assert app.current_id() == app.matches[1 % len(app.matches)]
        await pilot.press("escape")
        await settle(pilot)
        assert set(app._items) == set(tree.nodes)
        app.apply_filter("reason:format-error")
        await settle(pilot)
        assert app.matches and all(tree.nodes[m].terminal_reason == "format error" for m in app.matches)
        app.apply_filter("value:0.5..1 is:terminal")
        await settle(pilot)
        assert app.matches == [n.id for n in tree.descendants("0") if n.terminal and n.visits and n.value >= 0.5]
        app.apply_filter("value>>1")
        await settle(pilot)
        assert "value>>1" in app.message  # a bad term is reported; the filter stays as it was


def test_filter_terms() -> None:
    query = NodeFilter.parse("tool:write_file reason:finished value:0.2..0.8 reward<0.5 is:dropped Solution")
    assert query.tools == ("write_file",) and query.reasons == ("finished",)
    assert query.bounds == (("value", ">=", 0.2), ("value", "<=", 0.8), ("reward", "<", 0.5))
    assert query.flags == ("dropped",) and query.words == ("solution",)
    with pytest.raises(UserError, match="is:best"):
        NodeFilter.parse("is:nothing")
    assert not NodeFilter.parse("  ")


async def test_replay_iteration_by_iteration(run_dir: Path) -> None:
    live = LiveRun(run_dir)
    live.poll()
    tree = live.tree
    assert tree is not None
    frames = replay(live.events)
    # backed up from the events alone, the last frame holds every node with its final statistics
    last = tree_at(tree, frames[-1])
    assert set(last.nodes) == set(tree.nodes)
    for node in tree:
        assert (last.nodes[node.id].visits, round(last.nodes[node.id].value_sum, 6)) == (
            node.visits,
            round(node.value_sum, 6),
        )
    assert frames[-1].decided == tree.final.node  # type: ignore[union-attr]
    app = TreeBrowser(run_dir, poll_seconds=30)
    async with app.run_test(size=(150, 44)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert set(app._items) == {"0"}  # before the first iteration: the root alone
        assert "▶ start" in pane(app, "timeline")
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert set(app._items) == {"0", *frames[1].created}
        assert "◎ expanded" in screen_text(app) and "+ new" in screen_text(app)
        assert "▶ iteration 0" in pane(app, "timeline")
        for _ in frames:
            await pilot.press("right_square_bracket")
        await settle(pilot)
        assert set(app._items) == set(tree.nodes)
        assert f"replay {len(frames) - 1}/{len(frames) - 1}" in pane(app, "status")
        await pilot.press("r")  # back to the run as it is
        await settle(pilot)
        assert app.frame is None and "replay" not in pane(app, "status")


async def test_diff_of_two_nodes(run_dir: Path, tmp_path: Path) -> None:
    tree = RunDir(run_dir).load_tree()
    final = tree.final.node  # type: ignore[union-attr]
    patches = Patches(run_dir)
    assert patches.patch(tree.nodes[final])[0] == (run_dir / "final.patch").read_text()
    assert patches.patch(tree.root)[0] == ""
    with pytest.raises(UserError, match="not a state id"):
        patches.diff(None, "--output=/tmp/x")
    app = TreeBrowser(run_dir, poll_seconds=30)
    async with app.run_test(size=(150, 44)) as pilot:
        await settle(pilot)
        await pilot.press("c", "m", "home")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        text = screen_text(app)
        assert f"{final}: state" in text and "0: state" in text and "+    return s[::-1]" in text
    # a run without worktrees says so in the pane (and falls back to patches submitted at finish)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("tree.db", "events.jsonl"):
        shutil.copy(run_dir / name, bare / name)
    patch, source = Patches(bare).patch(tree.nodes[final])
    assert "has no worktrees" in source and "return s[::-1]" in patch
    app = TreeBrowser(bare, poll_seconds=30)
    async with app.run_test(size=(150, 44)) as pilot:
        await settle(pilot)
        await pilot.press("m", "down", "d")
        await settle(pilot)
        assert "this run has no worktrees" in screen_text(app)


def test_rebuilt_prompts_are_what_the_model_saw(tmp_path: Path) -> None:
    """The engine records each expansion's notes and retry turns on the children it makes, so every
    rebuilt prompt is exactly a request the model received, notes and retries included."""
    model = code_task_model(TASK, wrong="    return s\n")
    run = solve_task(tmp_path, model)
    tree = RunDir(run).load_tree()
    requests = [[m.model_dump() for m in r.messages] for r in model.requests]
    hinted = retried = 0
    for node in tree:
        if node.step is None or node.parent_id is None:
            continue
        view = _must(prompt_for(tree, node))
        assert view.source in ("rebuilt", "opening", "focused repair") and not view.notes, (node.id, view.notes)
        shown = [m.model_dump() for m in view.messages]
        assert shown in requests, node.id
        hinted += bool(node.meta.get("hints"))
        retried += bool(node.meta.get("retry_turns"))
    assert hinted, "no expansion had notes: the test shows nothing about them"
    assert retried, "no reply was retried: the test shows nothing about retry turns"


def _must(view: Any) -> Any:
    assert view is not None
    return view


def test_stored_prompts_get_their_retry_turns(run_dir: Path) -> None:
    tree = RunDir(run_dir).load_tree()
    node = next(n for n in tree if n.step is not None and n.parent_id is not None and not n.meta.get("opening"))
    rebuilt = _must(prompt_for(tree, node)).messages
    turns = [Message(role="assistant", content="no action here"), Message(role="user", content="Reply again.")]
    stored = node.model_copy(
        update={
            "step": node.step.model_copy(update={"prompt": rebuilt}),  # type: ignore[union-attr]
            "meta": {**node.meta, "retry_turns": [t.model_dump() for t in turns]},
        }
    )
    view = _must(prompt_for(tree, stored))
    assert view.source == "stored" and view.messages == [*rebuilt, *turns] and not view.notes


def _writer(root: Path, delay: float) -> subprocess.Popen[str]:
    """A search in another process (tests/search/resume_runner.py), slowed down so it is seen growing."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "resume_runner.py"), str(root), "new", str(delay)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_live_while_another_process_writes(tmp_path: Path) -> None:
    writer = _writer(tmp_path, 0.03)
    try:
        app = TreeBrowser(tmp_path / "run", poll_seconds=0.1)
        async with app.run_test(size=(150, 44)) as pilot:
            counts: list[int] = []
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                await pilot.pause(0.2)
                counts.append(len(app._items))
                if app.live.decided:
                    break
            await settle(pilot)
            assert app.live.decided, writer.stdout.read() if writer.poll() is not None else "still running"  # type: ignore[union-attr]
            assert len(set(counts)) > 2, counts  # it was seen growing
            final = app.live.tree
            assert final is not None and set(app._items) == set(final.nodes)
            assert "done, chose" in pane(app, "status")
    finally:
        writer.kill()
        writer.wait()
