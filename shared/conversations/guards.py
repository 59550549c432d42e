"""The cost guard: caps on AI calls per session and per deployment per day, a kill switch.

Past a cap the bot hands the visitor to a person instead of calling the LLM; nobody gets an
error for it. The deployment-wide count is read from the rollups at most every few seconds and
counted locally in between, so the guard costs no Storage round trip on most turns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.clock import utcnow
from shared.config import Settings
from shared.conversations.models import Session
from shared.conversations.texts import BOT_OFF, DEPLOYMENT_CAP, SESSION_CAP
from shared.storage.rollups import RollupRepository

_REFRESH_SECONDS = 5.0


@dataclass
class _DailyCount:
    day: str = ""
    calls: int = 0
    read_at: float = 0.0


_deployment = _DailyCount()


def today() -> str:
    """Today's date in UTC, the guard's day."""
    return utcnow().date().isoformat()


def session_calls_today(session: Session) -> int:
    """AI calls this session made today (the counter resets when the day changes)."""
    return session.ai_calls_today if session.ai_calls_day == today() else 0


async def deployment_calls_today() -> int:
    """AI calls the deployment made today (fresh within a few seconds)."""
    day = today()
    if _deployment.day != day or time.monotonic() - _deployment.read_at > _REFRESH_SECONDS:
        totals = await RollupRepository().today()
        _deployment.day, _deployment.calls, _deployment.read_at = day, totals.counts["calls"], time.monotonic()
    return _deployment.calls


def count_call() -> None:
    """Count a call locally until the next refresh."""
    _deployment.calls += 1


async def refusal(session: Session, settings: Settings) -> str | None:
    """Why the bot must not call the LLM for this session now, or None."""
    if not settings.bot_enabled:
        return BOT_OFF
    if session_calls_today(session) >= settings.max_ai_calls_per_session_day:
        return SESSION_CAP
    if await deployment_calls_today() >= settings.max_ai_calls_per_day:
        return DEPLOYMENT_CAP
    return None
