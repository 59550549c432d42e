"""Small named state records in the ``meta`` table (seat metering, quota clock, timer runs)."""

from __future__ import annotations

from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import storage_call

_PK = "state"


class StateRepository:
    """Get and merge small dictionaries by name."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.META)

    async def get(self, name: str) -> dict[str, Any]:
        """The named record's fields, or an empty dict."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await storage_call(self._client.get_entity(_PK, name))
        except ResourceNotFoundError:
            return {}
        return {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}

    async def merge(self, name: str, fields: dict[str, Any]) -> None:
        """Create the record or merge ``fields`` into it."""
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": _PK, "RowKey": name, **fields}
        await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.MERGE))
