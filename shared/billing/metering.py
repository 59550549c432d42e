"""Seat metering: each hour, report the growth of the month's over-quota seats to the Marketplace.

The ``seat`` dimension is priced per additional seat per month: a seat above the plan's quota is
reported once in the month it first appears, so the month's events add up to the month's peak
number of seats above quota (seats only accumulate within a billing month). Each run sends at
most one ``usageEvent`` (``effectiveStartTime`` = the hour) with the increase not yet reported; a
409 ``Duplicate`` means an earlier run sent it and counts as reported; a failure leaves the
increase for the next run. Nothing is sent under quota.
https://learn.microsoft.com/azure/marketplace/marketplace-metering-service-apis
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.billing.plans import get_catalogue
from shared.clock import utcnow
from shared.config import Settings, get_settings
from shared.ops.health import SEAT_STATE
from shared.storage.seats import SeatRepository, billing_month
from shared.storage.state import StateRepository

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

MARKETPLACE_RESOURCE = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
METERING_STATE = "metering"


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
    """Report this month's over-quota seats not yet reported (see the module docstring)."""
    settings = get_settings()
    now = now or utcnow()
    hour, month = _hour(now), billing_month(now)
    plan = await get_catalogue().get_plan(settings.plan_id)
    overage = max(0, len(await SeatRepository().holders(month)) - plan.seat_quota)
    state_repo = StateRepository()
    state = await state_repo.get(METERING_STATE)
    same_month = state.get("month") == month
    peak = max(overage, int(state.get("peak", 0) or 0) if same_month else 0)
    reported = int(state.get("reportedTotal", 0) or 0) if same_month else 0
    quantity = peak - reported
    await state_repo.merge(METERING_STATE, {"month": month, "peak": peak, "reportedTotal": reported,
                                            "lastCheckedHour": _stamp(hour)})  # fmt: skip
    if not same_month:
        await state_repo.merge(SEAT_STATE, {"lastReportedQuantity": 0})
    # One event per hour and dimension: an increase within an hour already reported waits an hour.
    if quantity <= 0 or (same_month and state.get("lastReportedHour") == _stamp(hour)):
        return MeteringRun(max(quantity, 0), [])
    resource = settings.metering_resource_id or settings.marketplace_subscription_id
    try:
        token = await asyncio.to_thread(_token_sync, settings)
    except Exception as exc:
        log.warning("metering skipped this run: %s", type(exc).__name__)
        return MeteringRun(quantity, [], failed=True)
    event = {"resourceId": resource, "quantity": float(quantity), "dimension": plan.seat_dimension,
             "effectiveStartTime": _stamp(hour), "planId": plan.plan_id}  # fmt: skip
    # Imported only by a run with an event to send: at module top httpx cost every cold start ~50 ms.
    import httpx

    async with httpx.AsyncClient(timeout=settings.metering_timeout_seconds, transport=transport) as client:
        try:
            accepted = await _post_event(client, settings, token, event)
        except httpx.HTTPError as exc:
            log.warning("metering endpoint unreachable: %s", type(exc).__name__)
            accepted = False
    if not accepted:
        return MeteringRun(quantity, [], failed=True)
    reported += quantity
    await state_repo.merge(METERING_STATE, {"reportedTotal": reported, "lastReportedHour": _stamp(hour),
                                            "lastQuantity": quantity})  # fmt: skip
    await state_repo.merge(SEAT_STATE, {"lastReportedQuantity": reported})
    return MeteringRun(quantity, [_stamp(hour)])
