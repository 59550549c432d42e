"""Content gaps in Azure Tables (data access only).

``knowledgegaps``: PartitionKey = the UTC day the question was asked, inverted (:func:`day_key`), so
a range query reads the newest days first and old days are one range to delete; RowKey = the
session id and a hash of the question, so the same question in one session on one day is one row
whatever happened to it (each reason is a boolean property of its own, merged in). A row holds the
question, the session id, when it was last asked, its reasons and, once an admin hid its group,
``dismissedGroup``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.clock import iso
from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call

_EPOCH = date(1970, 1, 1)
_LAST_DAY = 99_999  # day numbers count down from here: newer days sort first
_REASON_PREFIX = "r_"
_NOT_NAME = re.compile(r"[^a-z0-9]")
BATCH = 100  # an entity-group transaction's limit


def day_key(day: date) -> str:
    """The PartitionKey of ``day``: smaller for later days."""
    return f"{_LAST_DAY - (day - _EPOCH).days:05d}"


def _reason_property(reason: str) -> str:
    return _REASON_PREFIX + _NOT_NAME.sub("_", reason.lower())


@dataclass(frozen=True, slots=True)
class GapRecord:
    """One recorded question as stored."""

    partition: str
    row: str
    session_id: str
    question: str
    reasons: frozenset[str]
    last_seen: str  # ISO time
    dismissed_group: str = ""

    @classmethod
    def from_entity(cls, entity: Any) -> GapRecord:
        """A record from its row."""
        reasons = frozenset(
            str(key)[len(_REASON_PREFIX) :].replace("_", "-")
            for key, value in entity.items()
            if str(key).startswith(_REASON_PREFIX) and value is True
        )
        return cls(
            partition=str(entity["PartitionKey"]),
            row=str(entity["RowKey"]),
            session_id=str(entity.get("sessionId", "")),
            question=str(entity.get("question", "")),
            reasons=reasons,
            last_seen=str(entity.get("lastSeen", "")),
            dismissed_group=str(entity.get("dismissedGroup", "") or ""),
        )


class GapRepository:
    """Recorded content gaps: add (idempotent), read the newest, hide, forget old days."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.KNOWLEDGE_GAPS)

    async def record(self, session_id: str, question: str, reason: str, at: datetime) -> None:
        """Note ``question`` (asked in ``session_id`` at ``at``) with ``reason``; writing it again changes nothing."""
        from azure.data.tables import UpdateMode

        digest = hashlib.sha256(" ".join(question.split()).casefold().encode("utf-8")).hexdigest()[:16]
        entity = {
            "PartitionKey": day_key(at.date()),
            "RowKey": f"{session_id}-{digest}",
            "sessionId": session_id,
            "question": question,
            "lastSeen": iso(at),
            _reason_property(reason): True,
        }
        await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.MERGE))

    async def recent(self, since: date, limit: int) -> list[GapRecord]:
        """Records asked on ``since`` or later, newest day first, at most ``limit``."""
        query = self._client.query_entities(
            "PartitionKey le @oldest", parameters={"oldest": day_key(since)}, results_per_page=1000
        )
        return [GapRecord.from_entity(entity) for entity in await collect(query, limit=limit)]

    async def dismiss(self, records: Sequence[GapRecord], group_id: str) -> None:
        """Mark ``records`` as hidden with their group (rows deleted meanwhile are skipped)."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableTransactionError, UpdateMode

        def entity(record: GapRecord) -> dict[str, Any]:
            return {"PartitionKey": record.partition, "RowKey": record.row, "dismissedGroup": group_id}

        by_day: dict[str, list[GapRecord]] = {}
        for record in records:
            by_day.setdefault(record.partition, []).append(record)
        for day in by_day.values():
            for start in range(0, len(day), BATCH):
                chunk = day[start : start + BATCH]
                operations = [("update", entity(record), {"mode": UpdateMode.MERGE}) for record in chunk]
                try:
                    await storage_call(self._client.submit_transaction(operations))
                    continue
                except TableTransactionError:
                    pass  # one row is gone (retention): the others one by one
                for record in chunk:
                    try:
                        await storage_call(self._client.update_entity(entity(record), mode=UpdateMode.MERGE))
                    except ResourceNotFoundError:
                        pass

    async def forget_before(self, day: date) -> int:
        """Delete every record of days before ``day``; returns how many."""
        from azure.data.tables import TableTransactionError

        query = self._client.query_entities(
            "PartitionKey gt @newest", parameters={"newest": day_key(day)}, select=["PartitionKey", "RowKey"]
        )
        old = await collect(query)
        by_day: dict[str, list[Any]] = {}
        for entity in old:
            by_day.setdefault(str(entity["PartitionKey"]), []).append(entity)
        for rows in by_day.values():
            for start in range(0, len(rows), BATCH):
                chunk = rows[start : start + BATCH]
                try:
                    await storage_call(self._client.submit_transaction([("delete", row) for row in chunk]))
                except TableTransactionError:
                    for row in chunk:  # deleting a row that is already gone is not an error
                        await storage_call(self._client.delete_entity(row["PartitionKey"], row["RowKey"]))
        return len(old)
