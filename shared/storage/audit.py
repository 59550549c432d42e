"""The audit trail: every session transition, who caused it and when."""

from __future__ import annotations

import logging
from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call

log = logging.getLogger(__name__)


class AuditRepository:
    """Append-only events per session (PartitionKey = session id, RowKey = ``v<commit version>``)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.AUDIT)

    async def record_once(
        self, session_id: str, version: int, event: str, *, actor: str, at: str, **details: Any
    ) -> None:
        """Record the event of commit ``version`` (again is fine: the row is keyed by the version)."""
        from azure.core.exceptions import ResourceExistsError

        entity = {
            "PartitionKey": session_id,
            "RowKey": f"v{version:010d}",
            "event": event,
            "actor": actor,
            "at": at,
            **{k: str(v) for k, v in details.items()},
        }
        try:
            await storage_call(self._client.create_entity(entity))
        except ResourceExistsError:
            pass

    async def events(self, session_id: str) -> list[dict[str, Any]]:
        """A session's events, oldest first."""
        query = self._client.query_entities("PartitionKey eq @pk", parameters={"pk": session_id})
        return [
            {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")} for entity in await collect(query)
        ]
