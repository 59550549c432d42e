"""Webhook endpoints and their deliveries (table ``webhooks``), and the ``webhooks`` delivery queue.

Endpoints: PartitionKey ``endpoint``, RowKey = endpoint id. Deliveries: PartitionKey ``d.<endpoint id>``,
RowKey = delivery id, which starts with the inverted creation time so a partition lists newest first.
The queue carries one message per delivery attempt due: ``{"endpointId", "deliveryId"}``, made visible
when the attempt is due (a retry's back-off is the message's visibility delay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.storage import tables
from shared.storage.clients import queue_client, table_client
from shared.storage.errors import ConcurrentUpdate, collect, storage_call
from shared.storage.values import as_int

ENDPOINT = "endpoint"
MAX_ATTEMPTS_KEPT = 20  # the newest attempts a delivery keeps (a property holds 64 KiB)
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600  # Storage queues refuse a longer visibility delay


@dataclass
class Endpoint:
    """A registered receiver: where to send, which events, and the secrets that sign."""

    endpoint_id: str
    url: str
    secret: str
    events: list[str] = field(default_factory=list)  # empty: every event
    enabled: bool = True
    description: str = ""
    previous_secret: str = ""  # still signs until ``previous_until`` (rotation's grace period)
    previous_until: str = ""
    disabled_reason: str = ""  # why delivery turned it off (a 410), empty otherwise
    created_at: str = ""
    updated_at: str = ""
    etag: str = ""

    def entity(self) -> dict[str, Any]:
        """The stored row."""
        return {
            "PartitionKey": ENDPOINT, "RowKey": self.endpoint_id, "url": self.url, "secret": self.secret,
            "events": json.dumps(self.events), "enabled": self.enabled, "description": self.description,
            "previousSecret": self.previous_secret, "previousUntil": self.previous_until,
            "disabledReason": self.disabled_reason, "createdAt": self.created_at, "updatedAt": self.updated_at,
        }  # fmt: skip

    @classmethod
    def of(cls, entity: Any) -> Endpoint:
        """An endpoint from its stored row."""
        return cls(
            str(entity["RowKey"]), str(entity.get("url", "")), str(entity.get("secret", "")),
            [str(e) for e in json.loads(entity.get("events") or "[]")], bool(entity.get("enabled", True)),
            str(entity.get("description", "")), str(entity.get("previousSecret", "")),
            str(entity.get("previousUntil", "")), str(entity.get("disabledReason", "")),
            str(entity.get("createdAt", "")), str(entity.get("updatedAt", "")),
            str(getattr(entity, "metadata", {}).get("etag", "")),
        )  # fmt: skip


@dataclass
class Delivery:
    """One event for one endpoint, and every attempt to deliver it."""

    endpoint_id: str
    delivery_id: str
    message_id: str  # the ``webhook-id`` header: the same on every attempt, so receivers can deduplicate
    event_type: str
    body: str  # the exact JSON text that is signed and sent
    created_at: str
    status: str = "pending"  # pending | retrying | delivered | failed
    attempts: list[dict[str, Any]] = field(default_factory=list)  # newest last
    attempt_count: int = 0
    next_retry_at: str = ""
    first_attempt_at: str = ""

    def entity(self) -> dict[str, Any]:
        """The stored row."""
        return {
            "PartitionKey": f"d.{self.endpoint_id}", "RowKey": self.delivery_id, "messageId": self.message_id,
            "eventType": self.event_type, "body": self.body, "createdAt": self.created_at, "status": self.status,
            "attempts": json.dumps(self.attempts[-MAX_ATTEMPTS_KEPT:], separators=(",", ":")),
            "attemptCount": self.attempt_count, "nextRetryAt": self.next_retry_at,
            "firstAttemptAt": self.first_attempt_at,
        }  # fmt: skip

    @classmethod
    def of(cls, entity: Any) -> Delivery:
        """A delivery from its stored row."""
        return cls(
            str(entity["PartitionKey"])[2:], str(entity["RowKey"]), str(entity.get("messageId", "")),
            str(entity.get("eventType", "")), str(entity.get("body", "")), str(entity.get("createdAt", "")),
            str(entity.get("status", "pending")), list(json.loads(entity.get("attempts") or "[]")),
            as_int(entity.get("attemptCount")), str(entity.get("nextRetryAt", "")),
            str(entity.get("firstAttemptAt", "")),
        )  # fmt: skip


@dataclass(frozen=True)
class DeliveryNotice:
    """The queue message: attempt this delivery now."""

    endpoint_id: str
    delivery_id: str

    def encode(self) -> str:
        """The message text."""
        return json.dumps({"endpointId": self.endpoint_id, "deliveryId": self.delivery_id}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> DeliveryNotice:
        """Parse a message text; ``ValueError`` when it isn't one of ours."""
        data = json.loads(text)
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("endpointId", "deliveryId")):
            raise ValueError("not a delivery notice")
        return cls(data["endpointId"], data["deliveryId"])


