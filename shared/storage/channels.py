"""The ``channels`` table and ``channelmedia`` container: what the messaging channels remember.

PartitionKeys:
- ``contact.<provider>``, RowKey = hash of the contact's address: the contact's live session.
- ``link``, RowKey = session id: how to answer that session (provider, channel, address, our own
  address, an email's subject and thread) and when the contact last wrote (WhatsApp's window).
- ``mail``, RowKey = hash of an email Message-ID: the session an email (in or out) belongs to.
- ``event.<provider>``, RowKey = hash of the provider's message id: an inbound event already taken.
- ``last``, RowKey = provider: the last inbound event (the dashboard's Channels view).
- ``sent``, RowKey = ``<session id>.<seq>``: a message already sent out through its channel.
Hashes keep any provider id safe as a key (Table keys refuse ``/ \\ # ?`` and control characters).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from shared.clock import iso, utcnow
from shared.storage.clients import get_blob_service, table_client
from shared.storage.errors import storage_call

TABLE = "channels"
MEDIA_CONTAINER = "channelmedia"


def key_of(value: str) -> str:
    """A Table-safe key for any provider id or address."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:48]


@dataclass
class ChannelLink:
    """How a channel session is answered."""

    session_id: str
    provider: str  # acs | whatsapp | twilio | telegram | email
    channel: str  # sms | whatsapp | telegram | email
    address: str  # the contact's phone number, chat id or email address
    local: str = ""  # our own number or address the contact wrote to
    subject: str = ""
    references: list[str] = field(default_factory=list)  # an email thread's Message-IDs, oldest first
    last_inbound_at: str = ""

    def entity(self) -> dict[str, Any]:
        """The ``link`` row."""
        return {
            "PartitionKey": "link",
            "RowKey": self.session_id,
            "provider": self.provider,
            "channel": self.channel,
            "address": self.address,
            "local": self.local,
            "subject": self.subject,
            "references": json.dumps(self.references[-20:]),
            "lastInboundAt": self.last_inbound_at,
        }

    @classmethod
    def from_entity(cls, entity: Any) -> ChannelLink:
        """Read a ``link`` row."""
        try:
            references = [str(r) for r in json.loads(entity.get("references") or "[]")]
        except (TypeError, ValueError):
            references = []
        return cls(
            session_id=entity["RowKey"],
            provider=entity.get("provider", ""),
            channel=entity.get("channel", ""),
            address=entity.get("address", ""),
            local=entity.get("local", ""),
            subject=entity.get("subject", ""),
            references=references,
            last_inbound_at=entity.get("lastInboundAt", ""),
        )


