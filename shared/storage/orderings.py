"""Orderings of sessions kept beside the ``chats`` table, so lists never scan transcripts.

- ``byactivity``: RowKey ``<inverted activity time>-<session id>``, newest first, with status,
  owner and cost, for the agent queue and the dashboard's recent list.
- ``bycost``: RowKey ``<inverted cost>-<session id>``, most expensive first.
- ``status-<status>``: RowKey ``<session id>``, for counts (claimed sessions hold seats busy) and
  for listing the live statuses, whose partitions stay small while ``byactivity`` holds history.

- ``pointer``: RowKey ``<session id>``, the commit version and keys last projected.

The orderings are projected from the outbox after each commit (every row carries the session's
commit ``version``); a reader that needs certainty re-reads the header.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.clock import iso, parse_iso, utcnow
from shared.conversations.models import LIVE_STATUSES, Session, page_of
from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call
from shared.storage.values import as_int, with_int64

_MAX_MICRO = 10**15
# Statuses a session leaves again; their partitions stay small (closed is the whole history).
_LIVE_STATUSES = frozenset(LIVE_STATUSES)
_LIVE_READ_LIMIT = 50_000
_MAX_TS = 10**13
_POINTER = "pointer"


def _pointer_keys(pointer: Any) -> set[tuple[str, str]]:
    return {(pk, rk) for pk, rk in json.loads(pointer.get("keys") or "[]")} if pointer else set()


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
    """What the orderings keep about one session (as of its commit ``version``)."""

    session_id: str
    status: str
    last_activity_at: datetime
    cost_micro_usd: int
    claimed_by: str = ""
    message_count: int = 0
    preview: str = ""
    visitor_preview: str = ""
    version: int = 0
    handoff_requested_at: datetime | None = None
    channel: str = "web"
    address: str = ""
    page_url: str = ""
    page_title: str = ""

    @classmethod
    def of(cls, session: Session) -> IndexedSession:
        """The orderings' view of a session."""
        return cls(
            session_id=session.session_id,
            status=session.status,
            last_activity_at=session.last_activity_at,
            cost_micro_usd=session.cost_micro_usd,
            claimed_by=session.claimed_by,
            message_count=session.seq,
            preview=session.preview,
            visitor_preview=session.visitor_preview,
            version=session.version,
            handoff_requested_at=session.handoff_requested_at,
            channel=session.channel,
            address=session.address,
            page_url=session.page_url,
            page_title=session.page_title,
        )

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> IndexedSession:
        """Read back what :meth:`fields` wrote (an ordering row, or an outbox row's payload)."""
        return cls(
            session_id=str(fields["sessionId"]),
            status=str(fields["status"]),
            last_activity_at=parse_iso(str(fields.get("lastActivityAt", ""))) or utcnow(),
            cost_micro_usd=as_int(fields.get("costMicroUsd")),
            claimed_by=str(fields.get("claimedBy", "")),
            message_count=as_int(fields.get("messageCount")),
            preview=str(fields.get("preview", "")),
            visitor_preview=str(fields.get("visitorPreview", "")),
            version=as_int(fields.get("version")),
            handoff_requested_at=parse_iso(str(fields.get("handoffRequestedAt", ""))),
            channel=str(fields.get("channel") or "web"),
            address=str(fields.get("address", "")),
            page_url=str(fields.get("pageUrl", "")),
            page_title=str(fields.get("pageTitle", "")),
        )

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
            "visitorPreview": self.visitor_preview[:200],
            "version": self.version,
            "handoffRequestedAt": iso(self.handoff_requested_at),
            "channel": self.channel,
            "address": self.address,
            "pageUrl": self.page_url,
            "pageTitle": self.page_title,
        }

    def keys(self) -> set[tuple[str, str]]:
        """The (PartitionKey, RowKey) of each of its ordering rows."""
        return {
            ("byactivity", activity_key(self.last_activity_at, self.session_id)),
            ("bycost", cost_key(self.cost_micro_usd, self.session_id)),
            (f"status-{self.status}", self.session_id),
        }


