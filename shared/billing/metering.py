"""Seat metering: each hour, report the growth of the month's over-quota seats to the Marketplace.

The ``seat`` dimension is priced per additional seat per month: a seat above the plan's quota is
reported once in the month it first appears, so the month's events add up to the month's peak
number of seats above quota (seats only accumulate within a billing month). Each run sends at
most one ``usageEvent`` (``effectiveStartTime`` = the hour) with the increase not yet reported; a
409 ``Duplicate`` means an earlier run sent it and counts as reported; a 429, a 5xx or a network
error is tried once more at once, and any failure leaves the increase for the next run. Nothing is
sent under quota.

Who the usage belongs to depends on the offer (``MARKETPLACE_OFFER``): a managed application names
itself by ``resourceUri`` (its managed resource group's ``managedBy``, see ``managed_app``) with a
token from the app's managed identity; a SaaS offer by ``resourceId`` (the subscription id) with
client credentials, or the managed identity. ``none`` reports nothing (a direct deployment).
https://learn.microsoft.com/azure/marketplace/marketplace-metering-service-apis
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.billing.offers import offer_of
from shared.billing.plans import get_catalogue
from shared.clock import iso, utcnow
from shared.config import Settings, get_settings
from shared.ops.health import METERING_STATE, SEAT_STATE
from shared.storage.seats import SeatRepository, billing_month
from shared.storage.state import StateRepository

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# The Marketplace metering service's resource (the token's audience), the same in every offer type.
MARKETPLACE_RESOURCE = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
RETRY_DELAY_SECONDS = 1.0
_TRANSIENT = {408, 429, 500, 502, 503, 504}


@dataclass
class MeteringRun:
    """What one run did."""

    quantity: int
    reported_hours: list[str]
    failed: bool = False
    result: str = ""


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _stamp(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H:%M:%S")


def _client_credentials_token(settings: Settings) -> str:
    """A SaaS offer's token from its Entra app (client credentials, msal)."""
    import msal

    app = msal.ConfidentialClientApplication(
        settings.metering_client_id,
        client_credential=settings.metering_client_secret,
        authority=f"{settings.metering_authority_host.rstrip('/')}/{settings.metering_tenant_id or 'common'}",
    )
    result: dict[str, Any] = app.acquire_token_for_client(scopes=[f"{MARKETPLACE_RESOURCE}/.default"]) or {}
    token = result.get("access_token")
    if not token:
        raise RuntimeError(f"no Marketplace token: {result.get('error', 'unknown error')}")
    return str(token)


async def _token(settings: Settings, offer: str) -> str:
    from shared.identity import managed_identity

    if offer == "saas" and settings.metering_client_id and settings.metering_client_secret:
        return await asyncio.to_thread(_client_credentials_token, settings)
    return await managed_identity.get_token(MARKETPLACE_RESOURCE, client_id=settings.managed_identity_client_id)


async def _resource(settings: Settings, offer: str, transport: httpx.AsyncBaseTransport | None) -> tuple[str, str]:
    """(the event's field, its value): ``resourceUri`` of a managed application, ``resourceId`` of SaaS."""
    if offer == "managed-app":
        import os

        from shared.billing import managed_app

        owner = os.environ.get("WEBSITE_OWNER_NAME", "")
        return "resourceUri", await managed_app.resolve_resource_uri(settings, owner_name=owner, transport=transport)
    return "resourceId", settings.metering_resource_id or settings.marketplace_subscription_id


async def _post_event(client: httpx.AsyncClient, settings: Settings, token: str, event: dict[str, Any]) -> str:
    """``accepted``, ``duplicate`` or why not; a transient failure is tried once more."""
    import httpx

    result = ""
    for attempt in range(2):
        if attempt:
            await asyncio.sleep(RETRY_DELAY_SECONDS)
        try:
            response = await client.post(
                f"{settings.metering_url.rstrip('/')}/api/usageEvent",
                params={"api-version": "2018-08-31"},
                json=event,
                headers={"Authorization": f"Bearer {token}", "x-ms-requestid": str(uuid.uuid4())},
            )
        except httpx.HTTPError as exc:
            log.warning("metering endpoint unreachable: %s", type(exc).__name__)
            result = "unreachable"
            continue
        if response.status_code == 200:
            return "accepted"
        if response.status_code == 409:  # Duplicate: this hour was already reported
            return "duplicate"
        result = f"http-{response.status_code}"
        log.warning("usage event for %s refused: %s", event["effectiveStartTime"], response.status_code)
        if response.status_code not in _TRANSIENT:
            break
    return result


async def _record(state_repo: StateRepository, now: datetime, result: str, error: str = "", **fields: Any) -> None:
    # What /api/health shows as the last run: when, what happened, why not (a code, never a token).
    await state_repo.merge(METERING_STATE, {"lastRunAt": iso(now), "lastResult": result, "lastError": error, **fields})


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
    offer = offer_of(settings)
    await state_repo.merge(METERING_STATE, {"month": month, "peak": peak, "reportedTotal": reported,
                                            "lastCheckedHour": _stamp(hour), "offer": offer})  # fmt: skip
    if not same_month:
        await state_repo.merge(SEAT_STATE, {"lastReportedQuantity": 0})
    if offer == "none":
        await _record(state_repo, now, "off")
        return MeteringRun(max(quantity, 0), [], result="off")
    # One event per hour and dimension: an increase within an hour already reported waits an hour.
    if quantity <= 0 or (same_month and state.get("lastReportedHour") == _stamp(hour)):
        await _record(state_repo, now, "nothing-to-report")
        return MeteringRun(max(quantity, 0), [], result="nothing-to-report")
    from shared.billing.managed_app import ManagedAppUnresolved
    from shared.identity.managed_identity import ManagedIdentityUnavailable

    try:
        field, resource = await _resource(settings, offer, transport)
        token = await _token(settings, offer)
    except ManagedAppUnresolved as exc:
        log.warning("metering skipped this run: the managed application is unknown (%s)", exc.reason)
        await _record(state_repo, now, "failed", exc.reason)
        return MeteringRun(quantity, [], failed=True, result="failed")
    except (ManagedIdentityUnavailable, RuntimeError) as exc:
        log.warning("metering skipped this run: %s", type(exc).__name__)
        await _record(state_repo, now, "failed", "token-unavailable")
        return MeteringRun(quantity, [], failed=True, result="failed")
    event = {field: resource, "quantity": float(quantity), "dimension": plan.seat_dimension,
             "effectiveStartTime": _stamp(hour), "planId": plan.plan_id}  # fmt: skip
    # Imported only by a run with an event to send: at module top httpx cost every cold start ~50 ms.
    import httpx

    async with httpx.AsyncClient(timeout=settings.metering_timeout_seconds, transport=transport) as client:
        result = await _post_event(client, settings, token, event)
    if result not in ("accepted", "duplicate"):
        await _record(state_repo, now, "failed", result, resource=resource)
        return MeteringRun(quantity, [], failed=True, result="failed")
    reported += quantity
    await state_repo.merge(METERING_STATE, {"reportedTotal": reported, "lastReportedHour": _stamp(hour),
                                            "lastQuantity": quantity})  # fmt: skip
    await _record(state_repo, now, result, resource=resource, lastEventHour=_stamp(hour))
    await state_repo.merge(SEAT_STATE, {"lastReportedQuantity": reported})
    return MeteringRun(quantity, [_stamp(hour)], result=result)
