"""The audit log: who did what, when, under which correlation id; per session and by time.

Two layouts in one table, so neither kind of read scans everything:

- **per session** (PartitionKey = session id, RowKey ``v<commit version>[-<n>]``): a session's own
  events in commit order, written from the outbox (a session's timeline is one partition).
- **by day** (PartitionKey ``~<99999999 - yyyymmdd>``, RowKey ``<9999999999999 - epoch ms>-<id>``):
  every event, session or deployment-wide, newest first: the deployment-wide list reads the day
  partitions of its window in key order and continues after the last RowKey it returned. Beside
  them, hourly counters per event (RowKey ``~c<HH>|<event>|<shard>``) are updated in the same
  transaction as the row they count, so the stats read counters, not events.

``~`` sorts after every session id (a UUID), so day partitions never mix with sessions. An entry's
id is stable across retries: writing it again changes nothing and counts nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.clock import iso, parse_iso
from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call
from shared.storage.values import as_int, safe_key, with_int64

log = logging.getLogger(__name__)

DAY_PREFIX = "~"
_DAY_END = "~:"  # ":" follows the digits: above every day partition
_COUNTER, _COUNTER_END = "~c", "~d"
_MAX_MS = 10**13 - 1
_SHARDS = 8
_MAX_DETAILS = 30_000  # characters of JSON; a Table property holds 64 KiB of UTF-16
_FIELDS = ("event", "actor", "at", "sessionId", "correlationId", "details", "entryId", "sessionRow")


@dataclass
class _Counted:
    """A counter as this worker last wrote or read it."""

    etag: str
    count: int


_SHARD = random.randrange(_SHARDS)  # this worker's shard of every counter
_counters: dict[tuple[str, str], _Counted] = {}
_locks: dict[tuple[int, str, str], asyncio.Lock] = {}


def _counter_lock(key: tuple[str, str]) -> asyncio.Lock:
    """One writer at a time per counter in this worker (per event loop: tests run several)."""
    slot = (id(asyncio.get_running_loop()), *key)
    if slot not in _locks:
        if len(_locks) > 10_000:  # old hours' locks are never needed again
            _locks.clear()
        _locks[slot] = asyncio.Lock()
    return _locks[slot]


def _remember(key: tuple[str, str], counted: _Counted) -> None:
    if len(_counters) > 10_000:
        _counters.clear()
    _counters[key] = counted


def day_partition(moment: datetime) -> str:
    """The day partition of a UTC moment (newer days sort first)."""
    day = int(moment.astimezone(UTC).strftime("%Y%m%d"))
    return f"{DAY_PREFIX}{99999999 - day:08d}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def time_key(moment: datetime) -> str:
    """The leading part of a day row's RowKey for ``moment`` (newer moments sort first)."""
    return f"{_MAX_MS - _ms(moment):013d}"


def session_row(version: int, index: int) -> str:
    """RowKey of the ``index``-th event of commit ``version`` in its session's partition."""
    return f"v{version:010d}" if index == 0 else f"v{version:010d}-{index}"


