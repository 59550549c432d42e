"""What admins do with webhook endpoints: register, change, remove, rotate the secret, look at and retry deliveries."""

from __future__ import annotations

import asyncio
import base64
import secrets
from datetime import timedelta
from typing import Any

from shared.clock import iso, parse_iso, utcnow
from shared.errors import Problem
from shared.knowledge.fetching import Fetcher, UrlRefused, url_problem
from shared.storage.errors import ConcurrentUpdate
from shared.storage.values import is_safe_key
from shared.storage.webhooks import Delivery, DeliveryNotice, Endpoint, WebhookRepository
from shared.webhooks import delivery as deliveries
from shared.webhooks.events import TEST, event
from shared.webhooks.models import EndpointIn, EndpointPatch
from shared.webhooks.settings import webhook_settings

_RESOLVE_SECONDS = 5.0


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, f"'{field}' {message}.", kind="validation-error", errors=[{"field": field, "message": message}])


async def check_url(url: str) -> None:
    """Refuse (422 naming ``url``) a target that isn't https, or isn't public, unless Development allows it."""
    allow_private = webhook_settings().private_allowed
    problem = url_problem(url)
    if problem:
        raise _invalid("url", problem)
    if not allow_private and not url.lower().startswith("https://"):
        raise _invalid("url", "must be an https URL")
    try:
        async with asyncio.timeout(_RESOLVE_SECONDS):
            await Fetcher(allow_private=allow_private).check(url)
    except UrlRefused as refused:
        raise _invalid("url", f"can't receive webhooks: {refused}") from None
    except TimeoutError:
        raise _invalid("url", f"has a host name that did not resolve within {_RESOLVE_SECONDS:g} seconds") from None


def public(endpoint: Endpoint, *, with_secret: bool = False) -> dict[str, Any]:
    """The admin's view of an endpoint."""
    until = parse_iso(endpoint.previous_until) if endpoint.previous_until else None
    body: dict[str, Any] = {
        "id": endpoint.endpoint_id, "url": endpoint.url, "events": list(endpoint.events), "enabled": endpoint.enabled,
        "description": endpoint.description, "disabledReason": endpoint.disabled_reason or None,
        "previousSecretValidUntil": endpoint.previous_until if until and until > utcnow() else None,
        "createdAt": endpoint.created_at, "updatedAt": endpoint.updated_at,
    }  # fmt: skip
    if with_secret:
        body["secret"] = endpoint.secret
    return body


def _not_found(endpoint_id: str) -> Problem:
    return Problem(404, f"No webhook endpoint {endpoint_id[:64]!r}.", kind="webhook-not-found")


async def load(endpoint_id: str) -> Endpoint:
    """An endpoint, or a 404."""
    if not is_safe_key(endpoint_id, 64):
        raise _not_found(endpoint_id)
    found = await WebhookRepository().endpoint(endpoint_id)
    if found is None:
        raise _not_found(endpoint_id)
    return found


async def create(body: EndpointIn) -> dict[str, Any]:
    """Register an endpoint; the answer carries its secret, shown this once."""
    await check_url(body.url)
    now = iso(utcnow())
    endpoint = Endpoint(
        "ep_" + secrets.token_hex(12), body.url, new_secret(), list(body.events), body.enabled, body.description,
        created_at=now, updated_at=now,
    )  # fmt: skip
    await WebhookRepository().create_endpoint(endpoint)
    return public(endpoint, with_secret=True)


async def list_endpoints() -> dict[str, Any]:
    """Every endpoint, oldest first."""
    return {"endpoints": [public(endpoint) for endpoint in await WebhookRepository().endpoints()]}


async def change(endpoint_id: str, patch: EndpointPatch) -> dict[str, Any]:
    """Apply a merge patch; turning an endpoint on again clears why delivery turned it off."""
    fields = patch.model_dump(exclude_unset=True)
    for name in ("url", "events", "enabled", "description"):
        if name in fields and fields[name] is None:
            raise _invalid(name, "can't be null")
    if patch.url is not None:
        await check_url(patch.url)
    repo = WebhookRepository()
    for _ in range(5):
        endpoint = await load(endpoint_id)
        endpoint.url = patch.url if patch.url is not None else endpoint.url
        endpoint.events = list(patch.events) if patch.events is not None else endpoint.events
        endpoint.description = patch.description if patch.description is not None else endpoint.description
        if patch.enabled is not None:
            endpoint.enabled = patch.enabled
            endpoint.disabled_reason = "" if patch.enabled else endpoint.disabled_reason
        endpoint.updated_at = iso(utcnow())
        try:
            await repo.save_endpoint(endpoint)
        except ConcurrentUpdate:
            continue
        return public(endpoint)
    raise Problem(409, "The endpoint is changing too fast; retry.", kind="busy", headers={"Retry-After": "1"})


