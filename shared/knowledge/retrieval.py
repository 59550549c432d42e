"""Search over knowledge chunks: BM25 in SQLite FTS5, fused with dense vectors when there are any.

Plain BM25 with an AND query misses paraphrases ("can I build without a permit" vs an answer that
says "no permit is needed for a friggebod"), and one with every word OR-ed is swayed by "what",
"is", "the". So:

* the query's content words (stop words dropped, with the bot's own list) are OR-ed;
* the Porter stemmer over ``unicode61 remove_diacritics 2`` makes "permits" meet "permit" and
  "café" meet "cafe"; Porter only strips English suffixes, which leaves most words of other
  languages as they are rather than mangling them;
* the heading path, a Q&A pair's question and the chunk's first sentence (its lead, which usually
  names the subject: "A bygglov is ...") are columns of their own, weighted above the body.

Words still miss what a question means in other words ("what does a permit cost?" vs "the fee is
25,000 SEK"). With vectors (:mod:`shared.knowledge.embeddings`) a search also ranks the chunks by
cosine similarity to the question's vector, and the two rankings are fused by reciprocal rank
fusion: a chunk scores the sum of 1 / (k + rank) over the lists it is in (k = 60, the value of the
original paper and of Azure AI Search; the top 50 of each list take part). RRF needs no
calibration between BM25 scores and cosines, which can't be compared across questions anyway.
https://plg.uwaterloo.ca/~gvcormac/cormacksigir09-rrf.pdf

Measured on ``bench/knowledge.py`` (recall@5 / MRR@10 over 503 FAQ questions): BM25 as above
0.676 / 0.533 (plain FTS5 BM25: 0.579 / 0.433); fused with all-MiniLM-L6-v2 vectors 0.757 / 0.622;
those vectors alone 0.815 / 0.652, but alone they would lose what words find and vectors miss
(names, codes, rare terms: the FAQ's questions hardly test that), and on the same FAQ in Swedish
(an English model) they score 0.396 / 0.286 against BM25's 0.553 / 0.422: equal-weight fusion
is kept, with the local model skipping questions not in its language. Tried and left out: fusing
the OR query with NEAR pairs of neighbouring words, with 5-letter prefixes, or with
pseudo-relevance feedback; other BM25 k1/b; a static (model2vec-style) embedding model shipped in
a wheel (recall@5 0.28 alone, 0.50 fused: worse than BM25).
https://www.sqlite.org/fts5.html#the_bm25_function
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.knowledge.chunking import Chunk
from shared.llm._text import STOP_WORDS, fold
from shared.search.query import Term, clean_text
from shared.search.segment import TOKENIZER

STEMMING_TOKENIZER = f"porter {TOKENIZER}"
# bm25() weights of the columns (headings, question, lead, text): what says what a chunk is about
# counts more than a word in passing. The lead is also in the text, so a lead word counts 1 + 1.
COLUMN_WEIGHTS = (2.0, 2.0, 1.0, 1.0)
MAX_QUERY_WORDS = 32  # a pasted paragraph still makes a bounded query
FUSION_K = 60  # reciprocal rank fusion's k
FUSION_DEPTH = 50  # results of each ranking that take part in the fusion
LEAD_WORDS = 40  # a "first sentence" without a full stop ends here

_WORD = re.compile(r"[^\W_]+")  # what unicode61 calls a token: letters and digits, not "_"
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s|\n")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS chunks(id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, source_id TEXT NOT NULL,
                                  position INTEGER NOT NULL, anchor TEXT NOT NULL, url TEXT NOT NULL,
                                  headings TEXT NOT NULL, question TEXT NOT NULL, lead TEXT NOT NULL,
                                  text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(source_id, position);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(headings, question, lead, text, content='chunks',
                                                  content_rowid='id', tokenize='{STEMMING_TOKENIZER}');
"""
_COLUMNS = "chunk_id, source_id, position, anchor, url, headings, question, text"
_INDEXED = "headings, question, lead, text"


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk that matches a query; a higher score is a better match (comparable within one query)."""

    chunk: Chunk
    score: float


def query_words(query: str) -> list[str]:
    """The content words of ``query`` in order, once each: stop words and single letters dropped.

    A query of nothing but stop words ("how do I?") keeps them: they are all it says.
    """
    words = _WORD.findall(clean_text(unicodedata.normalize("NFC", query)))
    kept: list[str] = []
    seen: set[str] = set()
    for word in words:
        key = fold(word)
        if key in seen or key in STOP_WORDS or (len(key) < 2 and not key.isdigit()):
            continue
        seen.add(key)
        kept.append(word)
    if not kept:
        kept = list(dict.fromkeys(words))
    return kept[:MAX_QUERY_WORDS]


def or_match(words: Sequence[str]) -> str | None:
    """An FTS5 expression matching any of ``words`` (each quoted: nothing typed is FTS syntax)."""
    return " OR ".join(Term(word).fts() for word in words) or None


def lead(text: str) -> str:
    """The first sentence (or line) of ``text``, at most LEAD_WORDS words."""
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    return " ".join(first.split()[:LEAD_WORDS])


def _to_row(chunk: Chunk) -> tuple[str, str, int, str, str, str, str, str, str]:
    headings = json.dumps(list(chunk.heading_path), ensure_ascii=False)
    # A Q&A chunk's text opens with its question, already a column: its lead is the answer's.
    body = chunk.text.split("\nA: ", 1)[-1] if chunk.question else chunk.text
    row = (chunk.id, chunk.source_id, chunk.position, chunk.anchor, chunk.url, headings, chunk.question, lead(body))
    return (*row, chunk.text)


def _from_row(row: Sequence[object]) -> Chunk:
    chunk_id, source_id, position, anchor, url, headings, question, text = row
    path = tuple(json.loads(str(headings)))
    return Chunk(
        str(chunk_id), str(source_id), str(text), path, str(anchor), str(question), int(str(position)), str(url)
    )


class KnowledgeIndex:
    """Chunks of many sources, searchable by weighted BM25.

    One connection guarded by a lock: safe to share between threads, one call at a time (the app
    runs searches in worker threads). Build in memory, or at ``path`` for a file that can be
    uploaded as it is and opened again with :meth:`open`.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        # Dense vectors by chunk id, in memory only (a file-backed index keeps its BM25 part), and
        # the matrix of them that searches multiply by, rebuilt after a change.
        self._vectors: dict[str, Any] = {}
        self._matrix: tuple[list[str], Any] | None = None
        conn.executescript(_SCHEMA)
        weights = ", ".join(str(w) for w in COLUMN_WEIGHTS)
        # The table's default rank, so ``ORDER BY rank`` is bm25 with these weights.
        conn.execute("INSERT INTO fts(fts, rank) VALUES('rank', ?)", (f"bm25({weights})",))
        conn.commit()

    @classmethod
    def build(
        cls, chunks: Iterable[Chunk] = (), *, path: Path | None = None, vectors: Sequence[Any] | None = None
    ) -> KnowledgeIndex:
        """A new index of ``chunks`` (with ``vectors[i]`` the unit vector of chunk i, if given): in
        memory, or in a fresh file at ``path`` (replaced if there)."""
        if path is not None:
            path.unlink(missing_ok=True)
        index = cls(sqlite3.connect(":memory:" if path is None else path, check_same_thread=False))
        index.add(chunks, vectors)
        return index

    @classmethod
    def open(cls, *, path: Path) -> KnowledgeIndex:
        """The index in an existing file (as :meth:`build` wrote it), for searching and updating."""
        if not path.is_file():
            raise FileNotFoundError(path)
        return cls(sqlite3.connect(path, check_same_thread=False))

    def add(self, chunks: Iterable[Chunk], vectors: Sequence[Any] | None = None) -> int:
        """Index ``chunks`` (and ``vectors[i]``, chunk i's unit vector, if given); one whose id is
        already indexed is skipped. Returns how many were new."""
        chunks = list(chunks)
        if vectors is not None and len(vectors) != len(chunks):
            raise ValueError(f"{len(vectors)} vectors for {len(chunks)} chunks")
        rows = [_to_row(chunk) for chunk in chunks]
        with self._lock, self._conn:
            if vectors is not None:
                for chunk, vector in zip(chunks, vectors, strict=True):
                    self._vectors.setdefault(chunk.id, vector)
                self._matrix = None
            last = int(self._conn.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()[0])
            self._conn.executemany(
                "INSERT OR IGNORE INTO chunks(chunk_id, source_id, position, anchor, url, headings, question, lead,"
                " text) VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            # New rows get ids above the old maximum: index just those, in one statement.
            added = self._conn.execute(
                f"INSERT INTO fts(rowid, {_INDEXED}) SELECT id, {_INDEXED} FROM chunks WHERE id > ?", (last,)
            ).rowcount
        return int(added)

    def remove(self, source_id: str) -> int:
        """Forget every chunk of ``source_id``; returns how many there were."""
        with self._lock, self._conn:
            gone = self._conn.execute("SELECT chunk_id FROM chunks WHERE source_id = ?", (source_id,)).fetchall()
            for (chunk_id,) in gone:
                if self._vectors.pop(chunk_id, None) is not None:
                    self._matrix = None
            # External-content FTS5 forgets a row only when told the values it indexed.
            self._conn.execute(
                f"INSERT INTO fts(fts, rowid, {_INDEXED}) SELECT 'delete', id, {_INDEXED} FROM chunks"
                " WHERE source_id = ?",
                (source_id,),
            )
            removed = self._conn.execute("DELETE FROM chunks WHERE source_id = ?", (source_id,)).rowcount
        return int(removed)

    def replace(self, source_id: str, chunks: Iterable[Chunk]) -> int:
        """Re-ingest a source: its old chunks out, ``chunks`` (those of ``source_id``) in; returns how many."""
        self.remove(source_id)
        return self.add(chunk for chunk in chunks if chunk.source_id == source_id)

    def count(self) -> int:
        """How many chunks are indexed."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def chunks_of(self, source_id: str) -> list[Chunk]:
        """The chunks of one source, in order."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM chunks WHERE source_id = ? ORDER BY position", (source_id,)
            ).fetchall()
        return [_from_row(row) for row in rows]

    @property
    def dense(self) -> bool:
        """Whether chunks have vectors, so a query vector takes part in :meth:`search`."""
        return bool(self._vectors)

    def search(self, query: str, top: int = 5, vector: Any | None = None, *, fusion_k: int = FUSION_K) -> list[Hit]:
        """The ``top`` chunks for ``query``, best first; [] when it has nothing to look for.

        Without ``vector`` (or without chunk vectors) the score is BM25's; with it, the ranking by
        words and the ranking by ``vector`` (the question's unit vector) are fused (RRF) and the
        score is the fused one.
        """
        if top <= 0:
            return []
        match = or_match(query_words(query))
        if vector is None or not self._vectors:
            if match is None:
                return []
            # FTS5's bm25() is negative, lower is better: flip it so a higher score is a better match.
            return [Hit(chunk, -rank) for rank, chunk in self._lexical(match, top)]
        depth = max(top, FUSION_DEPTH)
        lexical = self._lexical_ids(match, depth) if match is not None else []
        nearest = self._nearest(vector, depth)
        scores: dict[str, float] = {}
        for ranking in (lexical, nearest):
            for rank, chunk_id in enumerate(ranking, start=1):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (fusion_k + rank)
        best = sorted(scores, key=lambda chunk_id: -scores[chunk_id])[:top]
        known = self._chunks(best)
        return [Hit(known[chunk_id], scores[chunk_id]) for chunk_id in best if chunk_id in known]

    def _lexical(self, match: str, limit: int) -> list[tuple[float, Chunk]]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT rank, {', '.join('c.' + c.strip() for c in _COLUMNS.split(','))}"
                " FROM fts JOIN chunks AS c ON c.id = fts.rowid WHERE fts MATCH ? ORDER BY rank LIMIT ?",
                (match, limit),
            ).fetchall()
        return [(float(row[0]), _from_row(row[1:])) for row in rows]

    def _lexical_ids(self, match: str, limit: int) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.chunk_id FROM fts JOIN chunks AS c ON c.id = fts.rowid"
                " WHERE fts MATCH ? ORDER BY rank LIMIT ?",
                (match, limit),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def _nearest(self, vector: Any, limit: int) -> list[str]:
        """Ids of the ``limit`` chunks whose vectors are closest to ``vector`` (cosine), closest first."""
        import numpy as np

        with self._lock:
            if self._matrix is None:
                ids = list(self._vectors)
                self._matrix = (ids, np.vstack([self._vectors[i] for i in ids]).astype(np.float32, copy=False))
            ids, matrix = self._matrix
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != matrix.shape[1]:
            raise ValueError(f"the query vector has {query.shape[0]} dimensions; the chunks' have {matrix.shape[1]}")
        similarity = matrix @ query
        limit = min(limit, len(ids))
        top = np.argpartition(-similarity, limit - 1)[:limit]
        return [ids[i] for i in top[np.argsort(-similarity[top], kind="stable")]]

    def _chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM chunks WHERE chunk_id IN ({marks})", list(chunk_ids))
            return {chunk.id: chunk for chunk in map(_from_row, rows.fetchall())}

    def close(self) -> None:
        """Close the connection (a file-backed index is complete on disk after every call)."""
        with self._lock:
            self._conn.close()
