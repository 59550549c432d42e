"""Where the outbox's work is announced: the ``outbox`` queue and the pending-session markers.

A commit writes its outbox rows inside the session's partition (see ``storage.chats``), then puts
one message on the ``outbox`` queue so the queue trigger applies them. Before the commit, the
request also marks the session in the ``outboxpending`` table: if the enqueue is lost (a crash, an
outage), the repair timer finds the session there and enqueues it again. Markers are dropped by
the timer once the session has no outbox rows left and the marker is older than any request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.clock import iso, parse_iso, utcnow
from shared.storage import tables
from shared.storage.clients import queue_client, table_client
from shared.storage.errors import collect, storage_call

_PENDING = "pending"


@dataclass(frozen=True)
class OutboxNotice:
    """The queue message: apply ``session_id``'s outbox; ``pushed_upto`` says which pushes already went out."""

    session_id: str
    pushed_upto: int = 0  # commit version up to which the request's own real-time push succeeded

    def encode(self) -> str:
        """The message text."""
        return json.dumps({"sessionId": self.session_id, "pushedUpto": self.pushed_upto}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> OutboxNotice:
        """Parse a message text; ``ValueError`` when it isn't one of ours."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("sessionId"), str) or not data["sessionId"]:
            raise ValueError("not an outbox notice")
        pushed = data.get("pushedUpto", 0)
        return cls(data["sessionId"], pushed if isinstance(pushed, int) else 0)


@dataclass
class PendingMarker:
    """A session that may have outbox rows to apply, and when it was last marked."""

    session_id: str
    marked_at: datetime
    etag: str


class OutboxQueue:
    """Puts notices on the ``outbox`` queue."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or queue_client(tables.OUTBOX_QUEUE)

    async def enqueue(self, notice: OutboxNotice) -> None:
        """Announce work for the queue trigger."""
        await storage_call(self._client.send_message(notice.encode()))


class PendingMarkers:
    """The sessions whose commits may still have outbox rows (read by the repair timer)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.OUTBOX_PENDING)

    async def mark(self, session_id: str) -> None:
        """Record that ``session_id`` is about to commit (before the commit, so a crash leaves a trace)."""
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": _PENDING, "RowKey": session_id, "markedAt": iso(utcnow())}
        await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.REPLACE))

    async def all(self, limit: int = 5000) -> list[PendingMarker]:
        """Every marker (oldest-marked first)."""
        query = self._client.query_entities("PartitionKey eq @pk", parameters={"pk": _PENDING})
        markers = [
            PendingMarker(e["RowKey"], parse_iso(e.get("markedAt", "")) or utcnow(), str(e.metadata.get("etag", "")))
            for e in await collect(query, limit=limit)
        ]
        return sorted(markers, key=lambda marker: marker.marked_at)

    async def forget(self, marker: PendingMarker) -> None:
        """Drop a marker unless it was marked again since it was read."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            await storage_call(
                self._client.delete_entity(
                    _PENDING, marker.session_id, etag=marker.etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            pass
