"""Seat metering: once an hour, report the seats above the plan's quota to the Marketplace.

One ``usageEvent`` per hour (``effectiveStartTime`` = the hour); a 409 ``Duplicate`` means it was
already reported and counts as success; a failure leaves the hour unreported so the next run
sends it again (the Marketplace accepts events up to 24 h old). Nothing is sent under quota.
https://learn.microsoft.com/azure/marketplace/marketplace-metering-service-apis
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from shared.billing.plans import get_catalogue
from shared.config import Settings, get_settings
from shared.ops.health import SEAT_STATE
from shared.storage.chats import utcnow
from shared.storage.seats import SeatRepository, billing_month
from shared.storage.state import StateRepository

log = logging.getLogger(__name__)

MARKETPLACE_RESOURCE = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
METERING_STATE = "metering"
_MAX_AGE = timedelta(hours=23)


@dataclass
class MeteringRun:
    """What one run did."""

    quantity: int
    reported_hours: list[str]
    failed: bool = False


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _stamp(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H:%M:%S")


def _token_sync(settings: Settings) -> str:
    """A token for the Marketplace: client credentials when configured, else the managed identity."""
    import msal
    import requests

    if settings.metering_client_id and settings.metering_client_secret:
        app = msal.ConfidentialClientApplication(
            settings.metering_client_id,
            client_credential=settings.metering_client_secret,
            authority=f"{settings.metering_authority_host.rstrip('/')}/{settings.metering_tenant_id or 'common'}",
        )
        result: dict[str, Any] = app.acquire_token_for_client(scopes=[f"{MARKETPLACE_RESOURCE}/.default"]) or {}
    else:
        client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=requests.Session())
        result = client.acquire_token_for_client(resource=MARKETPLACE_RESOURCE) or {}
    token = result.get("access_token")
    if not token:
        raise RuntimeError(f"no Marketplace token: {result.get('error', 'unknown error')}")
    return str(token)


async def _post_event(client: httpx.AsyncClient, settings: Settings, token: str, event: dict[str, Any]) -> bool:
    """Send one event; True when accepted or already there."""
    response = await client.post(
        f"{settings.metering_url.rstrip('/')}/api/usageEvent",
        params={"api-version": "2018-08-31"},
        json=event,
        headers={"Authorization": f"Bearer {token}", "x-ms-requestid": str(uuid.uuid4())},
    )
    if response.status_code == 200:
        return True
    if response.status_code == 409:  # Duplicate: this hour was already reported
        return True
    log.warning("usage event for %s refused: %s", event["effectiveStartTime"], response.status_code)
    return False


async def report_seat_usage(
    now: datetime | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> MeteringRun:
    """Report this hour's seats above the quota, and any unreported hour of the last day."""
    settings = get_settings()
    now = now or utcnow()
    hour = _hour(now)
    plan = await get_catalogue().get_plan(settings.plan_id)
    seats_used = len(await SeatRepository().holders(billing_month(now)))
    quantity = max(0, seats_used - plan.seat_quota)
    state_repo = StateRepository()
    state = await state_repo.get(METERING_STATE)
    if quantity == 0:
        await state_repo.merge(METERING_STATE, {"lastCheckedHour": _stamp(hour), "lastQuantity": 0})
        return MeteringRun(0, [])
    last_text = state.get("lastReportedHour") or ""
    last = datetime.fromisoformat(last_text).replace(tzinfo=now.tzinfo) if last_text else None
    first = max(last + timedelta(hours=1), hour - _MAX_AGE) if last else hour
    hours = []
    cursor = first
    while cursor <= hour:
        hours.append(cursor)
        cursor += timedelta(hours=1)
    if not hours:
        return MeteringRun(quantity, [])
    resource = settings.metering_resource_id or settings.marketplace_subscription_id
    try:
        token = await asyncio.to_thread(_token_sync, settings)
    except Exception as exc:
        log.warning("metering skipped this run: %s", type(exc).__name__)
        return MeteringRun(quantity, [], failed=True)
    reported: list[str] = []
    async with httpx.AsyncClient(timeout=settings.metering_timeout_seconds, transport=transport) as client:
        for each in hours:
            event = {"resourceId": resource, "quantity": float(quantity), "dimension": plan.seat_dimension,
                     "effectiveStartTime": _stamp(each), "planId": plan.plan_id}  # fmt: skip
            try:
                accepted = await _post_event(client, settings, token, event)
            except httpx.HTTPError as exc:
                log.warning("metering endpoint unreachable: %s", type(exc).__name__)
                accepted = False
            if not accepted:
                break
            reported.append(_stamp(each))
            await state_repo.merge(METERING_STATE, {"lastReportedHour": _stamp(each), "lastQuantity": quantity})
            await state_repo.merge(SEAT_STATE, {"lastReportedQuantity": quantity})
    return MeteringRun(quantity, reported, failed=len(reported) < len(hours))
