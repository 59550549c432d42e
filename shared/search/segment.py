"""Search segments: immutable SQLite files with an FTS5 index over a batch of messages (sync).

Rows are numbered in sort-key order (``<createdAt>|<session>|<seq>``), so newest-first is FTS5's
reverse rowid order and a page cursor becomes a rowid bound: no sorting of matches, ever.
https://www.sqlite.org/fts5.html#external_content_tables
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.search.query import MARK_CLOSE, MARK_OPEN

# remove_diacritics 2 folds accents (café = cafe); unicode61 also folds case.
TOKENIZER = "unicode61 remove_diacritics 2"
_SCHEMA = f"""
CREATE TABLE docs(id INTEGER PRIMARY KEY, key TEXT NOT NULL, session_id TEXT NOT NULL, seq INTEGER NOT NULL,
                  message_id TEXT NOT NULL, sender TEXT NOT NULL, created_at TEXT NOT NULL, text TEXT NOT NULL);
CREATE VIRTUAL TABLE fts USING fts5(text, content='docs', content_rowid='id', tokenize='{TOKENIZER}');
"""
_COLUMNS = "key, session_id, seq, message_id, sender, created_at, text"
SNIPPET_TOKENS = 16


@dataclass(frozen=True)
class Doc:
    """One message as the index keeps it."""

    key: str
    session_id: str
    seq: int
    message_id: str
    sender: str
    created_at: str
    text: str


@dataclass(frozen=True)
class Hit:
    """A matching message with its raw snippet (markers, not yet escaped)."""

    key: str
    session_id: str
    seq: int
    message_id: str
    sender: str
    created_at: str
    snippet: str


def build(path: Path, docs: Iterable[Doc], merge_from: Iterable[Path] = ()) -> int:
    """Write a segment at ``path`` from ``docs`` and older segments; returns its row count."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;" + _SCHEMA)
        # A keyed staging table sorts and de-duplicates (a message compacted twice after a crash).
        conn.execute(
            "CREATE TEMP TABLE incoming(key TEXT PRIMARY KEY, session_id, seq, message_id, sender, created_at, text)"
            " WITHOUT ROWID"
        )
        conn.executemany(f"INSERT OR IGNORE INTO incoming({_COLUMNS}) VALUES (?,?,?,?,?,?,?)", _tuples(docs))
        for index, source in enumerate(merge_from):
            conn.execute(f"ATTACH DATABASE ? AS src{index}", (str(source),))
            conn.execute(f"INSERT OR IGNORE INTO incoming({_COLUMNS}) SELECT {_COLUMNS} FROM src{index}.docs")
            conn.commit()
            conn.execute(f"DETACH DATABASE src{index}")
        conn.execute(f"INSERT INTO docs({_COLUMNS}) SELECT {_COLUMNS} FROM incoming ORDER BY key")
        conn.execute("DROP TABLE incoming")
        conn.execute("INSERT INTO fts(fts) VALUES('rebuild')")
        conn.commit()
        count = int(conn.execute("SELECT count(*) FROM docs").fetchone()[0])
    finally:
        conn.close()
    return count


def _tuples(docs: Iterable[Doc]) -> Iterator[tuple[Any, ...]]:
    for doc in docs:
        yield (doc.key, doc.session_id, doc.seq, doc.message_id, doc.sender, doc.created_at, doc.text)


def memory_segment(docs: Iterable[Doc]) -> sqlite3.Connection:
    """An in-memory segment (for the pending rows of one query)."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(_SCHEMA)
    ordered = sorted({doc.key: doc for doc in docs}.values(), key=lambda doc: doc.key)
    conn.executemany(f"INSERT INTO docs({_COLUMNS}) VALUES (?,?,?,?,?,?,?)", _tuples(ordered))
    conn.execute("INSERT INTO fts(fts) VALUES('rebuild')")
    return conn


def _bound(conn: sqlite3.Connection, before: str | None) -> int:
    """The smallest rowid whose key is >= ``before`` (rowids below it sort before the cursor)."""
    high = int(conn.execute("SELECT coalesce(max(id), 0) FROM docs").fetchone()[0]) + 1
    if before is None:
        return high
    low = 1
    # Binary search on the rowid: keys increase with it, so no index on key is needed.
    while low < high:
        middle = (low + high) // 2
        if conn.execute("SELECT key FROM docs WHERE id = ?", (middle,)).fetchone()[0] < before:
            low = middle + 1
        else:
            high = middle
    return low


def query(conn: sqlite3.Connection, match: str, before: str | None, limit: int) -> list[Hit]:
    """Newest matches first, only those sorting before ``before``, at most ``limit``."""
    bound = _bound(conn, before)
    found = conn.execute(
        "SELECT rowid, snippet(fts, 0, ?, ?, '…', ?) FROM fts WHERE fts MATCH ? AND rowid < ?"
        " ORDER BY rowid DESC LIMIT ?",
        (MARK_OPEN, MARK_CLOSE, SNIPPET_TOKENS, match, bound, limit),
    ).fetchall()
    hits = []
    for rowid, snippet in found:
        row = conn.execute(
            "SELECT key, session_id, seq, message_id, sender, created_at FROM docs WHERE id = ?", (rowid,)
        ).fetchone()
        hits.append(Hit(row[0], row[1], int(row[2]), row[3], row[4], row[5], snippet))
    return hits


class SegmentReader:
    """A read-only connection to one cached segment file, used by one thread at a time."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def query(self, match: str, before: str | None, limit: int) -> list[Hit]:
        """See :func:`query`."""
        with self._lock:
            return query(self._conn, match, before, limit)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
