"""The plans catalogue: read from the ISV's service when configured, built in otherwise.

``GET {PLANS_URL}/api/plans/{planId}`` is cached for five minutes; when the catalogue is down the
last good answer is kept, and with none yet the built-in plan stands in.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import AliasChoices, BaseModel, Field, ValidationError

from shared.config import Settings, get_settings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


class Plan(BaseModel):
    """One plan of the catalogue."""

    plan_id: str = Field(validation_alias=AliasChoices("planId", "plan_id", "id"), serialization_alias="planId")
    display_name: str = Field(
        validation_alias=AliasChoices("displayName", "planDisplayName", "name"),
        serialization_alias="displayName",
    )
    seat_quota: int = Field(
        ge=0, validation_alias=AliasChoices("seatQuota", "seat_quota"), serialization_alias="seatQuota"
    )
    grace_period_days: int = Field(
        default=7,
        ge=0,
        validation_alias=AliasChoices("gracePeriodDays", "grace_period_days"),
        serialization_alias="gracePeriodDays",
    )
    monthly_price_usd: float = Field(
        default=0,
        ge=0,
        validation_alias=AliasChoices("monthlyPriceUsd", "monthly_price_usd"),
        serialization_alias="monthlyPriceUsd",
    )
    seat_dimension: str = Field(
        default="seat",
        validation_alias=AliasChoices("seatDimension", "seat_dimension"),
        serialization_alias="seatDimension",
    )
    features: list[str] = Field(default_factory=list)

    def public(self) -> dict[str, object]:
        """The camelCase JSON form."""
        return self.model_dump(by_alias=True)


_BUILTIN = [
    {"planId": "start", "displayName": "Start", "seatQuota": 2, "gracePeriodDays": 7, "monthlyPriceUsd": 49,
     "features": ["AI bot", "Website widget", "2 agent seats"]},
    {"planId": "growth", "displayName": "Growth", "seatQuota": 7, "gracePeriodDays": 7, "monthlyPriceUsd": 199,
     "features": ["AI bot", "Website widget", "7 agent seats", "Transcript search"]},
    {"planId": "professional", "displayName": "Professional", "seatQuota": 20, "gracePeriodDays": 14,
     "monthlyPriceUsd": 499,
     "features": ["AI bot", "Website widget", "20 agent seats", "Transcript search", "AI action approval"]},
]  # fmt: skip
BUILTIN_PLANS: dict[str, Plan] = {plan["planId"]: Plan.model_validate(plan) for plan in _BUILTIN}  # type: ignore[misc]


@dataclass
class _Cached:
    plan: Plan
    fetched_at: float


@dataclass
class _CachedList:
    plans: list[Plan]
    fetched_at: float


@dataclass
class PlanCatalogue:
    """Plan lookups with a TTL cache that keeps the last good value through outages."""

    settings: Settings
    transport: httpx.AsyncBaseTransport | None = None
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _listing: _CachedList | None = None

    async def list_plans(self) -> list[Plan]:
        """Every plan, from the same source as :meth:`get_plan` (cached, last good value on failure)."""
        if not self.settings.plans_url:
            return list(BUILTIN_PLANS.values())
        cached = self._listing
        if cached and time.monotonic() - cached.fetched_at < self.settings.plans_cache_seconds:
            return cached.plans
        import httpx

        try:
            plans = await self._fetch_list()
        except (httpx.HTTPError, ValidationError, ValueError, TypeError, KeyError) as exc:
            log.warning(
                "plans catalogue unavailable (%s); listing %s",
                type(exc).__name__,
                "the last good value" if cached else "the built-in plans",
            )
            return cached.plans if cached else list(BUILTIN_PLANS.values())
        self._listing = _CachedList(plans, time.monotonic())
        for plan in plans:  # one catalogue: what the listing says, get_plan says too
            self._cache[plan.plan_id] = _Cached(plan, time.monotonic())
        return plans

    async def find_plan(self, plan_id: str) -> Plan | None:
        """The catalogue's plan of that id, or None when it has none (unlike :meth:`get_plan`)."""
        return next((plan for plan in await self.list_plans() if plan.plan_id == plan_id.lower()), None)

    async def _fetch_list(self) -> list[Plan]:
        import httpx

        url = f"{self.settings.plans_url.rstrip('/')}/api/plans"
        async with httpx.AsyncClient(timeout=self.settings.plans_timeout_seconds, transport=self.transport) as client:
            response = await client.get(url)
            response.raise_for_status()
            return [Plan.model_validate(plan) for plan in response.json()["plans"]]

    async def get_plan(self, plan_id: str) -> Plan:
        """The plan, from cache, the remote catalogue, the last good value, or the built-in one."""
        if not self.settings.plans_url:
            return builtin_plan(plan_id)
        cached = self._cache.get(plan_id)
        if cached and time.monotonic() - cached.fetched_at < self.settings.plans_cache_seconds:
            return cached.plan
        # Only a remote catalogue needs httpx (~50 ms of cold start), so only its fetch imports it.
        import httpx

        try:
            plan = await self._fetch(plan_id)
        except (httpx.HTTPError, ValidationError, ValueError) as exc:
            log.warning(
                "plans catalogue unavailable (%s); using %s",
                type(exc).__name__,
                "the last good value" if cached else "the built-in plan",
            )
            return cached.plan if cached else builtin_plan(plan_id)
        self._cache[plan_id] = _Cached(plan, time.monotonic())
        return plan

    async def _fetch(self, plan_id: str) -> Plan:
        import httpx

        url = f"{self.settings.plans_url.rstrip('/')}/api/plans/{plan_id}"
        async with httpx.AsyncClient(timeout=self.settings.plans_timeout_seconds, transport=self.transport) as client:
            response = await client.get(url)
            response.raise_for_status()
            return Plan.model_validate(response.json())


def builtin_plan(plan_id: str) -> Plan:
    """The built-in plan of that id (the smallest plan for an unknown id)."""
    return BUILTIN_PLANS.get(plan_id.lower(), BUILTIN_PLANS["start"])


_catalogue: PlanCatalogue | None = None


def get_catalogue() -> PlanCatalogue:
    """The worker's catalogue (one cache per worker)."""
    global _catalogue
    if _catalogue is None:
        _catalogue = PlanCatalogue(get_settings())
    return _catalogue
