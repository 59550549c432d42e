"""A session's handoff record: RowKey ``handoff`` in the session's own ``chats`` partition.

It holds what the agents need when a conversation moves to a person and what is said about it
afterwards, beside the header rather than in it (the header is rewritten by every chat turn):
the email address a visitor left while the team was away, the summary the bot wrote (with the
commit version it was written for), the question that led to the handoff, and the agent's
resolution and learning note on close. Each part is merged in on its own, so writers of
different parts never overwrite each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import storage_call
from shared.storage.values import as_int, is_safe_key

ROW = "handoff"
MAX_SESSION_ID = 64


@dataclass
class HandoffRecord:
    """What is known about a session's handoff (empty strings: not yet)."""

    session_id: str
    email: str = ""
    email_at: str = ""
    question: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    summary_version: int = 0
    resolution: str = ""
    note: str = ""
    closed_by: str = ""
    closed_at: str = ""

    @classmethod
    def from_entity(cls, entity: Any) -> HandoffRecord:
        """Read the entity."""
        try:
            summary = json.loads(entity.get("summary") or "{}")
        except (TypeError, ValueError):
            summary = {}
        return cls(
            session_id=entity["PartitionKey"],
            email=entity.get("email", ""),
            email_at=entity.get("emailAt", ""),
            question=entity.get("question", ""),
            summary=summary if isinstance(summary, dict) else {},
            summary_version=as_int(entity.get("summaryVersion")),
            resolution=entity.get("resolution", ""),
            note=entity.get("note", ""),
            closed_by=entity.get("closedBy", ""),
            closed_at=entity.get("closedAt", ""),
        )


class HandoffRepository:
    """Reads and merges the handoff row of a session."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.CHATS)

    async def get(self, session_id: str) -> HandoffRecord | None:
        """The record, or None when nothing was written yet."""
        from azure.core.exceptions import ResourceNotFoundError

        if not is_safe_key(session_id, MAX_SESSION_ID):
            return None
        try:
            entity = await storage_call(self._client.get_entity(session_id, ROW))
        except ResourceNotFoundError:
            return None
        return HandoffRecord.from_entity(entity)

    async def merge(self, session_id: str, **fields: Any) -> None:
        """Merge ``fields`` (entity property names) into the row, creating it when missing."""
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": session_id, "RowKey": ROW}
        for name, value in fields.items():
            entity[name] = (
                json.dumps(value, ensure_ascii=False, separators=(",", ":")) if isinstance(value, dict) else value
            )
        await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.MERGE))
