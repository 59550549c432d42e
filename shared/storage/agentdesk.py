"""The ``agentdesk`` table: what agents keep beside the conversations.

- PartitionKey ``reply``, RowKey = id: saved replies (title, shortcut, text) admins manage.
- PartitionKey ``agent``, RowKey = agent oid: agents who opened the console (name, email), the
  directory a transfer looks its target up in.
- PartitionKey ``n.<session id>``, RowKey ``<created ms>-<id>``: private notes on a conversation,
  oldest first. They live apart from the ``chats`` partition on purpose: nothing that reads a
  transcript for a visitor can ever see them.

The table is created on first use, so deployments set up before it existed need nothing.
"""

from __future__ import annotations

from typing import Any

from shared.storage.clients import get_table_service, table_client
from shared.storage.errors import ConcurrentUpdate, collect, storage_call

TABLE = "agentdesk"
REPLY, AGENT = "reply", "agent"


def note_partition(session_id: str) -> str:
    """The partition of a conversation's notes."""
    return f"n.{session_id}"


def _plain(entity: Any) -> dict[str, Any]:
    row = dict(entity)
    metadata = getattr(entity, "metadata", None) or {}
    row["etag"] = str(metadata.get("etag", ""))
    return row


class AgentDeskRepository:
    """Rows of the ``agentdesk`` table: insert, read, list a partition, replace under an ETag, delete."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(TABLE)

    async def _create_table(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            await storage_call(get_table_service().create_table(TABLE))
        except ResourceExistsError:
            pass

    async def insert(self, entity: dict[str, Any]) -> None:
        """Insert a new row (raises ``ConcurrentUpdate`` when its key exists)."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        for attempt in range(2):
            try:
                await storage_call(self._client.create_entity(entity))
                return
            except ResourceExistsError as exc:
                raise ConcurrentUpdate(str(exc)) from exc
            except ResourceNotFoundError:
                if attempt:
                    raise
                await self._create_table()

    async def upsert(self, entity: dict[str, Any]) -> None:
        """Write a row whatever was there (merge)."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.MERGE))
        except ResourceNotFoundError:
            await self._create_table()
            await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.MERGE))

    async def get(self, partition: str, row: str) -> dict[str, Any] | None:
        """One row, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _plain(await storage_call(self._client.get_entity(partition, row)))
        except ResourceNotFoundError:
            return None

    async def partition(self, partition: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        """A partition's rows in RowKey order (none when the table doesn't exist yet)."""
        from azure.core.exceptions import ResourceNotFoundError

        query = self._client.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
        try:
            return [_plain(row) for row in await collect(query, limit)]
        except ResourceNotFoundError:
            return []

    async def replace(self, entity: dict[str, Any], etag: str) -> None:
        """Replace a row only if it is unchanged since read (``ConcurrentUpdate`` otherwise)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await storage_call(
                self._client.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentUpdate(str(exc)) from exc

    async def delete(self, partition: str, row: str) -> bool:
        """Delete a row; False when it was not there."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            await storage_call(self._client.delete_entity(partition, row))
        except ResourceNotFoundError:
            return False
        return True
