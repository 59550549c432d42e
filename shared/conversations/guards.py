"""The cost guard and the kill switch: whether the bot may be called for a session now.

Past a cap the bot hands the visitor to a person instead of calling the LLM; nobody gets an
error for it. The kill switch and the caps come from the runtime configuration
(:mod:`shared.control`, app settings as its defaults), so a change applies on every worker within
seconds. Caps: AI calls and USD per session per day (exact: counted on the session header), AI
calls and USD per deployment per day, USD per month (from the hourly rollups, re-read at most
every few seconds and counted locally in between, so the guard costs no Storage round trip on
most turns). A worker never counts less than it spent itself; what other workers spent reaches it
within seconds (the outbox, then the next re-read), so a burst spread over workers may overshoot a
deployment cap by the calls of those seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from shared.clock import utcnow
from shared.config import Settings
from shared.control.model import CostCaps
from shared.control.store import current
from shared.conversations.models import Session
from shared.conversations.texts import BOT_OFF, DEPLOYMENT_CAP, MONTHLY_CAP, SESSION_CAP
from shared.storage.rollups import RollupRepository

log = logging.getLogger(__name__)

_REFRESH_SECONDS = 5.0
_MONTH_REFRESH_SECONDS = 600.0  # the month's finished days change only by late projections


@dataclass
class _Usage:
    day: str = ""
    calls: int = 0
    cost_micro_usd: int = 0
    read_at: float = 0.0
    month_day: str = ""  # the day the month's earlier days were summed on
    month_before_today: int = 0  # micro-USD of the month's days before today
    month_read_at: float = 0.0


_deployment = _Usage()


def today() -> str:
    """Today's date in UTC, the guard's day."""
    return utcnow().date().isoformat()


def session_calls_today(session: Session) -> int:
    """AI calls this session made today (the counter resets when the day changes)."""
    return session.ai_calls_today if session.ai_calls_day == today() else 0


def session_cost_today(session: Session) -> int:
    """Micro-USD this session's AI calls cost today."""
    return session.cost_today_micro_usd if session.ai_calls_day == today() else 0


async def _refresh_today() -> None:
    day = today()
    if _deployment.day != day or time.monotonic() - _deployment.read_at > _REFRESH_SECONDS:
        totals = await RollupRepository().today()
        counted = _deployment.day == day  # this worker's own count since then, which the rollups may not show yet
        calls, cost = (_deployment.calls, _deployment.cost_micro_usd) if counted else (0, 0)
        _deployment.day, _deployment.read_at = day, time.monotonic()
        _deployment.calls = max(calls, totals.counts["calls"])
        _deployment.cost_micro_usd = max(cost, totals.counts["costMicroUsd"])


async def deployment_calls_today() -> int:
    """AI calls the deployment made today (fresh within a few seconds)."""
    await _refresh_today()
    return _deployment.calls


async def deployment_cost_today() -> int:
    """Micro-USD the deployment's AI calls cost today (fresh within a few seconds)."""
    await _refresh_today()
    return _deployment.cost_micro_usd


async def deployment_cost_this_month() -> int:
    """Micro-USD of AI calls this UTC calendar month (today fresh within seconds, earlier days within minutes)."""
    day = today()
    if _deployment.month_day != day or time.monotonic() - _deployment.month_read_at > _MONTH_REFRESH_SECONDS:
        now = utcnow()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        first = midnight.replace(day=1)
        hours = await RollupRepository().hours(first, midnight) if first < midnight else {}
        _deployment.month_before_today = sum(totals.counts["costMicroUsd"] for totals in hours.values())
        _deployment.month_day, _deployment.month_read_at = day, time.monotonic()
    return _deployment.month_before_today + await deployment_cost_today()


def count_call(cost_micro_usd: int = 0) -> None:
    """Count a call (and what it cost) locally: the rollups show it only once the outbox applied it."""
    _deployment.calls += 1
    _deployment.cost_micro_usd += cost_micro_usd


async def count_call_outside_turn(
    prompt_tokens: int, completion_tokens: int, cost_micro_usd: int, *, failed: bool = False
) -> None:
    """Count an AI call made outside a chat turn (a channel image's description, a question tried on the
    dashboard) where a turn's is counted: this worker's guard at once, and the hour's rollup (``/api/cost``
    and every worker's guard). A failed call counts its cost but not as a call, as a turn's does. The
    call is made and paid for by then, so a Storage failure here is logged, not raised."""
    count_call(cost_micro_usd)
    try:
        await RollupRepository().add(
            utcnow(), calls=0 if failed else 1, promptTokens=prompt_tokens, completionTokens=completion_tokens,
            costMicroUsd=cost_micro_usd,
        )  # fmt: skip
    except Exception:  # bookkeeping must not cost the caller its answer
        log.warning("could not count an AI call in the hourly rollups", exc_info=True)


def _micro(usd: float) -> int:
    return round(usd * 1_000_000)


def _reached(used: int, cap: int | None) -> bool:
    return cap is not None and used >= cap


async def refusal(session: Session, settings: Settings | None = None) -> str | None:
    """Why the bot must not be called for this session now, or None.

    ``settings`` is accepted for callers of the time when the caps were app settings only; the
    runtime configuration (whose defaults are those settings) decides.
    """
    config = await current()
    if not config.botEnabled:
        return BOT_OFF
    caps = config.costCaps
    session_usd = None if caps.perSessionPerDayUsd is None else _micro(caps.perSessionPerDayUsd)
    if _reached(session_calls_today(session), caps.aiCallsPerSessionPerDay) or _reached(
        session_cost_today(session), session_usd
    ):
        return SESSION_CAP
    return await deployment_refusal(caps)


async def deployment_refusal(caps: CostCaps | None = None) -> str | None:
    """Which of the deployment's caps (calls or USD per day, USD per month) is reached, or None.

    Also the guard of AI calls made without a conversation (a question tried on the dashboard).
    """
    if caps is None:
        caps = (await current()).costCaps
    if caps.aiCallsPerDay is not None and await deployment_calls_today() >= caps.aiCallsPerDay:
        return DEPLOYMENT_CAP
    if caps.perDayUsd is not None and await deployment_cost_today() >= _micro(caps.perDayUsd):
        return DEPLOYMENT_CAP
    if caps.perMonthUsd is not None and await deployment_cost_this_month() >= _micro(caps.perMonthUsd):
        return MONTHLY_CAP
    return None
