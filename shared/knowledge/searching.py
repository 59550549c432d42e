"""Search over the enabled knowledge sources' chunks, and how every worker learns of a change.

:func:`search` checks the question and asks the configured backend (:mod:`shared.knowledge.backend`):
this module's local index, or Azure AI Search (which falls back to the local index when it is down).
The local search runs on an in-memory :class:`KnowledgeIndex` per worker, built from the enabled sources'
chunks and cached. Every change writes a new random token to the ``knowledge`` record of the meta
table (a token, not a read-and-increment counter, so two changes racing on different workers can't
write the same value). A worker re-reads the token at most every :data:`VERSION_CHECK_SECONDS`
and rebuilds when it differs, so other workers see a change within seconds; the worker that made
the change also counts it locally and rebuilds before its next search, so it sees it at once.

With an embedder (:mod:`shared.knowledge.embeddings`) the index also holds the chunks' vectors and
a search embeds the question too (fused ranking, see :mod:`shared.knowledge.retrieval`). A search
never waits for chunk vectors: a build takes the ones cached by content hash (this worker's memory,
then the ``knowledgevectors`` table); when some are missing it serves BM25 alone at once and
computes them in the background, switching to the fused ranking when they are all there (and
trying again after :data:`VECTOR_RETRY_SECONDS` if the embedder fails). A question whose vector
can't be had within ``EMBEDDINGS_QUERY_TIMEOUT_SECONDS`` is answered by BM25 alone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.errors import Problem
from shared.knowledge.chunking import Chunk
from shared.knowledge.embeddings import Embedder, embed_query, embedding_text, get_embedder
from shared.knowledge.retrieval import FUSION_K, Hit, KnowledgeIndex
from shared.knowledge.vectors import VectorCache
from shared.storage.knowledge import KnowledgeRepository
from shared.storage.state import StateRepository

if TYPE_CHECKING:
    from shared.knowledge.embedding_settings import EmbeddingSettings

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000
VERSION_RECORD = "knowledge"  # the meta table's record holding the knowledge base's version token
VERSION_CHECK_SECONDS = 2.0
VECTOR_RETRY_SECONDS = 30.0  # after the embedder failed, the next search starts the chunk vectors again
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
    chunks: Sequence[Chunk] = ()  # what the index holds, kept while its vectors are still to come
    filling: asyncio.Task[None] | None = None  # computing the missing chunk vectors
    retry_at: float = 0.0  # when to start them again after a failure (0: not pending)


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


@functools.cache
def _vector_cache() -> VectorCache:
    from shared.storage.vectors import VectorRepository

    return VectorCache(VectorRepository())


def _embedding_settings() -> EmbeddingSettings:
    from shared.config import get_settings

    return get_settings().embeddings


async def build_index(
    chunks: Sequence[Chunk], embedder: Embedder | None, cache: VectorCache, *, budget: float | None
) -> tuple[KnowledgeIndex, bool]:
    """The index searches run on, and whether it holds every chunk's vector (or needs none).

    ``budget`` None takes only cached vectors (no embedding call); a number embeds what is missing
    for up to that many seconds. Without every vector the index is BM25 alone.
    """
    vectors = None
    if embedder is not None and chunks:
        texts = [embedding_text(chunk) for chunk in chunks]
        try:
            if budget is None:
                vectors = await cache.lookup(embedder, texts)
            else:
                vectors = await cache.vectors(embedder, texts, budget=budget)
        except ValueError as exc:  # vectors of different sizes: a model changed under the same name
            log.error("chunk vectors don't fit together (%s); searching by words only", exc)
    index = await asyncio.to_thread(KnowledgeIndex.build, chunks, vectors=vectors)
    return index, embedder is None or not chunks or vectors is not None


async def search_index(
    index: KnowledgeIndex, query: str, top: int, embedder: Embedder | None, *, timeout: float, fusion_k: int = FUSION_K
) -> list[Hit]:
    """Search ``index``: by words, fused with the question's vector when the index has vectors."""
    vector = await embed_query(embedder, query, timeout) if embedder is not None and index.dense else None
    try:
        return await asyncio.to_thread(index.search, query, top, vector, fusion_k=fusion_k)
    except ValueError as exc:  # the question's vector has another size than the chunks'
        log.error("%s; searching by words only", exc)
        return await asyncio.to_thread(index.search, query, top)


