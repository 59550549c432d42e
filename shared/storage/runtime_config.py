"""The runtime configuration's record in the ``meta`` table, with its replays and pending audit entries.

One partition (``config``) holds the record (RowKey ``runtime``: the overrides as JSON), the
Idempotency-Key replays of changes (``idem-<key>``) and the audit entries of changes not yet
copied to the audit log (``audit-<id>``). A change writes the record (If-Match its ETag), its
replay and its audit entries in one entity-group transaction, so no change stands unaudited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import ConcurrentUpdate, collect, storage_call

_PK = "config"
_RECORD = "runtime"
REPLAY_PREFIX = "idem-"
PENDING_PREFIX = "audit-"


@dataclass
class StoredConfig:
    """The stored overrides, the record's ETag ('' before the first change) and pending audit entries."""

    overrides: dict[str, Any] = field(default_factory=dict)
    etag: str = ""
    version: str = ""  # a new random token with every change: the public ETag
    updated_at: str = ""
    updated_by: str = ""
    pending: list[dict[str, Any]] = field(default_factory=list)  # each with its "RowKey"


class RuntimeConfigRepository:
    """Reads and writes the configuration record (optimistic concurrency on its ETag)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.META)

    async def read(self) -> StoredConfig:
        """The record and the pending audit entries, in one query."""
        query = self._client.query_entities(
            # The SDK substitutes parameters word by word: keep them apart from the parentheses.
            "PartitionKey eq @pk and ( RowKey eq @record or ( RowKey ge @low and RowKey lt @high ) )",
            parameters={"pk": _PK, "record": _RECORD, "low": PENDING_PREFIX, "high": PENDING_PREFIX[:-1] + "."},
        )
        stored = StoredConfig()
        for entity in await collect(query):
            if entity["RowKey"] == _RECORD:
                stored.overrides = json.loads(entity.get("overrides") or "{}")
                stored.etag = str(entity.metadata.get("etag", ""))
                stored.version = str(entity.get("version", ""))
                stored.updated_at = str(entity.get("updatedAt", ""))
                stored.updated_by = str(entity.get("updatedBy", ""))
            else:
                stored.pending.append(dict(entity))
        return stored

    async def write(
        self,
        overrides: dict[str, Any],
        *,
        etag: str,
        version: str,
        updated_at: str,
        updated_by: str,
        pending: list[tuple[str, dict[str, Any]]],
        replay: tuple[str, dict[str, Any]] | None = None,
    ) -> str:
        """Store ``overrides`` as ``version`` if the record still has ``etag`` ('' = none yet), with the pending audit
        entries ``(id, fields)`` and a replay ``(key, fields)``; the new ETag. ``ConcurrentUpdate`` when
        the record changed meanwhile or the replay's key is taken."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        record = {
            "PartitionKey": _PK,
            "RowKey": _RECORD,
            "overrides": json.dumps(overrides, separators=(",", ":"), ensure_ascii=False),
            "version": version,
            "updatedAt": updated_at,
            "updatedBy": updated_by,
        }
        if etag:
            if_match = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}
            operations: list[Any] = [("update", record, if_match)]
        else:
            operations = [("create", record)]
        operations += [("create", {"PartitionKey": _PK, "RowKey": PENDING_PREFIX + i, **f}) for i, f in pending]
        if replay is not None:
            operations.append(("create", {"PartitionKey": _PK, "RowKey": REPLAY_PREFIX + replay[0], **replay[1]}))
        try:
            result = await storage_call(self._client.submit_transaction(operations))
        except TableTransactionError as exc:
            if exc.status_code in (409, 412):
                raise ConcurrentUpdate() from exc
            raise
        return str(result[0].get("etag", "")) if result else ""

    async def forget_pending(self, row_key: str) -> None:
        """Drop a pending audit entry once it is in the audit log."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            await storage_call(self._client.delete_entity(_PK, row_key))
        except ResourceNotFoundError:
            pass

    async def replay(self, key: str) -> dict[str, Any] | None:
        """The replay stored for an Idempotency-Key, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await storage_call(self._client.get_entity(_PK, REPLAY_PREFIX + key))
        except ResourceNotFoundError:
            return None
        return {**dict(entity), "etag": str(entity.metadata.get("etag", ""))}

    async def forget_replay(self, key: str, etag: str) -> None:
        """Drop an expired replay (unless it was replaced since it was read)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            await storage_call(
                self._client.delete_entity(
                    _PK, REPLAY_PREFIX + key, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            pass
