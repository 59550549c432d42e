"""Knowledge sources and their chunks in Azure Tables (data access only).

``knowledgesources``: PartitionKey ``"source"``, RowKey = the source id (ids sort by creation), one
row per source with its title, type, status, chunk count, enabled flag and content hash.
``knowledgechunks``: PartitionKey = the source id, RowKey = the chunk id, one row per chunk. A
string property holds at most 32K UTF-16 units, and a chunk may be longer (one enormous "word"
is never split by the chunker), so a chunk's fields are stored as JSON cut into parts ``d0``,
``d1``, ... of at most :data:`PART_CHARS` characters each.

Chunks are written before their source row (entity-group transactions of at most 100 rows, all in
the source's partition) and deleted after it, so a source row never points at missing chunks;
chunks left behind by a failure in between belong to no source and are never read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.knowledge.chunking import Chunk
from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import ConcurrentUpdate, collect, storage_call
from shared.storage.values import as_int

SOURCE_PK = "source"
REPLAY_PK = "idem"  # Idempotency-Key records of source creations, beside (not among) the sources
BATCH = 100  # an entity-group transaction's limit
PART_CHARS = 15_000  # a character is at most 2 UTF-16 units: 30K units, under the 32K property limit
_PARTS_FIELD = "parts"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One knowledge source as stored."""

    id: str
    type: str  # "text" | "qa"
    title: str
    status: str = "ready"
    error: str = ""
    chunks: int = 0
    enabled: bool = True
    created_at: str = ""
    last_synced_at: str = ""
    content_hash: str = ""
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
        }

    @classmethod
    def from_entity(cls, entity: Any) -> SourceRecord:
        """A source from its row (the ETag from the entity's metadata)."""
        metadata = getattr(entity, "metadata", {}) or {}
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
            etag=str(metadata.get("etag", "") or ""),
        )


def chunk_entity(chunk: Chunk) -> dict[str, Any]:
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
    """Sources and chunks: create, read, page, update under an ETag, delete."""

    def __init__(self, sources: Any | None = None, chunks: Any | None = None) -> None:
        self._sources = sources or table_client(tables.KNOWLEDGE_SOURCES)
        self._chunks = chunks or table_client(tables.KNOWLEDGE_CHUNKS)

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

    async def delete(self, source_id: str) -> None:
        """Delete the source row, then its chunks (a missing row is not an error)."""
        await storage_call(self._sources.delete_entity(SOURCE_PK, source_id))
        query = self._chunks.query_entities(
            "PartitionKey eq @pk", parameters={"pk": source_id}, select=["PartitionKey", "RowKey"]
        )
        rows = await collect(query)
        batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
        await asyncio.gather(
            *(
                storage_call(self._chunks.submit_transaction([("delete", dict(row)) for row in batch]))
                for batch in batches
            )
        )

    async def chunks_of(self, source_id: str) -> list[Chunk]:
        """The chunks of one source, in order."""
        query = self._chunks.query_entities("PartitionKey eq @pk", parameters={"pk": source_id})
        return sorted((chunk_from_entity(row) for row in await collect(query)), key=lambda c: c.position)
