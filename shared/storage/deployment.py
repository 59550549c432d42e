"""The deployment record: identity, admin key hash, signing secret, bootstrap facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import ConcurrentUpdate, storage_call

_PK = "deployment"
_RK = "record"
_REPLAY_PREFIX = "idem-rotate-"


@dataclass
class DeploymentRecord:
    """What bootstrap writes once and rotation updates."""

    deployment_id: str
    version: str
    bootstrapped_at: str
    admin_key_hash: str
    admin_key_salt: str
    admin_key_version: int
    admin_key_setting_hash: str
    signing_secret: str
    etag: str = ""

    def to_entity(self) -> dict[str, Any]:
        """The table entity for this record."""
        return {
            "PartitionKey": _PK,
            "RowKey": _RK,
            "deploymentId": self.deployment_id,
            "version": self.version,
            "bootstrappedAt": self.bootstrapped_at,
            "adminKeyHash": self.admin_key_hash,
            "adminKeySalt": self.admin_key_salt,
            "adminKeyVersion": self.admin_key_version,
            "adminKeySettingHash": self.admin_key_setting_hash,
            "signingSecret": self.signing_secret,
        }

    @classmethod
    def from_entity(cls, entity: Any) -> DeploymentRecord:
        """Read a record back from its table entity."""
        return cls(
            deployment_id=entity["deploymentId"],
            version=entity.get("version", ""),
            bootstrapped_at=entity.get("bootstrappedAt", ""),
            admin_key_hash=entity["adminKeyHash"],
            admin_key_salt=entity["adminKeySalt"],
            admin_key_version=int(entity.get("adminKeyVersion", 1)),
            admin_key_setting_hash=entity.get("adminKeySettingHash", ""),
            signing_secret=entity["signingSecret"],
            etag=entity.metadata.get("etag", "") if hasattr(entity, "metadata") else "",
        )


class DeploymentRepository:
    """Reads and writes the single deployment record in the ``meta`` table."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.META)

    async def get(self) -> DeploymentRecord | None:
        """The record, or None before bootstrap."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await storage_call(self._client.get_entity(_PK, _RK))
        except ResourceNotFoundError:
            return None
        return DeploymentRecord.from_entity(entity)

    async def create(self, record: DeploymentRecord) -> None:
        """Insert the record; ``ResourceExistsError`` when another worker was first."""
        await storage_call(self._client.create_entity(record.to_entity()))

    async def replace(self, record: DeploymentRecord) -> None:
        """Replace the record only if nobody changed it since it was read (ETag)."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        await storage_call(
            self._client.update_entity(
                record.to_entity(),
                mode=UpdateMode.REPLACE,
                etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        )

    async def replace_with_replay(self, record: DeploymentRecord, key: str, fields: dict[str, Any]) -> None:
        """Replace the record (If-Match) and insert the Idempotency-Key's replay row, in one transaction.

        ``ConcurrentUpdate`` when the record changed or the key's replay row already exists.
        """
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        if_match = {"mode": UpdateMode.REPLACE, "etag": record.etag, "match_condition": MatchConditions.IfNotModified}
        replay = {"PartitionKey": _PK, "RowKey": _REPLAY_PREFIX + key, **fields}
        try:
            await storage_call(
                self._client.submit_transaction([("update", record.to_entity(), if_match), ("create", replay)])
            )
        except TableTransactionError as exc:
            if exc.status_code in (409, 412):
                raise ConcurrentUpdate() from exc
            raise

    async def replay(self, key: str) -> dict[str, Any] | None:
        """The replay row stored for an Idempotency-Key, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await storage_call(self._client.get_entity(_PK, _REPLAY_PREFIX + key))
        except ResourceNotFoundError:
            return None
        return dict(entity)

    async def forget_replay(self, key: str) -> None:
        """Drop an expired replay row (so the key can be used again)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            await storage_call(self._client.delete_entity(_PK, _REPLAY_PREFIX + key))
        except ResourceNotFoundError:
            pass
