"""Knowledge sources, their pages and chunks in Azure Tables, uploaded files in blobs (data access only).

``knowledgesources``: PartitionKey ``"source"``, RowKey = the source id (ids sort by creation), one
row per source with its title, type, status, chunk count, enabled flag, content hash and the state
of its indexing job.
``knowledgechunks``: PartitionKey = the source id, RowKey = the chunk id, one row per chunk; a
chunk of a crawled page or a file also has ``page``, the key of its page. A string property holds
at most 32K UTF-16 units, and a chunk may be longer (one enormous "word" is never split by the
chunker), so a chunk's fields are stored as JSON cut into parts ``d0``, ``d1``, ... of at most
:data:`PART_CHARS` characters each.
``knowledgepages``: PartitionKey = the source id, RowKey = the page key (a hash of its URL, or
``file``), one row per page with its URL, content hash and chunk count: what a sync compares.
The ``knowledge`` container holds an uploaded file at ``sources/<id>/file`` until its source is
deleted; the ``knowledge`` queue carries "index this source" notices to the ingestion job.

Chunks of text and Q&A sources are written before their source row (entity-group transactions of
at most 100 rows, all in the source's partition) and deleted after it, so a source row never
points at missing chunks; chunks left behind by a failure in between belong to no source and are
never read. A page's chunks are replaced in as few transactions as they fit (one, up to 100 rows
changed), then its page row is written, so a crash in between makes the next sync redo the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.knowledge.chunking import Chunk
from shared.storage import tables
from shared.storage.clients import get_blob_service, queue_client, table_client
from shared.storage.errors import ConcurrentUpdate, collect, storage_call
from shared.storage.values import as_int

SOURCE_PK = "source"
REPLAY_PK = "idem"  # Idempotency-Key records of source creations, beside (not among) the sources
BATCH = 100  # an entity-group transaction's limit
PART_CHARS = 15_000  # a character is at most 2 UTF-16 units: 30K units, under the 32K property limit
_PARTS_FIELD = "parts"
FILE_PAGE = "file"  # the page key of a file source's one "page"
MAX_WARNINGS = 10


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One knowledge source as stored."""

    id: str
    type: str  # "text" | "qa" | "url" | "sitemap" | "file"
    title: str
    status: str = "ready"  # "queued" | "indexing" | "ready" | "failed"
    error: str = ""
    chunks: int = 0
    enabled: bool = True
    created_at: str = ""
    last_synced_at: str = ""
    content_hash: str = ""
    url: str = ""  # url and sitemap sources: where the crawl starts
    max_pages: int = 0
    refresh: str = "manual"  # "manual" | "daily" | "weekly"
    auto_title: bool = False  # the title is the URL or file name until the content names itself
    pages: int = 0  # pages (or PDF pages) with indexed content
    warnings: tuple[str, ...] = ()  # what the last sync left out, for a person to act on
    last_sync: str = ""  # JSON: the last sync's counts (pages changed, unchanged, removed, failed...)
    file_name: str = ""
    file_kind: str = ""  # pdf | docx | html | markdown | text
    file_bytes: int = 0
    job: str = ""  # the current indexing job; a queue notice for another job is stale
    attempts: int = 0  # runs of the current job that started (a crash leaves it indexing)
    queued_at: str = ""
    heartbeat_at: str = ""  # the running job's last sign of life
    index_error: str = ""  # set: a remote search index (Azure AI Search) does not hold this source as it is
    etag: str = field(default="", compare=False)

    def entity(self) -> dict[str, Any]:
        """The row of this source."""
        return {
            "PartitionKey": SOURCE_PK,
            "RowKey": self.id,
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "error": self.error,
            "chunks": self.chunks,
            "enabled": self.enabled,
            "createdAt": self.created_at,
            "lastSyncedAt": self.last_synced_at,
            "contentHash": self.content_hash,
            "url": self.url,
            "maxPages": self.max_pages,
            "refresh": self.refresh,
            "autoTitle": self.auto_title,
            "pages": self.pages,
            "warnings": json.dumps(list(self.warnings[:MAX_WARNINGS]), ensure_ascii=False),
            "lastSync": self.last_sync,
            "fileName": self.file_name,
            "fileKind": self.file_kind,
            "fileBytes": self.file_bytes,
            "job": self.job,
            "attempts": self.attempts,
            "queuedAt": self.queued_at,
            "heartbeatAt": self.heartbeat_at,
            "indexError": self.index_error,
        }

    @classmethod
    def from_entity(cls, entity: Any) -> SourceRecord:
        """A source from its row (the ETag from the entity's metadata)."""
        metadata = getattr(entity, "metadata", {}) or {}
        try:
            warnings = tuple(str(w) for w in json.loads(str(entity.get("warnings") or "[]")))
        except ValueError:
            warnings = ()
        return cls(
            id=str(entity["RowKey"]),
            type=str(entity.get("type", "")),
            title=str(entity.get("title", "")),
            status=str(entity.get("status", "ready")),
            error=str(entity.get("error", "") or ""),
            chunks=as_int(entity.get("chunks")),
            enabled=bool(entity.get("enabled", True)),
            created_at=str(entity.get("createdAt", "")),
            last_synced_at=str(entity.get("lastSyncedAt", "")),
            content_hash=str(entity.get("contentHash", "")),
            url=str(entity.get("url", "") or ""),
            max_pages=as_int(entity.get("maxPages")),
            refresh=str(entity.get("refresh", "") or "manual"),
            auto_title=bool(entity.get("autoTitle", False)),
            pages=as_int(entity.get("pages")),
            warnings=warnings,
            last_sync=str(entity.get("lastSync", "") or ""),
            file_name=str(entity.get("fileName", "") or ""),
            file_kind=str(entity.get("fileKind", "") or ""),
            file_bytes=as_int(entity.get("fileBytes")),
            job=str(entity.get("job", "") or ""),
            attempts=as_int(entity.get("attempts")),
            queued_at=str(entity.get("queuedAt", "") or ""),
            heartbeat_at=str(entity.get("heartbeatAt", "") or ""),
            index_error=str(entity.get("indexError", "") or ""),
            etag=str(metadata.get("etag", "") or ""),
        )


