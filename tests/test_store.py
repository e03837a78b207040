from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from test_tree import random_trees, sample_tree

from trellis.errors import UserError
from trellis.store import TreeStore
from trellis.tree import Tree

WRITER = textwrap.dedent(
    """
    import sys
    from trellis.store import TreeStore
    from trellis.tree import Tree
    store = TreeStore(sys.argv[1])
    tree = Tree.new()
    store.save_tree(tree)
    parent = "0"
    for i in range(100000):
        node = tree.add_child(parent, i % 3)
        if i % 3 == 2:
            parent = node.id
        store.put(node)
        print(node.id, flush=True)
    """
)


def test_round_trip(tmp_path: Path) -> None:
    tree = sample_tree()
    with TreeStore(tmp_path / "tree.db") as store:
        store.save_tree(tree)
        assert store.count() == len(tree)
        assert store.get("0.0") == tree.get("0.0")
        assert store.get("nope") is None
        assert store.load_tree() == tree
    with TreeStore(tmp_path / "tree.db", readonly=True) as reader:
        assert reader.load_tree() == tree


def test_upsert_by_id_never_duplicates(tmp_path: Path) -> None:
    tree = sample_tree()
    with TreeStore(tmp_path / "tree.db") as store:
        store.save_tree(tree)
        node = tree.get("0.0")
        node.visits += 5
        store.put(node)
        store.save_tree(tree)
        assert store.count() == len(tree)
        assert store.get("0.0").visits == node.visits  # type: ignore[union-attr]


def test_changes_since(tmp_path: Path) -> None:
    with TreeStore(tmp_path / "tree.db") as store:
        tree = Tree.new()
        store.save_tree(tree)
        nodes, seq = store.changes_since(0)
        assert [n.id for n in nodes] == ["0"]
        assert store.changes_since(seq) == ([], seq)
        store.put(tree.add_child("0", 0))
        store.put(tree.root)
        nodes, seq2 = store.changes_since(seq)
        assert [n.id for n in nodes] == ["0.0", "0"] and seq2 > seq


def test_meta_and_errors(tmp_path: Path) -> None:
    with TreeStore(tmp_path / "tree.db") as store:
        store.set_meta("config", {"seed": 3})
        assert store.get_meta("config") == {"seed": 3}
        assert store.get_meta("absent", 1) == 1
        with pytest.raises(UserError, match="no root"):
            store.load_tree()
    with pytest.raises(UserError, match="no tree store"):
        TreeStore(tmp_path / "missing.db", readonly=True)
    with TreeStore(tmp_path / "tree.db", readonly=True) as reader, pytest.raises(UserError, match="read-only"):
        reader.put(Tree.new().root)


@settings(max_examples=30, deadline=None)
@given(random_trees())
def test_store_round_trip_property(tmp_path_factory: pytest.TempPathFactory, case: tuple[Tree, list[str]]) -> None:
    tree, _ = case
    path = tmp_path_factory.mktemp("prop") / "tree.db"
    with TreeStore(path) as store:
        store.save_tree(tree)
        loaded = store.load_tree()
    assert loaded == tree
    loaded.check()


def _start_writer(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )


def test_readable_by_another_process_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "tree.db"
    writer = _start_writer(path)
    try:
        assert writer.stdout is not None
        for _ in range(50):  # wait until the writer has committed something
            writer.stdout.readline()
        seen = []
        with TreeStore(path, readonly=True) as reader:
            for _ in range(5):
                seen.append(reader.count())
                reader.load_tree().check()
                time.sleep(0.05)
        assert seen == sorted(seen) and seen[-1] > seen[0] >= 50
    finally:
        writer.kill()
        writer.wait()


def test_every_committed_node_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "tree.db"
    writer = _start_writer(path)
    assert writer.stdout is not None
    committed = [writer.stdout.readline().strip() for _ in range(300)]
    writer.send_signal(signal.SIGKILL)
    rest = writer.stdout.read().split()
    writer.wait()
    committed += rest
    with TreeStore(path) as store:
        tree = store.load_tree()
    tree.check()
    missing = [node_id for node_id in committed if node_id not in tree]
    assert not missing, f"{len(missing)} committed nodes lost, first {missing[:3]}"
