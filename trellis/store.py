"""A durable node store on SQLite.

One row per node, upserted by node id: re-running an expansion after a crash rewrites the same rows
instead of adding new ones. The database runs in WAL mode, so another process (a tree viewer) can
read while a search writes, and every committed node survives a `kill -9` of the writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trellis.errors import UserError
from trellis.tree import FORMAT_VERSION, ROOT_ID, Node, NodeId, Tree

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    parent_id TEXT,
    depth INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_seq ON nodes(seq);
"""

_UPSERT = """
INSERT INTO nodes (id, parent_id, depth, seq, data) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET parent_id = excluded.parent_id, depth = excluded.depth,
    seq = excluded.seq, data = excluded.data
"""


class TreeStore:
    """Nodes of one search tree in one SQLite file.

    Writes are serialised by a lock so the store can be shared by threads; each `put_many` is one
    transaction. `seq` numbers every write so a reader can ask for what changed since it last looked.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise UserError(f"no tree store at {self.path}; check the run directory")
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
            )
            self._db.commit()
        self._db.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.Lock()
        self._seq = self._max_seq()

    def __enter__(self) -> TreeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _max_seq(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM nodes").fetchone()
        return int(row[0])

    # --- writes ------------------------------------------------------------------------------

    def put(self, node: Node) -> None:
        self.put_many([node])

    def put_many(self, nodes: Iterable[Node]) -> None:
        """Upsert nodes in one transaction."""
        if self.readonly:
            raise UserError("this tree store was opened read-only")
        with self._lock:
            rows = []
            for node in nodes:
                self._seq += 1
                rows.append((node.id, node.parent_id, node.depth, self._seq, node.model_dump_json()))
            with self._db:
                self._db.executemany(_UPSERT, rows)

    def set_meta(self, key: str, value: Any) -> None:
        if self.readonly:
            raise UserError("this tree store was opened read-only")
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, default=str)),
            )

    def save_tree(self, tree: Tree) -> None:
        """Write every node of `tree` and its metadata."""
        self.put_many(tree.nodes.values())
        self.set_meta("tree", tree.meta)

    # --- reads -------------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def get(self, node_id: NodeId) -> Node | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM nodes WHERE id = ?", (node_id,)).fetchone()
        return Node.model_validate_json(row[0]) if row else None

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM nodes").fetchone()[0])

    def nodes(self) -> list[Node]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM nodes ORDER BY depth, seq").fetchall()
        return [Node.model_validate_json(row[0]) for row in rows]

    def changes_since(self, seq: int) -> tuple[list[Node], int]:
        """Nodes written after `seq`, and the sequence number to ask from next time."""
        with self._lock:
            rows = self._db.execute("SELECT seq, data FROM nodes WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        if not rows:
            return [], seq
        return [Node.model_validate_json(data) for _, data in rows], int(rows[-1][0])

    def load_tree(self) -> Tree:
        """The whole tree as stored (raises UserError when the store has no root yet)."""
        nodes = self.nodes()
        if not any(node.id == ROOT_ID for node in nodes):
            raise UserError(f"tree store {self.path} holds no root node yet")
        return Tree(nodes={node.id: node for node in nodes}, meta=self.get_meta("tree", {}))