class WebhookRepository:
    """Endpoints and deliveries in the ``webhooks`` table."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.WEBHOOKS)

    async def endpoints(self, limit: int = 1000) -> list[Endpoint]:
        """Every endpoint, oldest first."""
        query = self._client.query_entities("PartitionKey eq @pk", parameters={"pk": ENDPOINT})
        found = [Endpoint.of(e) for e in await collect(query, limit=limit)]
        return sorted(found, key=lambda endpoint: (endpoint.created_at, endpoint.endpoint_id))

    async def endpoint(self, endpoint_id: str) -> Endpoint | None:
        """One endpoint, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return Endpoint.of(await storage_call(self._client.get_entity(ENDPOINT, endpoint_id)))
        except ResourceNotFoundError:
            return None

    async def create_endpoint(self, endpoint: Endpoint) -> None:
        """Store a new endpoint."""
        await storage_call(self._client.create_entity(endpoint.entity()))

    async def save_endpoint(self, endpoint: Endpoint) -> None:
        """Replace an endpoint if unchanged since it was read; :class:`ConcurrentUpdate` otherwise."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await storage_call(
                self._client.update_entity(
                    endpoint.entity(),
                    mode=UpdateMode.REPLACE,
                    etag=endpoint.etag,
                    match_condition=MatchConditions.IfNotModified,
                )  # fmt: skip
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrentUpdate() from exc

    async def delete_endpoint(self, endpoint_id: str) -> None:
        """Remove an endpoint (its deliveries stay until they age out of the listing)."""
        await storage_call(self._client.delete_entity(ENDPOINT, endpoint_id))

    async def insert_delivery(self, delivery: Delivery) -> bool:
        """Store a new delivery; False when one with its id exists already."""
        from azure.core.exceptions import ResourceExistsError

        try:
            await storage_call(self._client.create_entity(delivery.entity()))
        except ResourceExistsError:
            return False
        return True

    async def delivery(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """One delivery, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return Delivery.of(await storage_call(self._client.get_entity(f"d.{endpoint_id}", delivery_id)))
        except ResourceNotFoundError:
            return None

    async def save_delivery(self, delivery: Delivery) -> None:
        """Write a delivery's state after an attempt."""
        from azure.data.tables import UpdateMode

        await storage_call(self._client.upsert_entity(delivery.entity(), mode=UpdateMode.REPLACE))

    async def deliveries(self, endpoint_id: str, limit: int, after: str | None) -> list[Delivery]:
        """An endpoint's deliveries, newest first, after the RowKey ``after``."""
        text, params = "PartitionKey eq @pk", {"pk": f"d.{endpoint_id}"}
        if after:
            text, params = text + " and RowKey gt @after", {**params, "after": after}
        query = self._client.query_entities(text, parameters=params, results_per_page=limit)
        return [Delivery.of(e) for e in await collect(query, limit=limit)]


class DeliveryQueue:
    """Puts delivery notices on the ``webhooks`` queue, now or after a delay."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or queue_client(tables.WEBHOOKS_QUEUE)

    async def enqueue(self, notice: DeliveryNotice, delay_seconds: float = 0) -> None:
        """Announce an attempt, visible after ``delay_seconds``."""
        delay = max(0, min(int(delay_seconds + 0.999), MAX_VISIBILITY_SECONDS))
        await storage_call(self._client.send_message(notice.encode(), visibility_timeout=delay or None))
