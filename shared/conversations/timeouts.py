"""Listener timeouts (seed 001): unanswered handoffs go back to the bot, idle sessions close.

Run every minute by a timer. Each change re-checks the session under its ETag, so two instances
firing together change each session once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.config import get_settings
from shared.conversations import commit as sessions
from shared.conversations.commit import CLOSED, HUMAN_REQUESTED, OPEN, Change, Session, Skip
from shared.storage.chats import utcnow
from shared.storage.orderings import SessionIndexRepository

log = logging.getLogger(__name__)

NOBODY_CAME = (
    "Sorry, nobody from our team is free right now. I'm back to help in the meantime, "
    "and you can ask for a person again at any time."
)
IDLE_CLOSED = "This conversation was closed after a period of inactivity. Start a new one any time."
_BATCH = 200


async def return_unclaimed_to_bot() -> int:
    """Sessions waiting for a person longer than the configured wait get the bot back."""
    wait = timedelta(minutes=get_settings().human_wait_minutes)
    changed = 0
    for session_id in await SessionIndexRepository().ids_with_status(HUMAN_REQUESTED, limit=_BATCH):

        def decide(session: Session) -> Change:
            waited_since = session.handoff_requested_at or session.last_activity_at
            if session.status != HUMAN_REQUESTED or utcnow() - waited_since < wait:
                raise Skip()
            sessions.move(session, OPEN)
            return Change([sessions.new_message(session, "bot", NOBODY_CAME)], actor="timer")

        if await _apply_quietly(session_id, decide):
            changed += 1
    return changed


async def close_idle() -> int:
    """Sessions with no activity for the configured time are closed."""
    idle = timedelta(minutes=get_settings().idle_close_minutes)
    cutoff = utcnow() - idle
    index = SessionIndexRepository()
    changed = 0
    for status in (OPEN, HUMAN_REQUESTED, sessions.CLAIMED):
        rows, _ = await index.by_activity(status=status, claimed_by=None, limit=_BATCH, after=None, idle_since=cutoff)
        for row in rows:

            def decide(session: Session) -> Change:
                if session.status == CLOSED or utcnow() - session.last_activity_at < idle:
                    raise Skip()
                sessions.move(session, CLOSED)
                if session.seq == 0:  # a widget opened and never used: close it without a notice
                    return Change(actor="timer")
                return Change([sessions.new_message(session, "system", IDLE_CLOSED)], actor="timer")

            if await _apply_quietly(row["sessionId"], decide):
                changed += 1
    return changed


async def _apply_quietly(session_id: str, decide: object) -> bool:
    try:
        return await sessions.apply(session_id, decide) is not None  # type: ignore[arg-type]
    except Exception:
        log.warning("listener timeout failed for session %s", session_id, exc_info=True)
        return False
