"""Audit events about a session that are not commits of its state machine (an away email, a close's
resolution, a learning note's draft): recorded in the session's own events, after its latest commit,
and in the day's log, so its timeline and ``/api/audit?sessionId=`` show them."""

from __future__ import annotations

from typing import Any

from shared.clock import utcnow
from shared.storage.audit import AuditEntry, AuditRepository
from shared.storage.chats import ChatRepository
from shared.web.http import correlation_id

# Numbered after any commit's own events ("-1", "-2" ...) and in time order among themselves.
_BASE = 90_000_000_000_000


async def note_event(
    session_id: str, event: str, actor: str, details: dict[str, Any], *, version: int | None = None
) -> None:
    """Record ``event`` about ``session_id`` (``version``: its latest commit, read when not given)."""
    now = utcnow()
    if version is None:
        session = await ChatRepository().get(session_id)
        version = session.version if session else 0
    millis = int(now.timestamp() * 1000)
    entry = AuditEntry(
        event, actor, now, correlation_id=correlation_id(), details=details,
        entry_id=f"{session_id}.{event}.{millis}",
    )  # fmt: skip
    await AuditRepository().record_session(session_id, version, [entry], first_index=_BASE + millis % 10**13)
