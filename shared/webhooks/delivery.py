"""Deliveries: the outbox's fan-out to subscribed endpoints, and one attempt per queue message with retries.

Fan-out (the ``webhook`` outbox row's applier) records one delivery per event and subscribed, enabled
endpoint, with an id derived from the commit, the event and the endpoint: applying the row twice
records nothing twice, and the ``webhook-id`` stays the same on every attempt and every re-application,
so a receiver that deduplicates on it sees each event once.

An attempt: 2xx delivered; 410 Gone turns the endpoint off (the receiver asked for no more) and fails
the delivery; anything else (another status, a timeout, a refused or unreachable address) is retried on
the schedule (``WEBHOOK_RETRY_SCHEDULE``, seconds after the first attempt) while within
``WEBHOOK_RETRY_HOURS``, or after the receiver's ``Retry-After`` when it sends one. A retry is a new
queue message made visible when it is due.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from shared.clock import iso, parse_iso, utcnow
from shared.storage.webhooks import Delivery, DeliveryNotice, DeliveryQueue, Endpoint, WebhookRepository
from shared.webhooks.sending import headers, post
from shared.webhooks.settings import webhook_settings

log = logging.getLogger(__name__)

DELIVERED, RETRYING, FAILED, PENDING = "delivered", "retrying", "failed", "pending"
_EARLY = timedelta(seconds=1)  # a message that arrives this much before its attempt is due is a stale one


def delivery_id(at: datetime, identity: str) -> str:
    """A delivery id sorting newest first: the inverted creation time in ms, then a hash of its identity."""
    inverted = 10**13 - int(at.timestamp() * 1000)
    return f"{inverted:013d}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def message_id(identity: str) -> str:
    """The ``webhook-id`` of an event for an endpoint."""
    return "msg_" + hashlib.sha256(identity.encode()).hexdigest()[:24]


def body_of(event: dict[str, Any]) -> str:
    """The exact JSON text sent and signed."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str)


def subscribed(endpoint: Endpoint, event_type: str) -> bool:
    """Whether ``endpoint`` wants ``event_type`` (an empty filter wants every event)."""
    return endpoint.enabled and (not endpoint.events or event_type in endpoint.events)


async def fan_out(source: str, events: list[dict[str, Any]], at: datetime) -> int:
    """Record and enqueue a delivery per event and subscribed endpoint; ``source`` names the commit."""
    if not events:
        return 0
    repo, queue = WebhookRepository(), DeliveryQueue()
    endpoints = await repo.endpoints()
    queued = 0
    for index, event in enumerate(events):
        for endpoint in endpoints:
            if not subscribed(endpoint, str(event.get("type"))):
                continue
            identity = f"{source}.{index}.{endpoint.endpoint_id}"
            delivery = Delivery(
                endpoint.endpoint_id, delivery_id(at, identity), message_id(identity), str(event["type"]),
                body_of(event), iso(utcnow()),
            )  # fmt: skip
            if not await repo.insert_delivery(delivery):
                stored = await repo.delivery(endpoint.endpoint_id, delivery.delivery_id)
                if stored is None or stored.status != PENDING or stored.attempt_count:
                    continue  # already on its way: a re-application adds nothing
            # Enqueued again while still untried: its first notice may have been lost with a failed run.
            await queue.enqueue(DeliveryNotice(endpoint.endpoint_id, delivery.delivery_id))
            queued += 1
    return queued


