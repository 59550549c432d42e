"""Search over the enabled knowledge sources' chunks, and how every worker learns of a change.

Search runs on an in-memory :class:`KnowledgeIndex` per worker, built from the enabled sources'
chunks and cached. Every change writes a new random token to the ``knowledge`` record of the meta
table (a token, not a read-and-increment counter, so two changes racing on different workers can't
write the same value). A worker re-reads the token at most every :data:`VERSION_CHECK_SECONDS`
and rebuilds when it differs, so other workers see a change within seconds; the worker that made
the change also counts it locally and rebuilds before its next search, so it sees it at once.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.errors import Problem
from shared.knowledge.chunking import Chunk
from shared.knowledge.retrieval import KnowledgeIndex
from shared.storage.knowledge import KnowledgeRepository
from shared.storage.state import StateRepository

MAX_QUERY_CHARS = 1000
VERSION_RECORD = "knowledge"  # the meta table's record holding the knowledge base's version token
VERSION_CHECK_SECONDS = 2.0
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates


def _invalid(name: str, message: str) -> Problem:
    return Problem(
        422, f"Invalid fields: {name}.", kind="validation-error", errors=[{"field": name, "message": message}]
    )


@dataclass
class _Cached:
    """This worker's index of the enabled sources' chunks and what it was built from."""

    index: KnowledgeIndex
    titles: dict[str, str] = field(default_factory=dict)
    version: str = ""  # the meta table's token when it was built
    generation: int = -1  # this worker's own changes counted when it was built
    checked: float = 0.0  # time.monotonic() of the last token read that matched


_cached: _Cached | None = None
_generation = 0  # changes made by this worker
_lock: asyncio.Lock | None = None


async def changed() -> None:
    """After a change: this worker rebuilds before its next search, and others learn it from the token."""
    global _generation
    _generation += 1
    await StateRepository().merge(VERSION_RECORD, {"version": uuid.uuid4().hex})


async def _version() -> str:
    return str((await StateRepository().get(VERSION_RECORD)).get("version", ""))


def _fresh(cached: _Cached | None, now: float) -> bool:
    return cached is not None and cached.generation == _generation and now - cached.checked < VERSION_CHECK_SECONDS


async def _build(version: str, generation: int, checked: float) -> _Cached:
    repo = KnowledgeRepository()
    sources = [source for source in await repo.all() if source.enabled]
    per_source = await asyncio.gather(*(repo.chunks_of(source.id) for source in sources))
    chunks: list[Chunk] = [chunk for chunks in per_source for chunk in chunks]
    index = await asyncio.to_thread(KnowledgeIndex.build, chunks)
    titles = {source.id: source.title for source in sources}
    return _Cached(index, titles, version, generation, checked)


async def _current() -> _Cached:
    """The index to search: the cached one while it is known to be current, else a new one."""
    global _cached, _lock
    if _fresh(_cached, time.monotonic()) and _cached is not None:
        return _cached
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        now = time.monotonic()
        if _fresh(_cached, now) and _cached is not None:
            return _cached
        generation = _generation
        version = await _version()  # read before the sources: a change after this is seen next time
        if _cached is not None and _cached.generation == generation and _cached.version == version:
            _cached.checked = now
            return _cached
        _cached = await _build(version, generation, now)
        return _cached


async def search(query: str, top: int) -> list[dict[str, Any]]:
    """The ``top`` chunks of enabled sources that best match ``query``, best first."""
    if not query.strip():
        raise _invalid("q", "is required: the words to look for")
    if len(query) > MAX_QUERY_CHARS:
        raise _invalid("q", f"must be at most {MAX_QUERY_CHARS} characters")
    query = _UNSTORABLE.sub(" ", query)
    cached = await _current()
    hits = await asyncio.to_thread(cached.index.search, query, top)
    return [
        {
            "sourceId": hit.chunk.source_id,
            "sourceTitle": cached.titles.get(hit.chunk.source_id, ""),
            "url": hit.chunk.url or None,
            "chunkId": hit.chunk.id,
            "anchor": hit.chunk.anchor,
            "headingPath": list(hit.chunk.heading_path),
            "text": hit.chunk.text,
            "score": round(hit.score, 6),
        }
        for hit in hits
    ]
