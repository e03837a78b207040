"""A durable node store on SQLite.

One row per node, upserted by node id: re-running an expansion after a crash rewrites the same rows
instead of adding new ones. The database runs in WAL mode, so another process (a tree viewer) can
read while a search writes, and every committed node survives a `kill -9` of the writer. Nodes and
metadata given to one `put_many` are one transaction: a kill keeps both or neither.

A file that is not a tree store, or a damaged one, is a `UserError` saying so; the store never
writes to it (a read-only open changes nothing, and a writable open of a damaged file fails before
its first write).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

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

_SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"

T = TypeVar("T")


def damaged(path: Path, exc: Exception) -> UserError:
    """The error for a tree store that cannot be read: what is wrong, and that nothing was touched."""
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        return UserError(f"tree store {path} is locked by another process ({exc}); wait for it to finish or stop it")
    return UserError(
        f"tree store {path} is damaged or not a trellis tree store ({type(exc).__name__}: {exc}). Nothing was "
        f"changed: every file of the run is kept as it was. `sqlite3 {path} .recover` may save what it still "
        "holds; otherwise start a new run in another folder"
    )


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
        if self.path.is_dir():
            raise UserError(f"{self.path} is a folder, not a tree store; give the tree.db file inside a run folder")
        if readonly and not self.path.exists():
            raise UserError(f"no tree store at {self.path}; check the run directory")
        self._lock = threading.Lock()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        try:
            db = self._connect()
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise damaged(self.path, exc) from exc
        try:
            if not self.readonly:
                self._create(db, fresh=fresh)
            self._seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM nodes").fetchone()[0])
        except (sqlite3.DatabaseError, ValueError) as exc:
            db.close()
            raise damaged(self.path, exc) from exc
        return db

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        db.execute("PRAGMA busy_timeout=30000")
        return db

    @staticmethod
    def _create(db: sqlite3.Connection, *, fresh: bool) -> None:
        if not fresh:  # read before writing: a damaged file fails here, untouched
            db.execute("SELECT COUNT(*) FROM nodes").fetchone()
            db.execute("SELECT COUNT(*) FROM meta").fetchone()
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
        # an older store opened for writing gets nodes of this format from now on (its old rows are
        # read through the migration in `trellis.tree`)
        db.execute(
            "UPDATE meta SET value = ? WHERE key = 'format_version' AND CAST(value AS INTEGER) < ?",
            (str(FORMAT_VERSION), FORMAT_VERSION),
        )
        db.commit()

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read under the lock; a store that cannot be read is reported as damaged."""
        try:
            with self._lock:
                return fn(self._db)
        except (sqlite3.DatabaseError, ValueError) as exc:  # ValueError: a row that is not JSON
            raise damaged(self.path, exc) from exc

    def __enter__(self) -> TreeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def check(self) -> None:
        """Check every page of the file (SQLite's quick_check); raise UserError when it is damaged."""
        rows = self._read(lambda db: db.execute("PRAGMA quick_check").fetchall())
        problems = [str(row[0]) for row in rows if row[0] != "ok"]
        if problems:
            raise damaged(self.path, sqlite3.DatabaseError("; ".join(problems[:3])))

    # --- writes ------------------------------------------------------------------------------

    def put(self, node: Node) -> None:
        self.put_many([node])

    def put_many(self, nodes: Iterable[Node], *, meta: Mapping[str, Any] | None = None) -> None:
        """Upsert nodes and set metadata keys, all in one transaction: after a kill, either all of
        it is stored or none of it."""
        if self.readonly:
            raise UserError("this tree store was opened read-only")
        values = [(key, json.dumps(value, default=str)) for key, value in (meta or {}).items()]
        with self._lock:
            rows = []
            seq = self._seq
            for node in nodes:
                seq += 1
                rows.append((node.id, node.parent_id, node.depth, seq, node.model_dump_json()))
            with self._db:
                self._db.executemany(_UPSERT, rows)
                self._db.executemany(_SET_META, values)
            self._seq = seq

    def set_meta(self, key: str, value: Any) -> None:
        self.put_many([], meta={key: value})

    def save_tree(self, tree: Tree) -> None:
        """Write every node of `tree` and its metadata in one transaction."""
        self.put_many(tree.nodes.values(), meta={"tree": tree.meta, "run": tree.records()})

    # --- reads -------------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._read(lambda db: db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone())
        return self._parse(lambda: json.loads(row[0])) if row else default

    def get(self, node_id: NodeId) -> Node | None:
        row = self._read(lambda db: db.execute("SELECT data FROM nodes WHERE id = ?", (node_id,)).fetchone())
        return self._parse(lambda: Node.model_validate_json(row[0])) if row else None

    def count(self) -> int:
        return int(self._read(lambda db: db.execute("SELECT COUNT(*) FROM nodes").fetchone()[0]))

    def nodes(self) -> list[Node]:
        rows = self._read(lambda db: db.execute("SELECT data FROM nodes ORDER BY depth, seq").fetchall())
        return self._parse(lambda: [Node.model_validate_json(row[0]) for row in rows])

    def changes_since(self, seq: int) -> tuple[list[Node], int]:
        """Nodes written after `seq`, and the sequence number to ask from next time."""
        rows = self._read(
            lambda db: db.execute("SELECT seq, data FROM nodes WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        )
        if not rows:
            return [], seq
        return self._parse(lambda: [Node.model_validate_json(data) for _, data in rows]), int(rows[-1][0])

    def _parse(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (ValidationError, ValueError, TypeError) as exc:
            raise damaged(self.path, exc) from exc

    def load_tree(self) -> Tree:
        """The whole tree as stored (raises UserError when the store has no root yet)."""
        nodes = self.nodes()
        if not any(node.id == ROOT_ID for node in nodes):
            raise UserError(f"tree store {self.path} holds no root node yet")
        meta = self.get_meta("tree", {})
        records = self.get_meta("run", {})  # absent in format 1 stores: the records are in `meta` there
        return self._parse(lambda: Tree(nodes={node.id: node for node in nodes}, meta=meta, **(records or {})))
