"""The agents' list of pending approval cards, and the queue that sends ``auto-after`` cards.

The card itself lives on its session's header (one transaction with the rest of the session);
this table is a projection of it written from the outbox: PartitionKey ``pending``, RowKey
``<created epoch ms:013d>-<card id>`` (oldest first, the order agents work in). A resolved card
moves to PartitionKey ``resolved``, RowKey ``<10^13 - resolved epoch ms:013d>-<card id>`` (newest
first), with what became of it; the audit log keeps every step too.

An ``auto-after`` card is scheduled by one message on the ``approvals`` queue, sent with a
visibility timeout of the card's delay: the queue trigger sees it only then, and sends the card
only if it is still the session's pending card.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.clock import iso, parse_iso, utcnow
from shared.storage import tables
from shared.storage.clients import queue_client, table_client
from shared.storage.errors import collect, storage_call

PENDING = "pending"
RESOLVED = "resolved"
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600  # Azure Queue storage's limit


def resolved_row(resolved_at: datetime, card_id: str) -> str:
    """The RowKey of a resolved card: the newest first."""
    return f"{10**13 - math.floor(resolved_at.timestamp() * 1000):013d}-{card_id}"


def pending_row(created_at: datetime, card_id: str) -> str:
    """RowKey of a pending card."""
    return f"{int(created_at.timestamp() * 1000):013d}-{card_id}"


class ApprovalRepository:
    """Pending cards as agents list them."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.APPROVALS)

    async def put(self, card: dict[str, Any]) -> None:
        """Store a pending card (its public form with the conversation around it); writing it twice is harmless."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        created = parse_iso(str(card.get("createdAt") or "")) or utcnow()
        entity = {
            "PartitionKey": PENDING,
            "RowKey": pending_row(created, str(card["id"])),
            "sessionId": str(card.get("sessionId", "")),
            "card": json.dumps(card, ensure_ascii=False, separators=(",", ":")),
        }
        try:
            await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.REPLACE))
        except ResourceNotFoundError:  # a deployment set up before cards existed
            await self._create_table()
            await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.REPLACE))

    async def remove(self, created_at: str, card_id: str) -> None:
        """Drop a card from the pending list (gone already: nothing to do)."""
        from azure.core.exceptions import ResourceNotFoundError

        created = parse_iso(created_at) or utcnow()
        try:
            await storage_call(self._client.delete_entity(PENDING, pending_row(created, card_id)))
        except ResourceNotFoundError:
            pass

    async def resolve(self, resolved: dict[str, Any], *, by: str, at: datetime) -> None:
        """Move a card from the pending list to the resolved one, with ``resolved`` (what became of it),
        who resolved it and when. Applying it again changes nothing: once the pending row is gone, an
        existing resolved row is left as it is."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        card_id = str(resolved["id"])
        created = parse_iso(str(resolved.get("createdAt") or "")) or utcnow()
        row = resolved_row(at, card_id)
        pending = await self._entity(PENDING, pending_row(created, card_id))
        if pending is None and await self._entity(RESOLVED, row) is not None:
            return
        card = json.loads(pending["card"]) if pending else {"id": card_id, "sessionId": resolved.get("sessionId")}
        card.pop("context", None)  # the conversation around it was for deciding; the transcript keeps it
        card |= {
            "status": RESOLVED,
            "resolution": resolved.get("resolution"),
            "resolvedAt": iso(at),
            "resolvedBy": by or None,
            "message": resolved.get("message"),
            "replacedBy": resolved.get("replacedBy"),
        }
        entity = {"PartitionKey": RESOLVED, "RowKey": row, "sessionId": str(card.get("sessionId") or ""),
                  "card": json.dumps(card, ensure_ascii=False, separators=(",", ":"))}  # fmt: skip
        try:
            await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.REPLACE))
        except ResourceNotFoundError:
            await self._create_table()
            await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.REPLACE))
        await self.remove(str(resolved.get("createdAt") or ""), card_id)

    async def _entity(self, partition: str, row: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await storage_call(self._client.get_entity(partition, row))
        except ResourceNotFoundError:
            return None

    async def pending(self, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` pending cards oldest first after the RowKey ``after``, and the last RowKey if more follow."""
        return await self._listed(PENDING, limit=limit, after=after)

    async def resolved(self, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` resolved cards newest first after the RowKey ``after`` (and the last RowKey, as above)."""
        return await self._listed(RESOLVED, limit=limit, after=after)

    async def _listed(
        self, partition: str, *, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        from azure.core.exceptions import ResourceNotFoundError

        query = self._client.query_entities(
            "PartitionKey eq @pk and RowKey gt @after",
            parameters={"pk": partition, "after": after or ""},
            results_per_page=min(limit + 1, 1000),
        )
        try:
            entities = await collect(query, limit=limit + 1)
        except ResourceNotFoundError:
            return [], None
        more = len(entities) > limit
        entities = entities[:limit]
        cards = [json.loads(entity["card"]) for entity in entities]
        return cards, (entities[-1]["RowKey"] if more and entities else None)

    async def _create_table(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            await storage_call(self._client.create_table())
        except ResourceExistsError:
            pass


@dataclass(frozen=True)
class AutoSendNotice:
    """The queue message: send ``card_id`` if nobody handled it."""

    card_id: str

    def encode(self) -> str:
        """The message text."""
        return json.dumps({"cardId": self.card_id}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> AutoSendNotice:
        """Parse a message text; ``ValueError`` when it isn't one of ours."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("cardId"), str) or not data["cardId"]:
            raise ValueError("not an auto-send notice")
        return cls(data["cardId"])


class AutoSendQueue:
    """Schedules ``auto-after`` cards on the ``approvals`` queue."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or queue_client(tables.APPROVALS_QUEUE)

    async def schedule(self, notice: AutoSendNotice, at: datetime) -> None:
        """Make the notice visible at ``at`` (at once when that has passed)."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        delay = min(MAX_VISIBILITY_SECONDS, max(0, math.ceil((at - utcnow()).total_seconds())))
        try:
            await storage_call(self._client.send_message(notice.encode(), visibility_timeout=delay))
        except ResourceNotFoundError:
            try:
                await storage_call(self._client.create_queue())
            except ResourceExistsError:
                pass
            await storage_call(self._client.send_message(notice.encode(), visibility_timeout=delay))
