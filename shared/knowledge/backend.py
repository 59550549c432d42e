"""Where knowledge searches run and where source changes go: the local index, or Azure AI Search.

Both backends have one interface (:class:`KnowledgeBackend`), picked by ``KNOWLEDGE_BACKEND``:

* ``local``: every worker searches its own index built from Tables (:mod:`shared.knowledge.searching`);
  a change only has to be announced (a new version token).
* ``azure-search``: searches go to Azure AI Search (:mod:`shared.knowledge.azure_search`), hybrid with
  the question's embedding when an embedder and ``AZURE_SEARCH_VECTOR_DIMENSIONS`` are configured.

Consistency with ``azure-search``: Tables stay the record. A change is written to Tables first, then
the request or job that made it sends the source as Tables now hold it (its chunks, title, enabled
flag; chunk vectors from the content-hash cache, so unchanged text costs no embedding call). The
source row is marked (``indexError``) before sending and cleared, if the row did not change
meanwhile, after; a source that changed during the send is sent again. So a crash, an outage or a
race leaves the mark, which the knowledge refresh timer finds and sends again (:meth:`repair`); the
API shows it as the source's ``indexError``, and the request never fails for it. A deletion is the
exception: it removes the source's documents first and refuses (503, nothing deleted) when the
service is down, so a deleted source can never keep answering. A search the service can't answer
(down, throttling, refused credentials) is answered from the local index, built from Tables.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared.config import get_settings
from shared.errors import Problem
from shared.knowledge import searching

if TYPE_CHECKING:
    from shared.knowledge.azure_search import AzureSearchBackend
    from shared.knowledge.chunking import Chunk
    from shared.knowledge.vectors import VectorCache
    from shared.storage.knowledge import SourceRecord

log = logging.getLogger(__name__)

Change = Literal["content", "settings"]  # settings: the title or enabled flag, not the chunks
REQUEST_EMBED_SECONDS = 10.0  # a request embeds new chunks this long; the refresh timer does the rest
SEND_ATTEMPTS = 3
PENDING = "being sent to Azure AI Search (the knowledge refresh timer sends it again if this does not finish)"
RETRY_NOTE = "the knowledge refresh timer sends it again within 5 minutes"


class KnowledgeBackend(Protocol):
    """Searches the enabled sources' chunks and keeps up with changes to the sources."""

    name: str
    mark: str  # what a source row says while a change is on its way to the backend ("" when none is sent)

    async def search(self, query: str, top: int) -> list[dict[str, Any]]:
        """The ``top`` best chunks for ``query`` (already checked), as :func:`searching.result` rows."""
        ...

    async def publish(self, source_id: str, *, change: Change = "content", embed_seconds: float | None = None) -> str:
        """Reflect the source as Tables now hold it (or its absence); its ``indexError`` after ("" when in
        step). Never raises for the backend's outage."""
        ...

    async def remove(self, source_id: str, delete: Callable[[], Awaitable[None]]) -> None:
        """Delete a source: ``delete()`` removes it from Tables; the backend drops its chunks too."""
        ...

    async def repair(self, sources: Sequence[SourceRecord]) -> int:
        """Send again the sources a failed or interrupted change left behind; how many were sent."""
        ...


class LocalBackend:
    """Each worker's own index, rebuilt from Tables when the version token changes."""

    name = "local"
    mark = ""

    async def search(self, query: str, top: int) -> list[dict[str, Any]]:
        """Search this worker's index."""
        return await searching.search_local(query, top)

    async def publish(self, source_id: str, *, change: Change = "content", embed_seconds: float | None = None) -> str:  # noqa: ARG002
        """Announce the change: this worker rebuilds at once, the others within seconds."""
        await searching.changed()
        return ""

    async def remove(self, source_id: str, delete: Callable[[], Awaitable[None]]) -> None:  # noqa: ARG002
        """Delete from Tables and announce it (even when the delete failed half way)."""
        try:
            await delete()
        finally:
            await searching.changed()

    async def repair(self, sources: Sequence[SourceRecord]) -> int:  # noqa: ARG002
        """Nothing is ever behind."""
        return 0