async def remove(endpoint_id: str) -> None:
    """Delete an endpoint; nothing more is sent to it."""
    await load(endpoint_id)
    await WebhookRepository().delete_endpoint(endpoint_id)


async def rotate_secret(endpoint_id: str, grace_hours: float | None) -> dict[str, Any]:
    """A new secret, shown once; the old one keeps signing beside it for the grace period."""
    grace = timedelta(hours=webhook_settings().rotation_grace_hours if grace_hours is None else grace_hours)
    repo = WebhookRepository()
    for _ in range(5):
        endpoint = await load(endpoint_id)
        now = utcnow()
        endpoint.previous_secret, endpoint.secret = (endpoint.secret, new_secret())
        endpoint.previous_until = iso(now + grace) if grace else ""
        endpoint.updated_at = iso(now)
        try:
            await repo.save_endpoint(endpoint)
        except ConcurrentUpdate:
            continue
        return public(endpoint, with_secret=True)
    raise Problem(409, "The endpoint is changing too fast; retry.", kind="busy", headers={"Retry-After": "1"})


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    """The admin's view of a delivery."""
    import json

    last = delivery.attempts[-1] if delivery.attempts else {}
    history = [
        {"at": str(a.get("at", "")), "responseStatus": a.get("responseStatus"),
         "durationMs": int(a.get("durationMs") or 0), "error": a.get("error"), "nextRetryAt": a.get("nextRetryAt")}
        for a in delivery.attempts
    ]  # fmt: skip
    try:
        payload = json.loads(delivery.body)
    except ValueError:
        payload = {}
    return {
        "id": delivery.delivery_id, "endpointId": delivery.endpoint_id, "messageId": delivery.message_id,
        "eventType": delivery.event_type, "status": delivery.status, "attemptCount": delivery.attempt_count,
        "responseStatus": last.get("responseStatus"), "durationMs": last.get("durationMs"),
        "nextRetryAt": delivery.next_retry_at or None, "createdAt": delivery.created_at, "attempts": history,
        "payload": payload if isinstance(payload, dict) else {},
    }  # fmt: skip


async def list_deliveries(endpoint_id: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """An endpoint's deliveries, newest first, and the key to continue after (None at the end)."""
    await load(endpoint_id)
    found = await WebhookRepository().deliveries(endpoint_id, limit + 1, after)
    more = len(found) > limit
    page = found[:limit]
    return [delivery_view(d) for d in page], (page[-1].delivery_id if more and page else None)


async def retry(endpoint_id: str, delivery_id: str) -> dict[str, Any]:
    """Attempt a delivery again now, whatever its status; the answer shows how it went."""
    await load(endpoint_id)
    repo = WebhookRepository()
    if not is_safe_key(delivery_id, 64) or await repo.delivery(endpoint_id, delivery_id) is None:
        raise Problem(404, f"No delivery {delivery_id[:64]!r} of this endpoint.", kind="delivery-not-found")
    await deliveries.attempt(DeliveryNotice(endpoint_id, delivery_id), force=True)
    stored = await repo.delivery(endpoint_id, delivery_id)
    assert stored is not None
    return delivery_view(stored)


async def send_test(endpoint_id: str) -> dict[str, Any]:
    """Send a ``webhook.test`` event now, signed as any other; the answer shows how it went."""
    endpoint = await load(endpoint_id)
    if not endpoint.enabled:
        raise Problem(409, "The endpoint is disabled; enable it first.", kind="webhook-disabled")
    now = utcnow()
    identity = f"test.{secrets.token_hex(8)}.{endpoint_id}"
    test = event(TEST, {"endpointId": endpoint_id, "message": "A test event from the support desk."}, now)
    delivery = Delivery(
        endpoint_id, deliveries.delivery_id(now, identity), deliveries.message_id(identity), TEST,
        deliveries.body_of(test), iso(now),
    )  # fmt: skip
    repo = WebhookRepository()
    await repo.insert_delivery(delivery)
    await deliveries.attempt(DeliveryNotice(endpoint_id, delivery.delivery_id), force=True)
    stored = await repo.delivery(endpoint_id, delivery.delivery_id)
    assert stored is not None
    return delivery_view(stored)
