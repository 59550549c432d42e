"""Seats: one row per agent who claimed a session in a billing month (PartitionKey = 'YYYY-MM')."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call


def billing_month(moment: datetime) -> str:
    """The billing month of a UTC moment, e.g. '2026-11'."""
    return moment.strftime("%Y-%m")


class SeatRepository:
    """Records and counts the agents holding a seat in a month."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.SEATS)

    async def holders(self, month: str) -> list[str]:
        """The agent oids holding a seat in ``month``."""
        query = self._client.query_entities("PartitionKey eq @month", parameters={"month": month}, select=["RowKey"])
        return [entity["RowKey"] for entity in await collect(query)]

    async def holds_seat(self, month: str, oid: str) -> bool:
        """True when the agent already holds a seat this month."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            await storage_call(self._client.get_entity(month, oid))
        except ResourceNotFoundError:
            return False
        return True

    async def take_seat(self, month: str, oid: str, at: str) -> str:
        """Record the agent as a seat holder (idempotent: the first claim time is kept, and returned)."""
        from azure.core.exceptions import ResourceExistsError

        try:
            await storage_call(self._client.create_entity({"PartitionKey": month, "RowKey": oid, "firstClaimAt": at}))
        except ResourceExistsError:
            return str((await storage_call(self._client.get_entity(month, oid))).get("firstClaimAt", ""))
        return at
