"""The ``analytics`` table: each conversation's facts beside its start day's counters.

PartitionKey ``m-YYYYMM`` (the month a conversation started, UTC). RowKeys: ``c-<session id>`` (the
conversation's facts and the last commit applied), ``d<YYYYMMDD>-t<shard>`` (the day's counters, a
few shards so concurrent commits rarely contend), ``d<YYYYMMDD>-a-<agent oid>`` (an agent's counters
for conversations of that day). One commit's facts and the counters it changes are written in one
entity-group transaction guarded by ETags, and the facts carry the commit's version: applying a
commit twice counts nothing twice. A range of days is read as one RowKey range per month.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from shared.analytics.facts import (
    AGENT_COUNTERS,
    DAY_COUNTERS,
    Event,
    Facts,
    additive,
    contribution,
    difference,
    fold,
)
from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call
from shared.storage.values import as_int, with_int64

SHARDS = 4
_ATTEMPTS = 20


def month_key(day: str) -> str:
    """The partition of a YYYYMMDD day."""
    return f"m-{day[:6]}"


@dataclass
class DayRows:
    """The counters read for one day: the day's totals and each agent's."""

    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DAY_COUNTERS, 0))
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # oid -> {"name", counters...}


def _counter_row(entity: Any | None, pk: str, rk: str, names: tuple[str, ...], delta: dict[str, int],
                 extra: dict[str, Any] | None = None) -> tuple[Any, ...]:  # fmt: skip
    """The transaction operation adding ``delta`` to a counter row (created when missing)."""
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    if entity is None:
        fresh = {"PartitionKey": pk, "RowKey": rk, **dict.fromkeys(names, 0), **delta, **(extra or {})}
        return ("create", with_int64(fresh, names))
    row = dict(entity)
    for name, value in delta.items():
        row[name] = as_int(row.get(name)) + value
    row.update(extra or {})
    if_match = {"mode": UpdateMode.REPLACE, "etag": entity.metadata["etag"],
                "match_condition": MatchConditions.IfNotModified}  # fmt: skip
    return ("update", with_int64(row, names), if_match)


class AnalyticsRepository:
    """Applies commits' analytics events and reads days' counters."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.ANALYTICS)

    async def _get(self, pk: str, rk: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await storage_call(self._client.get_entity(pk, rk))
        except ResourceNotFoundError:
            return None

    async def apply(self, session_id: str, version: int, event: Event) -> bool:
        """Fold commit ``version``'s event into the conversation's facts and its day; False if already applied."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        pk, facts_rk = month_key(event.day), f"c-{session_id}"
        for _ in range(_ATTEMPTS):
            stored = await self._get(pk, facts_rk)
            facts = Facts.from_stored(dict(stored)) if stored is not None else Facts()
            if facts.version >= version:
                return False
            new = fold(facts, event, version)
            (old_day, old_agent), (new_day, new_agent) = contribution(facts), contribution(new)
            day_delta = difference(new_day, old_day)
            for name, value in additive(event).items():
                day_delta[name] = day_delta.get(name, 0) + value
            agent_deltas: dict[str, dict[str, int]] = defaultdict(dict)
            if facts.agent == new.agent:
                if new.agent:
                    agent_deltas[new.agent] = difference(new_agent, old_agent)
            else:  # the conversation moved to another agent: its counts move with it
                if facts.agent:
                    agent_deltas[facts.agent] = difference({}, old_agent)
                if new.agent:
                    agent_deltas[new.agent] = difference(new_agent, {})
            facts_entity = {"PartitionKey": pk, "RowKey": facts_rk, **new.stored()}
            operations: list[tuple[Any, ...]] = []
            if stored is None:
                operations.append(("create", facts_entity))
            else:
                guard = {"mode": UpdateMode.REPLACE, "etag": stored.metadata["etag"],
                         "match_condition": MatchConditions.IfNotModified}  # fmt: skip
                operations.append(("update", facts_entity, guard))
            if day_delta:
                rk = f"d{event.day}-t{random.randrange(SHARDS)}"
                operations.append(_counter_row(await self._get(pk, rk), pk, rk, DAY_COUNTERS, day_delta))
            for oid, delta in agent_deltas.items():
                if not delta and not (oid == new.agent and new.agent_name):
                    continue
                rk = f"d{event.day}-a-{oid}"
                label = {"name": new.agent_name} if oid == new.agent and new.agent_name else None
                operations.append(_counter_row(await self._get(pk, rk), pk, rk, AGENT_COUNTERS, delta, label))
            try:
                await storage_call(self._client.submit_transaction(operations))
                return True
            except TableTransactionError as exc:
                if exc.status_code not in (409, 412):
                    raise
        raise RuntimeError("analytics update kept conflicting")

    async def days(self, first: date, last: date) -> dict[str, DayRows]:
        """The counters of the days ``first`` to ``last`` (inclusive), by YYYYMMDD; days with nothing are absent."""
        months: list[tuple[str, str, str]] = []
        cursor = first.replace(day=1)
        while cursor <= last:  # a month's partition holds only its own days: the upper bound may be ``last``
            low = max(first, cursor).strftime("%Y%m%d")
            months.append((f"m-{cursor.strftime('%Y%m')}", f"d{low}-", f"d{last.strftime('%Y%m%d')}."))
            cursor = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        found = await asyncio.gather(*(self._month(*month) for month in months))
        by_day: dict[str, DayRows] = {}
        for entities in found:
            for entity in entities:
                day, kind = entity["RowKey"][1:9], entity["RowKey"][10:]
                rows = by_day.setdefault(day, DayRows())
                if kind.startswith("t"):
                    for name in DAY_COUNTERS:
                        rows.totals[name] += as_int(entity.get(name))
                elif kind.startswith("a-"):
                    agent = rows.agents.setdefault(kind[2:], {"name": "", **dict.fromkeys(AGENT_COUNTERS, 0)})
                    agent["name"] = entity.get("name") or agent["name"]
                    for name in AGENT_COUNTERS:
                        agent[name] += as_int(entity.get(name))
        return by_day

    async def _month(self, pk: str, low: str, high: str) -> list[Any]:
        query = self._client.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": pk, "low": low, "high": high},
        )
        return await collect(query)