def live_secrets(endpoint: Endpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its grace period."""
    until = parse_iso(endpoint.previous_until) if endpoint.previous_until else None
    if endpoint.previous_secret and until is not None and now < until:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


def next_attempt(delivery: Delivery, now: datetime, wait: float | None) -> datetime | None:
    """When to try again after ``delivery``'s latest failed attempt, or None when retries are over."""
    settings = webhook_settings()
    first = parse_iso(delivery.first_attempt_at) or now
    deadline = first + timedelta(hours=settings.retry_hours)
    if wait is not None:  # the receiver said when: honour it (at least a second later)
        due = now + timedelta(seconds=max(1.0, wait))
    else:
        offsets = settings.offsets
        if delivery.attempt_count > len(offsets):
            return None
        due = max(first + timedelta(seconds=offsets[delivery.attempt_count - 1]), now)
    return due if due <= deadline else None


async def attempt(notice: DeliveryNotice, *, force: bool = False) -> str:
    """Try one delivery now (see the module docstring); returns the delivery's status afterwards."""
    repo = WebhookRepository()
    delivery = await repo.delivery(notice.endpoint_id, notice.delivery_id)
    if delivery is None:
        return "missing"
    now = utcnow()
    if delivery.status in (DELIVERED, FAILED) and not force:
        return delivery.status
    due = parse_iso(delivery.next_retry_at) if delivery.next_retry_at else None
    if not force and delivery.status == RETRYING and due is not None and now < due - _EARLY:
        return delivery.status  # superseded: a newer notice is due later
    endpoint = await repo.endpoint(notice.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        delivery.status, delivery.next_retry_at = FAILED, ""
        reason = "the endpoint is disabled" if endpoint else "the endpoint was deleted"
        delivery.attempts.append({"at": iso(now), "responseStatus": None, "durationMs": 0, "error": reason})
        await repo.save_delivery(delivery)
        return delivery.status
    settings = webhook_settings()
    sent = await post(
        endpoint.url, delivery.body, headers(live_secrets(endpoint, now), delivery.message_id, now, delivery.body),
        timeout=settings.timeout_seconds, allow_private=settings.private_allowed,
    )  # fmt: skip
    delivery.attempt_count += 1
    delivery.first_attempt_at = delivery.first_attempt_at or iso(now)
    record: dict[str, Any] = {"at": iso(now), "responseStatus": sent.status, "durationMs": sent.duration_ms,
                              "error": sent.error or None}  # fmt: skip
    delivery.attempts.append(record)
    if sent.status is not None and 200 <= sent.status < 300:
        delivery.status, delivery.next_retry_at = DELIVERED, ""
    elif sent.status == 410:
        delivery.status, delivery.next_retry_at = FAILED, ""
        await _disable(repo, endpoint, now)
    else:
        due = next_attempt(delivery, utcnow(), sent.retry_after)
        if due is None:
            delivery.status, delivery.next_retry_at = FAILED, ""
        else:
            delivery.status, delivery.next_retry_at = RETRYING, iso(due)
            record["nextRetryAt"] = iso(due)
            await DeliveryQueue().enqueue(notice, (due - utcnow()).total_seconds())
    await repo.save_delivery(delivery)
    log.info("webhook %s to endpoint %s: %s (%s)", delivery.event_type, endpoint.endpoint_id, delivery.status,
             sent.status or sent.error[:80])  # fmt: skip
    return delivery.status


async def _disable(repo: WebhookRepository, endpoint: Endpoint, now: datetime) -> None:
    """Turn an endpoint off because its receiver answered 410 Gone."""
    from shared.storage.errors import ConcurrentUpdate

    for _ in range(3):
        endpoint.enabled = False
        endpoint.disabled_reason = "the receiver answered 410 Gone"
        endpoint.updated_at = iso(now)
        try:
            await repo.save_endpoint(endpoint)
            return
        except ConcurrentUpdate:
            fresh = await repo.endpoint(endpoint.endpoint_id)
            if fresh is None:
                return
            endpoint = fresh
    log.warning("webhook endpoint %s not disabled after a 410: it kept changing", endpoint.endpoint_id)


async def apply_outbox_row(row: Any, _: Any) -> None:
    """The ``webhook`` outbox row's applier: fan the commit's events out to the subscribed endpoints."""
    events = [e for e in row.payload.get("events") or [] if isinstance(e, dict) and e.get("type")]
    await fan_out(f"{row.session_id}.{row.version}", events, row.created_at)