@dataclass(frozen=True, slots=True)
class PageRecord:
    """One page of a url or sitemap source (or a file source's file) as last synced."""

    source_id: str
    key: str  # page_key(url), or FILE_PAGE
    url: str = ""
    title: str = ""
    content_hash: str = ""  # of the page's extracted text: equal means nothing to re-index
    chunks: int = 0
    position: int = 0  # the page's order within the source (chunks' positions follow it)
    status: str = "indexed"  # "indexed" | "failed" | "noindex"
    error: str = ""
    synced_at: str = ""

    def entity(self) -> dict[str, Any]:
        """The row of this page."""
        return {
            "PartitionKey": self.source_id,
            "RowKey": self.key,
            "url": self.url,
            "title": self.title,
            "contentHash": self.content_hash,
            "chunks": self.chunks,
            "position": self.position,
            "status": self.status,
            "error": self.error,
            "syncedAt": self.synced_at,
        }

    @classmethod
    def from_entity(cls, entity: Any) -> PageRecord:
        """A page from its row."""
        return cls(
            source_id=str(entity["PartitionKey"]),
            key=str(entity["RowKey"]),
            url=str(entity.get("url", "") or ""),
            title=str(entity.get("title", "") or ""),
            content_hash=str(entity.get("contentHash", "") or ""),
            chunks=as_int(entity.get("chunks")),
            position=as_int(entity.get("position")),
            status=str(entity.get("status", "") or "indexed"),
            error=str(entity.get("error", "") or ""),
            synced_at=str(entity.get("syncedAt", "") or ""),
        )


