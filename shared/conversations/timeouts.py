"""Listener timeouts: unanswered requests for a person go back to the bot, idle sessions close.

Run every minute by a timer. Each change is decided by the state machine on the session as
stored and committed under its ETag, so two instances firing together change each session once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.clock import utcnow
from shared.config import get_settings
from shared.conversations import hours
from shared.conversations.commit import execute
from shared.conversations.machine import Command, Decision, IdleExpired, WaitExpired
from shared.conversations.models import CLAIMED, HUMAN_REQUESTED, OPEN
from shared.storage.orderings import SessionIndexRepository

log = logging.getLogger(__name__)
_BATCH = 200
_ACTOR = "timer"


def _respond(decision: Decision) -> tuple[int, dict[str, object]]:
    return 200, {"sessionId": decision.after.session_id, "status": decision.after.status}


async def _apply(session_id: str, command: Command) -> bool:
    """Decide and commit one timeout; True when the session changed (failures are logged)."""
    try:
        # Most sessions a timer looks at don't change: mark one only when there is a commit to make.
        result = await execute(session_id, command, respond=_respond, actor=_ACTOR, marked=False)
    except Exception:
        log.warning("listener timeout failed for session %s", session_id, exc_info=True)
        return False
    return result.decision is not None and result.decision.changed


async def return_unclaimed_to_bot() -> int:
    """Sessions waiting for a person longer than the configured wait get the bot back."""
    wait = timedelta(minutes=get_settings().human_wait_minutes)
    team_in, opening = await hours.wait_floor()
    if not team_in:  # outside office hours requests wait for the team (the visitor was told when it is back)
        return 0
    ids = await SessionIndexRepository().ids_with_status(HUMAN_REQUESTED, limit=_BATCH)
    return sum([await _apply(session_id, WaitExpired(wait, since=opening)) for session_id in ids])


async def close_idle() -> int:
    """Sessions with no activity for the configured time are closed."""
    idle = timedelta(minutes=get_settings().idle_close_minutes)
    cutoff = utcnow() - idle
    index = SessionIndexRepository()
    changed = 0
    for status in (OPEN, HUMAN_REQUESTED, CLAIMED):
        rows, _ = await index.by_activity(status=status, claimed_by=None, limit=_BATCH, after=None, idle_since=cutoff)
        for row in rows:
            changed += await _apply(row["sessionId"], IdleExpired(idle))
    return changed