class AzureBackend:
    """Azure AI Search holds the chunks; the local index is kept announced as the fallback."""

    name = "azure-search"
    mark = PENDING

    def __init__(self, index: AzureSearchBackend) -> None:
        self.index = index
        self._locks: dict[str, asyncio.Lock] = {}  # one send of a source at a time in this worker
        self._cache: VectorCache | None = None

    async def search(self, query: str, top: int) -> list[dict[str, Any]]:
        """One hybrid query to the service; the local index when the service fails."""
        from shared.knowledge.azure_search import SearchBackendError, SearchUnavailable

        vector = await self._query_vector(query)
        try:
            hits = await self.index.search(query, top, vector)
        except SearchBackendError as exc:
            level = logging.WARNING if isinstance(exc, SearchUnavailable) else logging.ERROR
            log.log(level, "knowledge search from the local index: %s", exc)
            return await searching.search_local(query, top)
        return [searching.result(hit.chunk, hit.title, hit.score) for hit in hits]

    async def publish(self, source_id: str, *, change: Change = "content", embed_seconds: float | None = None) -> str:
        """Send the source (see the module docstring); failures are logged and marked on the source."""
        await searching.changed()  # the fallback index and the other workers
        async with self._locks.setdefault(source_id, asyncio.Lock()):
            try:
                return await self._send(source_id, change == "content", embed_seconds)
            except Exception:  # noqa: BLE001 - the change is stored; the mark (or the timer) brings the index up to date
                log.exception("knowledge source %s: sending it to Azure AI Search failed", source_id)
                return PENDING

    async def remove(self, source_id: str, delete: Callable[[], Awaitable[None]]) -> None:
        """Drop the source's documents, then delete it from Tables; 503 (nothing deleted) when the service is down."""
        from shared.knowledge.azure_search import SearchBackendError
        from shared.storage.knowledge import KnowledgeRepository

        repo = KnowledgeRepository()
        known = [chunk.id for chunk in await repo.chunks_of(source_id)]  # the listing may miss a fresh upload
        # Marked first: if the Tables delete then fails, the timer sends the source back.
        await repo.merge(source_id, {"indexError": PENDING})
        async with self._locks.setdefault(source_id, asyncio.Lock()):
            try:
                await self.index.remove_source(source_id, known)
            except SearchBackendError as exc:
                log.warning("knowledge source %s not deleted: %s", source_id, exc)
                raise Problem(
                    503,
                    "Azure AI Search could not remove the source's content, so the source was not deleted; "
                    "try again in a moment.",
                    kind="search-unavailable",
                ) from exc
            try:
                await delete()
            finally:
                await searching.changed()

    async def repair(self, sources: Sequence[SourceRecord]) -> int:
        """Send the marked sources again (those with a job queued or running are sent when it ends)."""
        due = [s for s in sources if s.index_error and s.status not in ("queued", "indexing")]
        for source in due:
            await self.publish(source.id)
        if due:
            log.info("knowledge: %d sources sent to Azure AI Search again", len(due))
        return len(due)

    # -- internals ----------------------------------------------------------------------------------

    async def _send(self, source_id: str, full: bool, embed_seconds: float | None) -> str:
        from shared.knowledge.azure_search import SearchBackendError
        from shared.storage.errors import ConcurrentUpdate
        from shared.storage.knowledge import KnowledgeRepository

        repo = KnowledgeRepository()
        for _ in range(SEND_ATTEMPTS):
            record = await repo.get(source_id)
            if record is None:  # deleted: whatever was sent of it goes too
                await self.index.remove_source(source_id)
                return ""
            full = full or bool(record.index_error)  # behind already: its vectors may be missing too
            try:
                marked = await repo.update(replace(record, index_error=PENDING))
            except ConcurrentUpdate:
                continue
            try:
                note = await self._upsert(marked, full, embed_seconds)
            except SearchBackendError as exc:
                log.warning("knowledge source %s is not in Azure AI Search as it is: %s", source_id, exc)
                failed = f"not yet in Azure AI Search ({exc}); {RETRY_NOTE}"
                await repo.merge(source_id, {"indexError": failed})
                return failed
            try:
                await repo.update(replace(marked, index_error=note))  # only if nothing changed while sending
                return note
            except ConcurrentUpdate:
                full = True  # changed (or deleted) while sending: send what it is now
        log.warning("knowledge source %s kept changing while being sent; left to the refresh timer", source_id)
        return PENDING

    async def _upsert(self, source: SourceRecord, full: bool, embed_seconds: float | None) -> str:
        """Send ``source``'s chunks (with vectors when ``full``); what is still missing, "" when nothing."""
        from shared.storage.knowledge import KnowledgeRepository

        chunks = await KnowledgeRepository().chunks_of(source.id)
        vectors, note = await self._vectors(chunks, embed_seconds) if full else (None, "")
        # Without vectors a document keeps the vector already indexed (ids are content hashes).
        await self.index.upsert_source(source.id, source.title, source.enabled, chunks, vectors)
        return note

    async def _vectors(
        self, chunks: Sequence[Chunk], embed_seconds: float | None
    ) -> tuple[list[list[float]] | None, str]:
        """The chunks' vectors from the cache (embedding what is missing), and a note when they can't be had."""
        from shared.knowledge.embeddings import embedding_text, get_embedder

        embedder = get_embedder()
        dimensions = self.index.vector_dimensions
        if embedder is None or not dimensions or not chunks:
            return None, ""
        budget = embed_seconds if embed_seconds is not None else get_settings().embeddings.build_seconds
        try:
            found = await self._vector_cache().vectors(embedder, [embedding_text(c) for c in chunks], budget=budget)
        except ValueError as exc:  # vectors of different sizes in the cache: a model changed under one name
            log.error("chunk vectors don't fit together (%s); sent without vectors", exc)
            return None, ""
        if found is None:
            return None, f"sent without chunk vectors (the embeddings service did not give them in time); {RETRY_NOTE}"
        if found.shape[1] != dimensions:  # a setting to fix, not a passing failure: no retry
            log.error("embeddings of %d dimensions, AZURE_SEARCH_VECTOR_DIMENSIONS=%d: sent without vectors",
                      found.shape[1], dimensions)  # fmt: skip
            return None, ""
        return [[float(v) for v in row] for row in found], ""

    async def _query_vector(self, query: str) -> list[float] | None:
        from shared.knowledge.embeddings import embed_query, get_embedder

        embedder = get_embedder()
        if embedder is None or not self.index.vector_dimensions:
            return None
        vector = await embed_query(embedder, query, get_settings().embeddings.query_timeout_seconds)
        if vector is None or len(vector) != self.index.vector_dimensions:
            return None  # by words alone (a size mismatch is logged when chunks are sent)
        return [float(v) for v in vector]

    def _vector_cache(self) -> VectorCache:
        # Its own memory, not the local index's: a send keeps only the vectors of the source it sent.
        if self._cache is None:
            from shared.knowledge.vectors import VectorCache
            from shared.storage.vectors import VectorRepository

            self._cache = VectorCache(VectorRepository())
        return self._cache


@functools.cache
def get_backend() -> KnowledgeBackend:
    """The worker's backend, made once from ``KNOWLEDGE_BACKEND``; a setting that can't work means the
    local index (logged), so the bot keeps answering."""
    settings = get_settings().azure_search
    backend = settings.resolved_backend
    if backend == "local":
        return LocalBackend()
    if backend != "azure-search":
        log.error("KNOWLEDGE_BACKEND=%r is not local or azure-search; searching the local index", settings.backend)
        return LocalBackend()
    from shared.knowledge.azure_search import make_azure_search_backend

    try:
        return AzureBackend(make_azure_search_backend(settings=settings))
    except ValueError as exc:
        log.error("KNOWLEDGE_BACKEND=azure-search can't work (%s); searching the local index", exc)
        return LocalBackend()