@dataclass
class AuditEntry:
    """One event: what happened, who caused it, when, and what it was about."""

    event: str
    actor: str
    at: datetime
    session_id: str = ""
    correlation_id: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    entry_id: str = ""  # stable across retries; the day row's RowKey ends with it
    row: str = ""  # the RowKey it was read from (session rows: ``v...``)

    @property
    def index_key(self) -> tuple[str, str]:
        """(PartitionKey, RowKey) of its day row."""
        return day_partition(self.at), f"{time_key(self.at)}-{safe_key(self.entry_id)}"

    @property
    def id(self) -> str:
        """Its public id: the day row's key, or the session row's for events recorded before the day rows."""
        return self.index_key[1] if self.entry_id else f"{self.session_id}.{self.row}"

    def fields(self) -> dict[str, Any]:
        """The entity properties (without keys)."""
        details = json.dumps(self.details, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(details) > _MAX_DETAILS:
            details = json.dumps({"truncated": True})
        return {
            "event": self.event,
            "actor": self.actor,
            "at": iso(self.at),
            "sessionId": self.session_id,
            "correlationId": self.correlation_id,
            "details": details,
            "entryId": self.entry_id,
        }

    @classmethod
    def from_entity(cls, entity: Any) -> AuditEntry:
        """Read a session row or a day row (rows from before ``details`` keep extra members as details)."""
        if "details" in entity:
            try:
                details = json.loads(entity.get("details") or "{}")
            except ValueError:
                details = {}
        else:
            details = {k: v for k, v in entity.items() if k not in _FIELDS and k not in ("PartitionKey", "RowKey")}
        at = parse_iso(str(entity.get("at") or "")) or datetime.fromtimestamp(0, UTC)
        session = str(entity.get("sessionId") or "")
        if not session and not str(entity["PartitionKey"]).startswith(DAY_PREFIX):
            session = str(entity["PartitionKey"])
        return cls(
            event=str(entity.get("event", "")),
            actor=str(entity.get("actor", "")),
            at=at,
            session_id=session,
            correlation_id=str(entity.get("correlationId") or ""),
            details=details if isinstance(details, dict) else {},
            entry_id=str(entity.get("entryId") or ""),
            row=str(entity["RowKey"]),
        )

    def public(self) -> dict[str, Any]:
        """What ``/api/audit`` and the timeline show."""
        return {
            "id": self.id,
            "at": iso(self.at),
            "event": self.event,
            "actor": self.actor,
            "sessionId": self.session_id or None,
            "correlationId": self.correlation_id or None,
            "details": self.details,
        }


@dataclass(frozen=True)
class AuditFilter:
    """What ``query`` returns: a time window [start, end), optionally one event (or an event prefix) and actor."""

    start: datetime
    end: datetime
    event: str | None = None
    event_prefix: str | None = None
    actor: str | None = None


class AuditRepository:
    """Writes events (idempotently) and reads them per session, by time, and as hourly counts."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.AUDIT)

    # --- writing -----------------------------------------------------------------------------------

    async def record(self, entry: AuditEntry) -> bool:
        """Write the day row and count it, in one transaction; False when it was already recorded.

        Each worker counts on a shard of its own and remembers the counter's ETag and value from its
        last write, so a burst of events costs one transaction each: the counter is read only when
        this worker doesn't know it yet or another writer changed it (412). A worker's writes to one
        counter go one at a time, so its own events never conflict with each other.
        """
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableTransactionError

        pk, rk = entry.index_key
        row = {"PartitionKey": pk, "RowKey": rk, **entry.fields()}
        if entry.session_id and entry.row:
            row["sessionRow"] = entry.row
        hour = entry.at.astimezone(UTC)
        key = (pk, f"{_COUNTER}{hour:%H}|{entry.event}|{_SHARD}")
        async with _counter_lock(key):
            for _ in range(20):
                known = _counters.get(key) or await self._read_counter(key)
                counted = _Counted(known.etag if known else "", (known.count if known else 0) + 1)
                try:
                    result = await storage_call(
                        self._client.submit_transaction([("create", row), self._count(key, entry, hour, counted)])
                    )
                except TableTransactionError as exc:
                    _counters.pop(key, None)
                    if exc.status_code not in (404, 409, 412):  # 404: the counter we knew is gone
                        raise
                else:
                    counted.etag = str(result[1].get("etag", "")) if len(result) > 1 else ""
                    _remember(key, counted)
                    return True
                try:  # a conflict: the row exists (recorded before) or the counter moved on (read it again)
                    await storage_call(self._client.get_entity(pk, rk))
                    return False
                except ResourceNotFoundError:
                    continue
        raise RuntimeError("audit counter kept conflicting")

    async def _read_counter(self, key: tuple[str, str]) -> _Counted | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await storage_call(self._client.get_entity(*key))
        except ResourceNotFoundError:
            return None
        return _Counted(str(entity.metadata["etag"]), as_int(entity.get("count")))

    @staticmethod
    def _count(key: tuple[str, str], entry: AuditEntry, hour: datetime, counted: _Counted) -> tuple[Any, ...]:
        """The transaction's counter operation: create it, or replace it If-Match the ETag last seen."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        entity = with_int64({"PartitionKey": key[0], "RowKey": key[1], "event": entry.event,
                             "hour": hour.strftime("%Y%m%d%H"), "count": counted.count}, ["count"])  # fmt: skip
        if not counted.etag:
            return ("create", entity)
        if_match = {"mode": UpdateMode.REPLACE, "etag": counted.etag, "match_condition": MatchConditions.IfNotModified}
        return ("update", entity, if_match)

    async def record_session(
        self, session_id: str, version: int, entries: list[AuditEntry], *, first_index: int = 0
    ) -> None:
        """Record commit ``version``'s events in the session's partition and the day rows (again is fine).

        ``first_index``: where the events' numbering starts (events recorded beside a commit, after it).
        """
        from azure.core.exceptions import ResourceExistsError

        for index, entry in enumerate(entries, start=first_index):
            entry.session_id, entry.row = session_id, session_row(version, index)
            entry.entry_id = entry.entry_id or f"{session_id}.{version}.{index}"
            try:
                await storage_call(
                    self._client.create_entity({"PartitionKey": session_id, "RowKey": entry.row, **entry.fields()})
                )
            except ResourceExistsError:
                pass
            await self.record(entry)

    # --- reading -----------------------------------------------------------------------------------

    async def events(self, session_id: str) -> list[AuditEntry]:
        """A session's events, oldest first."""
        query = self._client.query_entities(
            "PartitionKey eq @pk and RowKey ge 'v' and RowKey lt 'w'", parameters={"pk": session_id}
        )
        return [AuditEntry.from_entity(entity) for entity in await collect(query)]

    async def query(self, where: AuditFilter, *, after: str | None, limit: int) -> tuple[list[AuditEntry], bool]:
        """Events in the window matching ``where``, newest first, after the day row ``after``; (page, more)."""
        start, end = where.start, where.end
        clauses = [
            "PartitionKey ge @plo and PartitionKey le @phi",
            "RowKey ge @rlo and RowKey lt @rhi",
        ]
        parameters: dict[str, Any] = {
            "plo": day_partition(end - timedelta(milliseconds=1)),
            "phi": day_partition(start),
            "rlo": f"{_MAX_MS - _ms(end) + 1:013d}",
            "rhi": f"{_MAX_MS - _ms(start) + 1:013d}",
        }
        if after:
            clauses.append("RowKey gt @after")
            parameters["after"] = after
        if where.event:
            clauses.append("event eq @event")
            parameters["event"] = where.event
        elif where.event_prefix:
            clauses.append("event ge @elo and event lt @ehi")
            parameters["elo"] = where.event_prefix
            parameters["ehi"] = where.event_prefix[:-1] + chr(ord(where.event_prefix[-1]) + 1)
        if where.actor:
            clauses.append("actor eq @actor")
            parameters["actor"] = where.actor
        query = self._client.query_entities(
            " and ".join(clauses), parameters=parameters, results_per_page=min(1000, limit + 1)
        )
        rows = [AuditEntry.from_entity(entity) for entity in await collect(query, limit=limit + 1)]
        return rows[:limit], len(rows) > limit

    async def counts(self, start: datetime, end: datetime) -> dict[str, int]:
        """Events per name in the whole UTC hours from ``start``'s hour up to ``end``'s hour, from the counters."""
        first, last = start.astimezone(UTC), end.astimezone(UTC)
        days, day = [], first.replace(hour=0, minute=0, second=0, microsecond=0)
        while day <= last:
            days.append(day)
            day += timedelta(days=1)
        low, high = first.strftime("%Y%m%d%H"), last.strftime("%Y%m%d%H")

        async def of_day(moment: datetime) -> list[Any]:
            query = self._client.query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": day_partition(moment), "low": _COUNTER, "high": _COUNTER_END},
            )
            return await collect(query)

        totals: dict[str, int] = defaultdict(int)
        for rows in await asyncio.gather(*(of_day(moment) for moment in days)):
            for entity in rows:
                if low <= str(entity.get("hour", "")) <= high:
                    totals[str(entity.get("event", ""))] += as_int(entity.get("count"))
        return dict(totals)

    # --- retention ---------------------------------------------------------------------------------

    async def purge(self, before: datetime, *, batches: int = 20) -> int:
        """Delete the days before ``before``'s day (their day rows, counters and session rows); how many rows."""
        from azure.core.exceptions import ResourceNotFoundError

        deleted = 0
        for _ in range(batches):
            query = self._client.query_entities(
                "PartitionKey gt @pk and PartitionKey lt @end",
                parameters={"pk": day_partition(before), "end": _DAY_END},
                select=["PartitionKey", "RowKey", "sessionId", "sessionRow"],
            )
            rows = await collect(query, limit=1000)
            if not rows:
                break
            for entity in rows:
                if entity.get("sessionId") and entity.get("sessionRow"):
                    try:
                        await storage_call(self._client.delete_entity(entity["sessionId"], entity["sessionRow"]))
                    except ResourceNotFoundError:
                        pass
            by_day: dict[str, list[Any]] = defaultdict(list)
            for entity in rows:
                by_day[entity["PartitionKey"]].append(entity)
            for day_rows in by_day.values():
                for start in range(0, len(day_rows), 100):
                    chunk = [("delete", {"PartitionKey": e["PartitionKey"], "RowKey": e["RowKey"]})
                             for e in day_rows[start : start + 100]]  # fmt: skip
                    await storage_call(self._client.submit_transaction(chunk))
            deleted += len(rows)
        return deleted