async def _build(version: str, generation: int, checked: float) -> _Cached:
    repo = KnowledgeRepository()
    sources = [source for source in await repo.all() if source.enabled]
    per_source = await asyncio.gather(*(repo.chunks_of(source.id) for source in sources))
    chunks: list[Chunk] = [chunk for chunks in per_source for chunk in chunks]
    embedder = get_embedder()
    index, complete = await build_index(chunks, embedder, _vector_cache(), budget=None)
    titles = {source.id: source.title for source in sources}
    cached = _Cached(index, titles, version, generation, checked)
    if not complete and embedder is not None:
        cached.chunks = chunks
        cached.filling = asyncio.create_task(_fill(cached, embedder))
    return cached


async def _fill(cached: _Cached, embedder: Embedder) -> None:
    """Compute the chunk vectors ``cached`` lacks, then give it an index with them."""
    try:
        budget = _embedding_settings().build_seconds
        index, complete = await build_index(cached.chunks, embedder, _vector_cache(), budget=budget)
        if complete:
            # Searches already running finish on the old index; nothing closes it under them.
            cached.index, cached.chunks, cached.retry_at = index, (), 0.0
        else:
            cached.retry_at = time.monotonic() + VECTOR_RETRY_SECONDS
    except Exception:  # the BM25 index keeps serving; try again later
        log.exception("computing chunk vectors failed")
        cached.retry_at = time.monotonic() + VECTOR_RETRY_SECONDS
    finally:
        cached.filling = None


def _refill(cached: _Cached, now: float) -> None:
    """Start the chunk vectors again if they failed a while ago."""
    embedder = get_embedder()
    if cached.chunks and cached.filling is None and 0 < cached.retry_at <= now and embedder is not None:
        cached.retry_at = 0.0
        cached.filling = asyncio.create_task(_fill(cached, embedder))


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
        if _cached is not None and _cached.filling is not None:
            _cached.filling.cancel()  # vectors of a knowledge base that changed since; what is done stays cached
        _cached = await _build(version, generation, now)
        return _cached


def result(chunk: Chunk, title: str, score: float) -> dict[str, Any]:
    """One search result as the API and the bot's grounding read it (the same for every backend)."""
    return {
        "sourceId": chunk.source_id,
        "sourceTitle": title,
        "url": chunk.url or None,
        "chunkId": chunk.id,
        "anchor": chunk.anchor,
        "headingPath": list(chunk.heading_path),
        "text": chunk.text,
        "score": round(score, 6),
    }


async def search(query: str, top: int) -> list[dict[str, Any]]:
    """The ``top`` chunks of enabled sources that best match ``query``, best first, from the configured
    backend (:mod:`shared.knowledge.backend`)."""
    from shared.knowledge.backend import get_backend

    if not query.strip():
        raise _invalid("q", "is required: the words to look for")
    if len(query) > MAX_QUERY_CHARS:
        raise _invalid("q", f"must be at most {MAX_QUERY_CHARS} characters")
    return await get_backend().search(_UNSTORABLE.sub(" ", query), top)


async def search_local(query: str, top: int) -> list[dict[str, Any]]:
    """Search this worker's index of the enabled sources (built from Tables), ``query`` already checked."""
    cached = await _current()
    _refill(cached, time.monotonic())
    settings = _embedding_settings()
    hits = await search_index(
        cached.index, query, top, get_embedder(), timeout=settings.query_timeout_seconds, fusion_k=settings.fusion_k
    )
    return [result(hit.chunk, cached.titles.get(hit.chunk.source_id, ""), hit.score) for hit in hits]