def listed(row: dict[str, Any]) -> dict[str, Any]:
    """An ordering row as the agent queue and the dashboard list it (camelCase, dollars, UTC "Z")."""
    return {
        "sessionId": row.get("sessionId", ""),
        "status": row.get("status", ""),
        "claimedBy": row.get("claimedBy") or None,
        "lastActivityAt": row.get("lastActivityAt", ""),
        "handoffRequestedAt": row.get("handoffRequestedAt") or None,
        "messageCount": as_int(row.get("messageCount")),
        "costUsd": round(as_int(row.get("costMicroUsd")) / 1_000_000, 6),
        "preview": row.get("preview", ""),
        "visitorPreview": row.get("visitorPreview") or None,
        "channel": row.get("channel") or "web",
        "address": row.get("address") or None,
        "page": page_of(str(row.get("pageUrl") or ""), str(row.get("pageTitle") or "")),
    }


def _latest_per_session(rows: list[Any]) -> list[dict[str, Any]]:
    """Drop a row left at an older position while a projection moves (the newest version wins)."""
    newest: dict[str, int] = {}
    for row in rows:
        newest[row.get("sessionId", "")] = max(newest.get(row.get("sessionId", ""), -1), as_int(row.get("version")))
    return [dict(row) for row in rows if as_int(row.get("version")) == newest[row.get("sessionId", "")]]


class SessionIndexRepository:
    """Maintains and reads the session orderings."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.SESSIONS_INDEX)

    async def project(self, session: IndexedSession) -> bool:
        """Move a session's rows to where ``session`` puts them; False when a newer version is there.

        A pointer row (PartitionKey ``pointer``) remembers the version and keys last projected.
        New rows are written first, then the pointer (If-Match), then the old rows are deleted:
        a reader never misses the session, an older version never replaces a newer one, and a
        projection interrupted anywhere is completed by running it again.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        wanted = session.keys()
        written: set[tuple[str, str]] = set()
        for _ in range(8):
            try:
                pointer = await storage_call(self._client.get_entity(_POINTER, session.session_id))
            except ResourceNotFoundError:
                pointer = None
            current = as_int(pointer.get("version")) if pointer else -1
            if current > session.version:
                await self._delete(written - _pointer_keys(pointer))
                return False
            # Int64: a session's cost in micro-dollars passes Int32 at about $2,147.
            rows = [
                with_int64({"PartitionKey": pk, "RowKey": rk, **session.fields()}, ("costMicroUsd",))
                for pk, rk in wanted
            ]
            await asyncio.gather(
                *(storage_call(self._client.upsert_entity(row, mode=UpdateMode.REPLACE)) for row in rows)
            )
            written |= wanted
            if current == session.version:
                return True
            entity = {"PartitionKey": _POINTER, "RowKey": session.session_id, "version": session.version,
                      "keys": json.dumps(sorted(wanted))}  # fmt: skip
            try:
                if pointer is None:
                    await storage_call(self._client.create_entity(entity))
                else:
                    await storage_call(
                        self._client.update_entity(
                            entity, mode=UpdateMode.REPLACE, etag=pointer.metadata["etag"],
                            match_condition=MatchConditions.IfNotModified,
                        )
                    )  # fmt: skip
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another projection moved it meanwhile: look again
            # Old rows go only after the new ones exist, so a reader never misses the session.
            await self._delete((_pointer_keys(pointer) | written) - wanted)
            return True
        raise RuntimeError(f"orderings of session {session.session_id} kept changing")

    async def _delete(self, keys: set[tuple[str, str]]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        async def delete(pk: str, rk: str) -> None:
            try:
                await storage_call(self._client.delete_entity(pk, rk))
            except ResourceNotFoundError:
                pass

        await asyncio.gather(*(delete(pk, rk) for pk, rk in keys))

    async def queue_position(self, session_id: str, waiting_since: str) -> int:
        """1 + how many sessions have waited for a person longer than this one."""
        query = self._client.query_entities(
            "PartitionKey eq @pk", parameters={"pk": "status-human_requested"}, select=["RowKey", "handoffRequestedAt"]
        )
        rows = await collect(query, limit=_LIVE_READ_LIMIT)
        ahead = {
            row["RowKey"]
            for row in rows
            if row["RowKey"] != session_id and (row.get("handoffRequestedAt") or waiting_since) < waiting_since
        }
        return len(ahead) + 1

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
        return _latest_per_session(rows), cursor

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
        return _latest_per_session(rows[:limit]), rows[limit - 1]["RowKey"] if len(rows) > limit else None
