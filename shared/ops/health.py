"""The health report: deployment identity, bootstrap, seats, today's tokens, Storage reachability."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from shared.billing.offers import offer_of
from shared.config import Settings, get_settings
from shared.ops.bootstrap import STATUS, ensure_bootstrapped
from shared.storage import StorageUnavailable
from shared.storage.rollups import RollupRepository, Totals
from shared.storage.state import StateRepository

log = logging.getLogger(__name__)

STARTED_AT = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
SEAT_STATE = "seat"
METERING_STATE = "metering"


async def health_report() -> tuple[bool, dict[str, Any]]:
    """(ok, body) for ``GET /api/health``; ok is False when Storage can't be reached."""
    settings = get_settings()
    body: dict[str, Any] = {
        "ok": True,
        "deploymentId": settings.deployment_id,
        "marketplaceSubscriptionId": settings.marketplace_subscription_id,
        "version": settings.app_version,
        "startedAt": STARTED_AT,
        "bootstrap": {},
        "seat": {"activeSessionCount": 0, "lastReportedQuantity": 0},
        "marketplace": {},
        "tokens": Totals().tokens_public(),
    }
    try:
        record = await ensure_bootstrapped()
        body["deploymentId"] = settings.deployment_id or record.deployment_id
        seat, metering = await asyncio.gather(StateRepository().get(SEAT_STATE), StateRepository().get(METERING_STATE))
        body["marketplace"] = marketplace_public(settings, metering)
        body["seat"] = {
            "activeSessionCount": await active_session_count(),
            "lastReportedQuantity": int(seat.get("lastReportedQuantity", 0) or 0),
        }
        today = await RollupRepository().today()
        body["tokens"] = {"date": datetime.now(UTC).date().isoformat(), **today.tokens_public()}
    except StorageUnavailable:
        body["ok"] = False
        body["error"] = "storage-unavailable"
    except Exception:
        log.exception("health check failed")
        body["ok"] = False
        body["error"] = "internal"
    body["bootstrap"] = {"attempted": STATUS.attempted, "result": STATUS.result}
    return body["ok"], body


def marketplace_public(settings: Settings, metering: dict[str, Any]) -> dict[str, Any]:
    """Seat metering as the health report shows it: the offer, the resource usage goes to, the last run.

    Only names and codes: never a token (``lastError`` is a short reason such as ``arm-forbidden``).
    """

    return {
        "offer": offer_of(settings),
        "resource": str(metering.get("resource", "")),
        "lastRun": {
            "at": str(metering.get("lastRunAt", "")),
            "result": str(metering.get("lastResult", "")),
            "error": str(metering.get("lastError", "")),
            "lastEventHour": str(metering.get("lastEventHour", "")),
        },
    }


async def active_session_count() -> int:
    """Sessions currently claimed by an agent (the ones holding a seat busy)."""
    from shared.storage.orderings import SessionIndexRepository

    return await SessionIndexRepository().count_status("claimed")


async def storage_ready() -> bool:
    """True when Storage answers and bootstrap has run."""
    try:
        await ensure_bootstrapped()
        await StateRepository().get(SEAT_STATE)
    except Exception:
        return False
    return True
