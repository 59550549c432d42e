"""The audit trail: every session transition, who caused it and when (seed 001's audit log)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from shared.storage import tables
from shared.storage.chats import iso, utcnow
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call

log = logging.getLogger(__name__)


class AuditRepository:
    """Append-only events per session (PartitionKey = session id, RowKey = time + random)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.AUDIT)

    async def record(self, session_id: str, event: str, *, actor: str, **details: Any) -> None:
        """Append one event."""
        now = utcnow()
        entity = {
            "PartitionKey": session_id,
            "RowKey": f"{iso(now)}-{uuid.uuid4().hex[:8]}",
            "event": event,
            "actor": actor,
            "at": iso(now),
            **{k: str(v) for k, v in details.items()},
        }
        await storage_call(self._client.create_entity(entity))

    async def events(self, session_id: str) -> list[dict[str, Any]]:
        """A session's events, oldest first."""
        query = self._client.query_entities("PartitionKey eq @pk", parameters={"pk": session_id})
        return [
            {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")} for entity in await collect(query)
        ]
