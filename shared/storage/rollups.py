"""Hourly usage rollups: tokens, cost and activity counters, added to as things happen.

Each hour has a few shard rows (RowKey ``YYYYMMDDHH-<shard>``) so concurrent chat turns rarely
contend on one ETag; readers sum the shards. ``/api/cost`` and ``/api/health`` read only these.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call
from shared.storage.values import as_int, with_int64

_PK = "hour"
_MARKER = "x-"  # sorts after every hour key, so hour ranges never read markers
SHARDS = 8
COUNTERS = (
    "calls",
    "promptTokens",
    "completionTokens",
    "costMicroUsd",
    "sessions",
    "messages",
    "handoffs",
)


def hour_key(moment: datetime) -> str:
    """The RowKey prefix of the UTC hour containing ``moment``."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H")


@dataclass
class Totals:
    """Summed counters over some hours."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    def add(self, entity: dict[str, Any]) -> None:
        """Add one row's counters."""
        for name in COUNTERS:
            self.counts[name] += as_int(entity.get(name))

    @property
    def cost_usd(self) -> float:
        """Cost in dollars (stored as integer micro-dollars to add up exactly)."""
        return self.counts["costMicroUsd"] / 1_000_000

    def tokens_public(self) -> dict[str, Any]:
        """The camelCase token/cost summary used by health and the dashboard."""
        prompt, completion = self.counts["promptTokens"], self.counts["completionTokens"]
        return {
            "calls": self.counts["calls"],
            "promptTokens": prompt,
            "completionTokens": completion,
            "totalTokens": prompt + completion,
            "costUsd": round(self.cost_usd, 6),
        }


class RollupRepository:
    """Adds to and reads the hourly rollups."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.ROLLUPS)

    async def add(self, moment: datetime, **increments: int) -> None:
        """Add counters to the hour of ``moment`` (optimistic concurrency, retried on conflict)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        row = f"{hour_key(moment)}-{random.randrange(SHARDS)}"
        for _ in range(20):
            try:
                entity = await storage_call(self._client.get_entity(_PK, row))
            except ResourceNotFoundError:
                fresh = {"PartitionKey": _PK, "RowKey": row, **dict.fromkeys(COUNTERS, 0)}
                for name, value in increments.items():
                    fresh[name] = value
                try:
                    await storage_call(self._client.create_entity(with_int64(fresh, COUNTERS)))
                    return
                except ResourceExistsError:
                    continue
            for name, value in increments.items():
                entity[name] = as_int(entity.get(name)) + value
            try:
                await storage_call(
                    self._client.update_entity(
                        with_int64(dict(entity), COUNTERS),
                        mode=UpdateMode.REPLACE,
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                )
                return
            except ResourceModifiedError:
                continue
        raise RuntimeError("rollup update kept conflicting")

    async def add_once(self, hour: str, marker: str, increments: dict[str, int]) -> bool:
        """Add counters to ``hour`` exactly once per ``marker``; False when that marker was already added.

        The shard row and a marker row (``x-<hour>-<marker>``) are written in one transaction, so a
        retried projection can't count twice. Markers are dropped after two days (:meth:`forget_markers`).
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableTransactionError, UpdateMode

        marker_row = {"PartitionKey": _PK, "RowKey": f"{_MARKER}{hour}-{marker}"}
        row = f"{hour}-{random.randrange(SHARDS)}"
        for _ in range(20):
            try:
                entity = await storage_call(self._client.get_entity(_PK, row))
            except ResourceNotFoundError:
                entity = None
            if entity is None:
                fresh = {"PartitionKey": _PK, "RowKey": row, **dict.fromkeys(COUNTERS, 0), **increments}
                shard: tuple[Any, ...] = ("create", with_int64(fresh, COUNTERS))
            else:
                for name, value in increments.items():
                    entity[name] = as_int(entity.get(name)) + value
                if_match = {"mode": UpdateMode.REPLACE, "etag": entity.metadata["etag"],
                            "match_condition": MatchConditions.IfNotModified}  # fmt: skip
                shard = ("update", with_int64(dict(entity), COUNTERS), if_match)
            try:
                await storage_call(self._client.submit_transaction([("create", marker_row), shard]))
                return True
            except TableTransactionError as exc:
                if exc.status_code not in (409, 412):
                    raise
            try:  # a conflict: either the marker exists (already counted) or the shard moved on
                await storage_call(self._client.get_entity(_PK, marker_row["RowKey"]))
                return False
            except ResourceNotFoundError:
                continue
        raise RuntimeError("rollup update kept conflicting")

    async def forget_markers(self, before: datetime) -> int:
        """Delete the exactly-once markers of hours before ``before``; returns how many went."""
        query = self._client.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": _PK, "low": _MARKER, "high": f"{_MARKER}{hour_key(before)}"},
            select=["RowKey"],
        )
        rows = await collect(query, limit=10_000)
        for entity in rows:
            await storage_call(self._client.delete_entity(_PK, entity["RowKey"]))
        return len(rows)

    async def hours(self, start: datetime, end: datetime) -> dict[str, Totals]:
        """Totals per hour key for hours in [start, end)."""
        low, high = hour_key(start), hour_key(end)
        query = self._client.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": _PK, "low": low, "high": high},
        )
        by_hour: dict[str, Totals] = defaultdict(Totals)
        for entity in await collect(query):
            by_hour[entity["RowKey"].split("-")[0]].add(entity)
        return dict(by_hour)

    async def today(self, now: datetime | None = None) -> Totals:
        """Totals since midnight UTC."""
        now = now or datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        totals = Totals()
        for hour in (await self.hours(midnight, midnight + timedelta(days=1))).values():
            for name in COUNTERS:
                totals.counts[name] += hour.counts[name]
        return totals