class ChannelRepository:
    """Reads and writes the ``channels`` table."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(TABLE)

    async def _get(self, partition: str, row: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await storage_call(self._client.get_entity(partition, row))
        except ResourceNotFoundError:
            return None

    async def _upsert(self, entity: dict[str, Any]) -> None:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.MERGE))
        except ResourceNotFoundError:  # the table: made on first use (a deployment may predate channels)
            await self._create_table()
            await storage_call(self._client.upsert_entity(entity, mode=UpdateMode.MERGE))

    async def _create_table(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            await storage_call(self._client.create_table())
        except ResourceExistsError:
            pass

    # --- inbound events -----------------------------------------------------------------------

    async def seen(self, provider: str, message_id: str) -> bool:
        """Whether this provider's message was already taken in."""
        return await self._get(f"event.{provider}", key_of(message_id)) is not None

    async def record_event(self, provider: str, message_id: str, *, kind: str, session_id: str = "") -> None:
        """Remember an inbound event (a retry of it is then ignored) and that it was the last one."""
        at = iso(utcnow())
        if message_id:
            await self._upsert(
                {"PartitionKey": f"event.{provider}", "RowKey": key_of(message_id), "at": at, "sessionId": session_id}
            )
        await self._upsert({"PartitionKey": "last", "RowKey": provider, "at": at, "kind": kind})

    async def last_events(self) -> dict[str, dict[str, str]]:
        """The last inbound event per provider: ``{provider: {"at", "kind"}}``."""
        from azure.core.exceptions import ResourceNotFoundError

        found: dict[str, dict[str, str]] = {}
        try:
            pages = self._client.query_entities("PartitionKey eq 'last'")
            async for entity in pages:
                found[entity["RowKey"]] = {"at": entity.get("at", ""), "kind": entity.get("kind", "")}
        except ResourceNotFoundError:
            return {}
        return found

    # --- contacts and their sessions ------------------------------------------------------------

    async def contact_session(self, provider: str, address: str) -> tuple[str, str]:
        """The session id last used with this contact and the row's ETag (('', '') when none)."""
        entity = await self._get(f"contact.{provider}", key_of(address))
        return (str(entity.get("sessionId", "")), entity.metadata["etag"]) if entity else ("", "")

    async def claim_contact(self, provider: str, address: str, session_id: str, etag: str) -> str:
        """Make ``session_id`` the contact's session if the row is still as read (``etag``; '' when there
        was none); the session id the contact has now: ours, or the one a racing first message set."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": f"contact.{provider}", "RowKey": key_of(address), "sessionId": session_id}
        for _ in range(3):
            try:
                if etag:
                    await storage_call(
                        self._client.update_entity(
                            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                        )
                    )
                else:
                    await storage_call(self._client.create_entity(entity))
                return session_id
            except ResourceNotFoundError:  # no table yet (made on first use), or the row went away
                if not etag:
                    await self._create_table()
                etag = ""
            except (ResourceExistsError, ResourceModifiedError):
                current, etag = await self.contact_session(provider, address)
                if current:
                    return current
        raise RuntimeError("the contact's session kept changing")

    async def link(self, session_id: str) -> ChannelLink | None:
        """How to answer ``session_id`` (None: a web session)."""
        entity = await self._get("link", session_id)
        return ChannelLink.from_entity(entity) if entity else None

    async def save_link(self, link: ChannelLink) -> None:
        """Store (or update) a session's link."""
        await self._upsert(link.entity())

    # --- email threads --------------------------------------------------------------------------

    async def mail_session(self, message_ids: list[str]) -> str:
        """The session of the newest of these Message-IDs that belongs to one ('' when none)."""
        for message_id in reversed(message_ids):
            entity = await self._get("mail", key_of(message_id.strip().lower()))
            if entity:
                return str(entity.get("sessionId", ""))
        return ""

    async def remember_mail(self, message_id: str, session_id: str) -> None:
        """File an email's Message-ID under its session."""
        if message_id:
            await self._upsert(
                {"PartitionKey": "mail", "RowKey": key_of(message_id.strip().lower()), "sessionId": session_id}
            )

    # --- replies sent out -----------------------------------------------------------------------

    async def was_sent(self, session_id: str, seq: int) -> bool:
        """Whether message ``seq`` of the session already went out."""
        return await self._get("sent", f"{session_id}.{seq}") is not None

    async def mark_sent(self, session_id: str, seq: int, *, outcome: str, provider_id: str = "") -> None:
        """Note that message ``seq`` went out (or why it could not)."""
        await self._upsert(
            {"PartitionKey": "sent", "RowKey": f"{session_id}.{seq}", "outcome": outcome,
             "providerId": provider_id[:500], "at": iso(utcnow())}
        )  # fmt: skip

    async def sent_outcome(self, session_id: str, seq: int) -> str:
        """``sent``, ``template-required``... for message ``seq`` ('' when not handled yet)."""
        entity = await self._get("sent", f"{session_id}.{seq}")
        return str(entity.get("outcome", "")) if entity else ""


class MediaStore:
    """Images, audio and attachments received through a channel, as blobs."""

    def __init__(self, container: Any | None = None) -> None:
        self._container = container or get_blob_service().get_container_client(MEDIA_CONTAINER)

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        """Store a blob (the container is made on first use)."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        blob = self._container.get_blob_client(name)
        settings = ContentSettings(content_type=content_type or "application/octet-stream")
        try:
            await storage_call(blob.upload_blob(data, overwrite=True, content_settings=settings))
        except ResourceNotFoundError:
            try:
                await storage_call(self._container.create_container())
            except ResourceExistsError:
                pass
            await storage_call(blob.upload_blob(data, overwrite=True, content_settings=settings))

    async def get(self, name: str) -> tuple[bytes, str] | None:
        """The blob's bytes and content type (None when missing)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            stream = await storage_call(self._container.get_blob_client(name).download_blob())
            data = await stream.readall()
        except ResourceNotFoundError:
            return None
        return data, str(stream.properties.content_settings.content_type or "application/octet-stream")
