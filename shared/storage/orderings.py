"""Orderings of sessions kept beside the ``chats`` table, so lists never scan transcripts.

- ``byactivity``: RowKey ``<inverted activity time>-<session id>``, newest first, with status,
  owner and cost, for the agent queue and the dashboard's recent list.
- ``bycost``: RowKey ``<inverted cost>-<session id>``, most expensive first.
- ``status-<status>``: RowKey ``<session id>``, for counts (claimed sessions hold seats busy) and
  for listing the live statuses, whose partitions stay small while ``byactivity`` holds history.

The index is written after the session itself; a reader that needs certainty re-reads the header.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.storage import tables
from shared.storage.chats import iso, parse_iso, utcnow
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call
from shared.storage.values import as_int, with_int64

_MAX_MICRO = 10**15
# Statuses a session leaves again; their partitions stay small (closed is the whole history).
_LIVE_STATUSES = frozenset({"open", "human_requested", "claimed"})
_LIVE_READ_LIMIT = 50_000
_MAX_TS = 10**13


def activity_key(moment: datetime, session_id: str) -> str:
    """RowKey that sorts newest activity first."""
    millis = int(moment.timestamp() * 1000)
    return f"{_MAX_TS - millis:013d}-{session_id}"


def cost_key(cost_micro_usd: int, session_id: str) -> str:
    """RowKey that sorts the most expensive session first."""
    # Always 15 digits: a cost of 0 must not grow a 16th digit and sort before every paid session.
    return f"{_MAX_MICRO - 1 - min(max(cost_micro_usd, 0), _MAX_MICRO - 1):015d}-{session_id}"


@dataclass
class IndexedSession:
    """What the orderings keep about one session."""

    session_id: str
    status: str
    last_activity_at: datetime
    cost_micro_usd: int
    claimed_by: str = ""
    message_count: int = 0
    preview: str = ""

    def fields(self) -> dict[str, Any]:
        """Entity fields shared by every ordering row."""
        return {
            "sessionId": self.session_id,
            "status": self.status,
            "lastActivityAt": iso(self.last_activity_at),
            "costMicroUsd": self.cost_micro_usd,
            "claimedBy": self.claimed_by,
            "messageCount": self.message_count,
            "preview": self.preview[:200],
        }


def listed(row: dict[str, Any]) -> dict[str, Any]:
    """An ordering row as the agent queue and the dashboard list it (camelCase, dollars, UTC "Z")."""
    return {
        "sessionId": row.get("sessionId", ""),
        "status": row.get("status", ""),
        "claimedBy": row.get("claimedBy") or None,
        "lastActivityAt": row.get("lastActivityAt", ""),
        "messageCount": as_int(row.get("messageCount")),
        "costUsd": round(as_int(row.get("costMicroUsd")) / 1_000_000, 6),
        "preview": row.get("preview", ""),
    }


class SessionIndexRepository:
    """Maintains and reads the session orderings."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.SESSIONS_INDEX)

    async def update(self, before: IndexedSession | None, after: IndexedSession) -> None:
        """Move a session's rows from its old position to its new one."""
        from azure.data.tables import UpdateMode

        fields = after.fields()
        new_rows = {
            ("byactivity", activity_key(after.last_activity_at, after.session_id)),
            ("bycost", cost_key(after.cost_micro_usd, after.session_id)),
            (f"status-{after.status}", after.session_id),
        }
        # Rows are in different partitions (no batch); writing them at once keeps this one round trip.
        # Int64: a session's cost in micro-dollars passes Int32 at about $2,147.
        rows = [with_int64({"PartitionKey": pk, "RowKey": rk, **fields}, ("costMicroUsd",)) for pk, rk in new_rows]
        await asyncio.gather(*(storage_call(self._client.upsert_entity(row, mode=UpdateMode.REPLACE)) for row in rows))
        if before is not None:
            old_rows = {
                ("byactivity", activity_key(before.last_activity_at, before.session_id)),
                ("bycost", cost_key(before.cost_micro_usd, before.session_id)),
                (f"status-{before.status}", before.session_id),
            }
            # Old rows go only after the new ones exist, so a reader never misses the session.
            await asyncio.gather(*(storage_call(self._client.delete_entity(pk, rk)) for pk, rk in old_rows - new_rows))

    async def count_status(self, status: str) -> int:
        """How many sessions are in ``status``."""
        query = self._client.query_entities(
            "PartitionKey eq @pk", parameters={"pk": f"status-{status}"}, select=["RowKey"]
        )
        return len(await collect(query))

    async def ids_with_status(self, status: str, limit: int = 1000) -> list[str]:
        """Session ids currently in ``status``."""
        query = self._client.query_entities(
            "PartitionKey eq @pk", parameters={"pk": f"status-{status}"}, select=["RowKey"]
        )
        return [row["RowKey"] for row in await collect(query, limit=limit)]

    async def by_activity(
        self,
        *,
        status: str | None,
        claimed_by: str | None,
        limit: int,
        after: str | None,
        idle_since: datetime | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest activity first, filtered; returns (rows, cursor for the next page).

        ``idle_since`` keeps only sessions with no activity since that moment.
        """
        low = max(after or "", activity_key(idle_since, "") if idle_since else "")
        if status in _LIVE_STATUSES:
            return await self._live_by_activity(status, claimed_by, limit, low)
        clauses = ["PartitionKey eq 'byactivity'"]
        parameters: dict[str, Any] = {}
        if low:
            clauses.append("RowKey gt @after")
            parameters["after"] = low
        if status:
            clauses.append("status eq @status")
            parameters["status"] = status
        if claimed_by:
            clauses.append("claimedBy eq @claimed")
            parameters["claimed"] = claimed_by
        # One row more than asked tells whether there is a next page without a second request.
        query = self._client.query_entities(" and ".join(clauses), parameters=parameters, results_per_page=limit + 1)
        rows = await collect(query, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = rows[-1]["RowKey"] if more and rows else None
        return [dict(row) for row in rows], cursor

    async def _live_by_activity(
        self, status: str, claimed_by: str | None, limit: int, low: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A live status's own partition, ordered by activity in memory.

        Live sessions are few next to the whole history, so reading their partition beats
        filtering the ``byactivity`` ordering, which would scan every closed session too.
        """
        query = self._client.query_entities("PartitionKey eq @pk", parameters={"pk": f"status-{status}"})
        keyed = []
        for row in await collect(query, limit=_LIVE_READ_LIMIT):
            if claimed_by and row.get("claimedBy") != claimed_by:
                continue
            key = activity_key(parse_iso(row.get("lastActivityAt", "")) or utcnow(), row["sessionId"])
            if key > low:
                keyed.append((key, dict(row)))
        keyed.sort(key=lambda pair: pair[0])
        more = len(keyed) > limit
        page = keyed[:limit]
        return [row for _, row in page], page[-1][0] if more and page else None

    async def by_cost(self, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The most expensive sessions first; returns (rows, cursor for the next page)."""
        clauses, parameters = ["PartitionKey eq 'bycost'"], {}
        if after:
            clauses.append("RowKey gt @after")
            parameters["after"] = after
        query = self._client.query_entities(" and ".join(clauses), parameters=parameters, results_per_page=limit + 1)
        rows = [dict(row) for row in await collect(query, limit=limit + 1)]
        return rows[:limit], rows[limit - 1]["RowKey"] if len(rows) > limit else None
