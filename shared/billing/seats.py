"""Seats against the plan's quota: usage, the grace clock, and whether new agents are blocked.

A seat is an agent who claimed at least one session in the current billing month (UTC calendar
month). Past the quota a grace period of the plan's ``gracePeriodDays`` runs; after it, agents
without a seat this month can no longer claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.billing.plans import Plan, get_catalogue
from shared.config import get_settings
from shared.control import audit
from shared.storage.seats import SeatRepository, billing_month
from shared.storage.state import StateRepository

QUOTA_STATE = "quota"


@dataclass
class SeatStatus:
    """The plan and its seat usage at one moment."""

    plan: Plan
    seats_used: int
    exceeded: bool
    days_over_quota: int
    blocked: bool
    over_quota_since: str = ""

    def public(self, upgrade_url: str) -> dict[str, Any]:
        """The ``GET /api/plan`` body."""
        return {
            "planId": self.plan.plan_id,
            "planDisplayName": self.plan.display_name,
            "seatQuota": self.plan.seat_quota,
            "seatsUsed": self.seats_used,
            "exceeded": self.exceeded,
            "daysOverQuota": self.days_over_quota,
            "gracePeriodDays": self.plan.grace_period_days,
            "blocked": self.blocked,
            "upgradeUrl": upgrade_url,
        }


def evaluate(plan: Plan, seats_used: int, over_quota_since: datetime | None, now: datetime) -> SeatStatus:
    """Pure rule: exceeded when seats > quota; blocked once the grace period has fully run."""
    exceeded = seats_used > plan.seat_quota
    days = 0
    if exceeded and over_quota_since is not None:
        days = max(0, (now - over_quota_since).days)
    blocked = exceeded and days >= plan.grace_period_days
    since = over_quota_since.isoformat() if (exceeded and over_quota_since) else ""
    return SeatStatus(plan, seats_used, exceeded, days, blocked, since)


async def seat_status(now: datetime | None = None, *, extra_holder: str = "") -> SeatStatus:
    """Seat usage now, starting or clearing the grace clock as the count crosses the quota.

    ``extra_holder`` counts an agent whose seat row is on its way (a claim just committed).
    """
    now = now or datetime.now(UTC)
    settings = get_settings()
    plan = await get_catalogue().get_plan(settings.plan_id)
    holders = set(await SeatRepository().holders(billing_month(now)))
    seats_used = len(holders | {extra_holder}) if extra_holder else len(holders)
    state_repo = StateRepository()
    state = await state_repo.get(QUOTA_STATE)
    since_text = state.get("overQuotaSince") or ""
    since = datetime.fromisoformat(since_text) if since_text else None
    if seats_used > plan.seat_quota and since is None:
        since = now
        await state_repo.merge(QUOTA_STATE, {"overQuotaSince": now.isoformat()})
        await audit.record("seat:over-quota", actor="system", seatsUsed=seats_used, seatQuota=plan.seat_quota)
    elif seats_used <= plan.seat_quota and since is not None:
        since = None
        await state_repo.merge(QUOTA_STATE, {"overQuotaSince": ""})
        await audit.record("seat:within-quota", actor="system", seatsUsed=seats_used, seatQuota=plan.seat_quota)
    return evaluate(plan, seats_used, since, now)
