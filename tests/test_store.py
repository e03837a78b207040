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


META_WRITER = textwrap.dedent(
    """
    import sys
    from trellis.store import TreeStore
    from trellis.tree import Tree
    store = TreeStore(sys.argv[1])
    tree = Tree.new()
    tree.meta["count"] = 1
    store.save_tree(tree)
    for i in range(100000):
        node = tree.add_child("0", i)
        tree.meta["count"] = len(tree)
        store.put_many([node], meta={"tree": tree.meta, "elapsed_seconds": float(i)})
        print(node.id, flush=True)
    """
)


def test_nodes_and_metadata_are_one_transaction(tmp_path: Path) -> None:
    tree = sample_tree()
    with TreeStore(tmp_path / "tree.db") as store:
        store.save_tree(tree)
        node = tree.add_child("0", 7)
        # a metadata value that cannot be stored fails the whole write: the node is not stored either
        with pytest.raises(Exception, match="bind"):
            store.put_many([node], meta={"tree": tree.meta, "bad": 1, ("not", "a", "key"): 1})  # type: ignore[dict-item]
        assert store.get(node.id) is None
        store.put_many([node], meta={"tree": {"reflections": ["x"]}, "elapsed_seconds": 2.5})
        assert store.get(node.id) == node
        assert store.get_meta("tree") == {"reflections": ["x"]} and store.get_meta("elapsed_seconds") == 2.5


def test_a_kill_keeps_nodes_and_metadata_together(tmp_path: Path) -> None:
    path = tmp_path / "tree.db"
    writer = subprocess.Popen([sys.executable, "-c", META_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    for _ in range(200):
        writer.stdout.readline()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with TreeStore(path) as store:
        tree = store.load_tree()
        assert tree.meta["count"] == len(tree) > 200
        assert store.get_meta("elapsed_seconds") == len(tree) - 2


def _damage(path: Path, how: str) -> None:
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 3], "garbage": b"not sqlite " * 100, "empty": b""}[how])


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_a_damaged_store_is_a_user_error_and_stays_as_it_was(tmp_path: Path, how: str) -> None:
    path = tmp_path / "tree.db"
    with TreeStore(path) as store:
        tree = Tree.new()
        for i in range(300):
            tree.add_child("0", i)
        store.save_tree(tree)
    with TreeStore(path) as store:  # a checkpoint moves the nodes into the main file
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _damage(path, how)
    before = path.read_bytes()
    with (
        pytest.raises(UserError, match="damaged or not a trellis tree store"),
        TreeStore(path, readonly=True) as reader,
    ):
        reader.check()
        reader.load_tree()
    if how != "empty":  # an empty file is a new store to a writer
        with pytest.raises(UserError, match="damaged or not a trellis tree store"):
            TreeStore(path)
    assert path.read_bytes() == before


def test_a_row_that_is_not_a_node_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "tree.db"
    with TreeStore(path) as store:
        store.save_tree(sample_tree())
        store._db.execute("UPDATE nodes SET data = '{\"id\": 5' WHERE id = '0.0'")
        store._db.commit()
        with pytest.raises(UserError, match="damaged"):
            store.load_tree()
    with TreeStore(path, readonly=True) as reader:
        reader.check()  # the file itself is sound
    with pytest.raises(UserError, match="is a folder"):
        TreeStore(tmp_path)