def page_key(url: str) -> str:
    """The RowKey of a page: a hash of its URL (URLs hold characters keys may not, and can be long)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def chunk_entity(chunk: Chunk, page: str = "") -> dict[str, Any]:
    """The row of one chunk: its fields as JSON in parts of at most PART_CHARS characters."""
    data = json.dumps(
        {
            "text": chunk.text,
            "headings": list(chunk.heading_path),
            "anchor": chunk.anchor,
            "question": chunk.question,
            "url": chunk.url,
        },
        ensure_ascii=False,
    )
    parts = [data[i : i + PART_CHARS] for i in range(0, len(data), PART_CHARS)] or [""]
    entity: dict[str, Any] = {"PartitionKey": chunk.source_id, "RowKey": chunk.id, "position": chunk.position}
    entity[_PARTS_FIELD] = len(parts)
    entity.update({f"d{i}": part for i, part in enumerate(parts)})
    if page:
        entity["page"] = page
    return entity


def chunk_from_entity(entity: Any) -> Chunk:
    """A chunk from its row."""
    data = json.loads("".join(str(entity.get(f"d{i}", "")) for i in range(as_int(entity.get(_PARTS_FIELD)))))
    return Chunk(
        id=str(entity["RowKey"]),
        source_id=str(entity["PartitionKey"]),
        text=str(data.get("text", "")),
        heading_path=tuple(str(h) for h in data.get("headings", [])),
        anchor=str(data.get("anchor", "")),
        question=str(data.get("question", "")),
        position=as_int(entity.get("position")),
        url=str(data.get("url", "")),
    )


class KnowledgeRepository:
    """Sources, pages and chunks: create, read, page, update under an ETag, delete."""

    def __init__(self, sources: Any | None = None, chunks: Any | None = None, pages: Any | None = None) -> None:
        self._sources = sources or table_client(tables.KNOWLEDGE_SOURCES)
        self._chunks = chunks or table_client(tables.KNOWLEDGE_CHUNKS)
        self._pages = pages or table_client(tables.KNOWLEDGE_PAGES)

    async def create(self, source: SourceRecord, chunks: Sequence[Chunk]) -> SourceRecord:
        """Store ``chunks`` (transactions of <= 100 in the source's partition), then the source row."""
        unique = list({chunk.id: chunk for chunk in reversed(chunks)}.values())[::-1]  # first of each id
        rows = [chunk_entity(chunk) for chunk in unique]
        batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
        await asyncio.gather(
            *(storage_call(self._chunks.submit_transaction([("upsert", row) for row in batch])) for batch in batches)
        )
        result = await storage_call(self._sources.create_entity(replace(source, chunks=len(unique)).entity()))
        return replace(source, chunks=len(unique), etag=str((result or {}).get("etag", "") or ""))

    async def replay(self, key: str) -> dict[str, Any] | None:
        """The record of a source created with this Idempotency-Key, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(await storage_call(self._sources.get_entity(REPLAY_PK, key)))
        except ResourceNotFoundError:
            return None

    async def record_replay(self, key: str, fingerprint: str, source_id: str, at: str) -> bool:
        """Insert the key's record; False when another request with the key recorded its source first."""
        from azure.core.exceptions import ResourceExistsError

        entity = {"PartitionKey": REPLAY_PK, "RowKey": key, "fingerprint": fingerprint, "sourceId": source_id,
                  "createdAt": at}  # fmt: skip
        try:
            await storage_call(self._sources.create_entity(entity))
        except ResourceExistsError:
            return False
        return True

    async def get(self, source_id: str) -> SourceRecord | None:
        """One source, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await storage_call(self._sources.get_entity(SOURCE_PK, source_id))
        except ResourceNotFoundError:
            return None
        return SourceRecord.from_entity(entity)

    async def page(self, after: str | None, limit: int) -> tuple[list[SourceRecord], bool]:
        """Up to ``limit`` sources with ids after ``after`` in id order, and whether more follow."""
        query = self._sources.query_entities(
            "PartitionKey eq @pk and RowKey gt @after",
            parameters={"pk": SOURCE_PK, "after": after or ""},
            results_per_page=min(limit + 1, 1000),
        )
        rows = await collect(query, limit=limit + 1)
        return [SourceRecord.from_entity(row) for row in rows[:limit]], len(rows) > limit

    async def all(self) -> list[SourceRecord]:
        """Every source, in id order."""
        query = self._sources.query_entities("PartitionKey eq @pk", parameters={"pk": SOURCE_PK})
        return [SourceRecord.from_entity(row) for row in await collect(query)]

    async def update(self, source: SourceRecord) -> SourceRecord:
        """Replace the source row if it is unchanged since read (its ETag); ConcurrentUpdate if not."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            result = await storage_call(
                self._sources.update_entity(
                    source.entity(),
                    mode=UpdateMode.REPLACE,
                    etag=source.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentUpdate() from exc
        return replace(source, etag=str((result or {}).get("etag", "") or ""))

    async def merge(self, source_id: str, fields: Mapping[str, Any]) -> bool:
        """Merge ``fields`` into the source row whatever its ETag (a heartbeat); False when it is gone."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": SOURCE_PK, "RowKey": source_id, **fields}
        try:
            await storage_call(self._sources.update_entity(entity, mode=UpdateMode.MERGE))
        except ResourceNotFoundError:
            return False
        return True

    async def delete(self, source_id: str) -> None:
        """Delete the source row, then its chunks, pages and file (a missing row is not an error)."""
        await storage_call(self._sources.delete_entity(SOURCE_PK, source_id))
        await self.delete_contents(source_id)

    async def delete_contents(self, source_id: str) -> None:
        """Delete every chunk, page row and the uploaded file of a source."""
        await asyncio.gather(
            self._delete_partition(self._chunks, source_id),
            self._delete_partition(self._pages, source_id),
            KnowledgeFiles().delete(source_id),
        )

    async def _delete_partition(self, client: Any, partition: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        query = client.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, select=["PartitionKey", "RowKey"]
        )
        try:
            rows = await collect(query)
        except ResourceNotFoundError:
            return  # no such table yet: nothing to delete
        batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
        await asyncio.gather(
            *(storage_call(client.submit_transaction([("delete", dict(row)) for row in batch])) for batch in batches)
        )

    # --- pages of url, sitemap and file sources ---------------------------------------------------------

    async def pages_of(self, source_id: str) -> list[PageRecord]:
        """Every page row of a source, in page order."""
        from azure.core.exceptions import ResourceNotFoundError

        query = self._pages.query_entities("PartitionKey eq @pk", parameters={"pk": source_id})
        try:
            rows = await collect(query)
        except ResourceNotFoundError:
            return []  # the table is created with the first page
        return sorted((PageRecord.from_entity(row) for row in rows), key=lambda page: (page.position, page.url))

    async def page_list(self, source_id: str, after: str | None, limit: int) -> tuple[list[PageRecord], bool]:
        """Up to ``limit`` pages of a source with keys after ``after`` (key order), and whether more follow."""
        from azure.core.exceptions import ResourceNotFoundError

        query = self._pages.query_entities(
            "PartitionKey eq @pk and RowKey gt @after",
            parameters={"pk": source_id, "after": after or ""},
            results_per_page=min(limit + 1, 1000),
        )
        try:
            rows = await collect(query, limit=limit + 1)
        except ResourceNotFoundError:
            return [], False
        return [PageRecord.from_entity(row) for row in rows[:limit]], len(rows) > limit

    async def save_page(self, page: PageRecord) -> None:
        """Write a page row (creating the table on first use, for a deployment set up before pages existed)."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await storage_call(self._pages.upsert_entity(page.entity(), mode=UpdateMode.REPLACE))
        except ResourceNotFoundError:
            try:
                await storage_call(self._pages.create_table())
            except ResourceExistsError:
                pass
            await storage_call(self._pages.upsert_entity(page.entity(), mode=UpdateMode.REPLACE))

    async def delete_page(self, page: PageRecord) -> None:
        """Delete a page's chunks, then its row."""
        from azure.core.exceptions import ResourceNotFoundError

        await self.replace_page_chunks(page.source_id, page.key, [])
        try:
            await storage_call(self._pages.delete_entity(page.source_id, page.key))
        except ResourceNotFoundError:
            pass

    async def replace_page_chunks(self, source_id: str, page: str, chunks: Sequence[Chunk]) -> int:
        """Make ``chunks`` the page's chunks: write new or changed rows, delete the rest; rows written.

        A chunk stored exactly as given is left alone, so re-syncing a page rewrites only what changed.
        """
        query = self._chunks.query_entities(
            "PartitionKey eq @pk and page eq @page", parameters={"pk": source_id, "page": page}
        )
        stored = {str(row["RowKey"]): chunk_from_entity(row) for row in await collect(query)}
        wanted = {chunk.id: chunk for chunk in reversed(chunks)}  # the first of each id wins
        operations: list[tuple[str, dict[str, Any]]] = [
            ("upsert", chunk_entity(chunk, page)) for chunk_id, chunk in wanted.items() if stored.get(chunk_id) != chunk
        ]
        written = len(operations)
        operations += [
            ("delete", {"PartitionKey": source_id, "RowKey": chunk_id}) for chunk_id in stored if chunk_id not in wanted
        ]
        for start in range(0, len(operations), BATCH):  # sequential: a failure leaves a prefix done, redone next sync
            await storage_call(self._chunks.submit_transaction(operations[start : start + BATCH]))
        return written

    async def chunks_of(self, source_id: str) -> list[Chunk]:
        """The chunks of one source, in order."""
        query = self._chunks.query_entities("PartitionKey eq @pk", parameters={"pk": source_id})
        return sorted((chunk_from_entity(row) for row in await collect(query)), key=lambda c: c.position)


class KnowledgeFiles:
    """Uploaded files of file sources in the ``knowledge`` container, kept to re-index on a sync."""

    def __init__(self, container: Any | None = None) -> None:
        self._container = container or get_blob_service().get_container_client(tables.KNOWLEDGE_CONTAINER)

    @staticmethod
    def _name(source_id: str) -> str:
        return f"sources/{source_id}/file"

    async def save(self, source_id: str, data: bytes, *, file_name: str, content_type: str) -> None:
        """Store (or replace) a source's file."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        blob = self._container.get_blob_client(self._name(source_id))
        settings = ContentSettings(content_type=content_type or "application/octet-stream")
        metadata = {"filename": file_name.encode("ascii", "replace").decode("ascii")[:200]}
        try:
            await storage_call(blob.upload_blob(data, overwrite=True, content_settings=settings, metadata=metadata))
        except ResourceNotFoundError:  # the container: created at bootstrap, but a deployment may predate it
            try:
                await storage_call(self._container.create_container())
            except ResourceExistsError:
                pass
            await storage_call(blob.upload_blob(data, overwrite=True, content_settings=settings, metadata=metadata))

    async def load(self, source_id: str) -> bytes | None:
        """A source's file, or None when it is missing."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            stream = await storage_call(self._container.get_blob_client(self._name(source_id)).download_blob())
            return bytes(await storage_call(stream.readall()))
        except ResourceNotFoundError:
            return None

    async def delete(self, source_id: str) -> None:
        """Delete a source's file (a missing one is not an error)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            await storage_call(self._container.get_blob_client(self._name(source_id)).delete_blob())
        except ResourceNotFoundError:
            pass


@dataclass(frozen=True, slots=True)
class IngestNotice:
    """A queue message: "run job ``job`` of source ``source_id``"."""

    source_id: str
    job: str

    def encode(self) -> str:
        """The message text."""
        return json.dumps({"sourceId": self.source_id, "job": self.job}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> IngestNotice:
        """A notice from its text; ValueError when it is not one."""
        data = json.loads(text)
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("sourceId"), str)
            or not isinstance(data.get("job"), str)
        ):
            raise ValueError("not a knowledge ingestion notice")
        return cls(data["sourceId"], data["job"])


class IngestQueue:
    """Puts notices on the ``knowledge`` queue (its trigger runs the ingestion job)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or queue_client(tables.KNOWLEDGE_QUEUE)

    async def enqueue(self, notice: IngestNotice) -> None:
        """Announce a job (creating the queue on first use, for a deployment set up before it existed)."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            await storage_call(self._client.send_message(notice.encode()))
        except ResourceNotFoundError:
            try:
                await storage_call(self._client.create_queue())
            except ResourceExistsError:
                pass
            await storage_call(self._client.send_message(notice.encode()))
