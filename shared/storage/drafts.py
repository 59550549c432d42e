"""The ``knowledgedrafts`` table: draft Q&A pairs waiting for an admin (PartitionKey ``draft``, RowKey = id).

A draft is not a knowledge source: search never sees it until an admin approves it, which makes it
a Q&A source. Status moves ``draft`` -> ``approved`` (with the source's id) or is deleted
(discarded); each change is guarded by the row's ETag, so two admins approving at once make one
source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import ConcurrentUpdate, collect, storage_call

PARTITION = "draft"
DRAFT, APPROVED = "draft", "approved"


@dataclass
class DraftRecord:
    """One draft Q&A pair and where it came from."""

    id: str
    question: str
    answer: str
    status: str = DRAFT
    session_id: str = ""
    resolution: str = ""
    created_by: str = ""
    created_at: str = ""
    updated_at: str = ""
    source_id: str = ""
    etag: str = ""

    def entity(self) -> dict[str, Any]:
        """The table entity."""
        return {
            "PartitionKey": PARTITION,
            "RowKey": self.id,
            "question": self.question,
            "answer": self.answer,
            "status": self.status,
            "sessionId": self.session_id,
            "resolution": self.resolution,
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "sourceId": self.source_id,
        }

    @classmethod
    def from_entity(cls, entity: Any) -> DraftRecord:
        """Read an entity."""
        return cls(
            id=entity["RowKey"],
            question=entity.get("question", ""),
            answer=entity.get("answer", ""),
            status=entity.get("status", DRAFT),
            session_id=entity.get("sessionId", ""),
            resolution=entity.get("resolution", ""),
            created_by=entity.get("createdBy", ""),
            created_at=entity.get("createdAt", ""),
            updated_at=entity.get("updatedAt", ""),
            source_id=entity.get("sourceId", ""),
            etag=str(entity.metadata.get("etag", "")) if hasattr(entity, "metadata") else "",
        )


class DraftRepository:
    """Drafts: insert once, read, list, change under the ETag, delete."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.KNOWLEDGE_DRAFTS)

    async def insert(self, draft: DraftRecord) -> bool:
        """Insert ``draft``; False when a draft with its id exists already (a retried close)."""
        from azure.core.exceptions import ResourceExistsError

        try:
            await storage_call(self._client.create_entity(draft.entity()))
        except ResourceExistsError:
            return False
        return True

    async def get(self, draft_id: str) -> DraftRecord | None:
        """One draft, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return DraftRecord.from_entity(await storage_call(self._client.get_entity(PARTITION, draft_id)))
        except ResourceNotFoundError:
            return None

    async def list(self, status: str, limit: int) -> list[DraftRecord]:
        """Drafts of ``status``, oldest first (ids start with their creation time)."""
        query = self._client.query_entities(
            "PartitionKey eq @pk and status eq @status", parameters={"pk": PARTITION, "status": status}
        )
        rows = [DraftRecord.from_entity(entity) for entity in await collect(query)]
        return sorted(rows, key=lambda d: d.created_at)[:limit]

    async def replace(self, draft: DraftRecord) -> None:
        """Write ``draft`` over the row read with its ETag (``ConcurrentUpdate`` when it changed meanwhile)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await storage_call(
                self._client.update_entity(
                    draft.entity(),
                    mode=UpdateMode.REPLACE,
                    etag=draft.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            )
        except (ResourceNotFoundError, HttpResponseError) as exc:
            if isinstance(exc, ResourceNotFoundError) or getattr(exc, "status_code", 0) == 412:
                raise ConcurrentUpdate(draft.id) from exc
            raise

    async def delete(self, draft: DraftRecord) -> None:
        """Delete the row read with its ETag (``ConcurrentUpdate`` when it changed meanwhile)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        try:
            await storage_call(
                self._client.delete_entity(
                    PARTITION, draft.id, etag=draft.etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except ResourceNotFoundError:
            return
        except HttpResponseError as exc:
            if getattr(exc, "status_code", 0) == 412:
                raise ConcurrentUpdate(draft.id) from exc
            raise
