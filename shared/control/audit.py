"""The audit log you can read: recording deployment-wide events, listing events with filters, stats.

Session events (status changes, guard refusals, bot failures) are written from the outbox with the
commit that caused them; deployment-wide ones (configuration changes, the kill switch, key
rotation, seats) are written here as they happen. Every entry carries the actor, the time and the
request's correlation id. See :mod:`shared.storage.audit` for the layout.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.clock import iso, utcnow
from shared.storage.audit import AuditEntry, AuditFilter, AuditRepository
from shared.storage.chats import MAX_SESSION_ID
from shared.storage.values import is_safe_key
from shared.web.http import correlation_id, decode_cursor, encode_cursor, invalid_query

log = logging.getLogger(__name__)

# Every event the product records; ``/api/audit?event=`` takes one
# of these names, or ``<category>:*`` for all events of a category.
EVENTS = {
    "status:open": "a conversation started, or went back to the bot",
    "status:human_requested": "a person was asked for (by the visitor, the bot or a guard)",
    "status:claimed": "an agent took the conversation",
    "status:closed": "the conversation ended",
    "guard:bot-off": "the kill switch sent a visitor to a person instead of the bot",
    "guard:session-cap": "a per-conversation daily cap sent a visitor to a person",
    "guard:deployment-cap": "a daily cap of the deployment sent a visitor to a person",
    "guard:monthly-cap": "the monthly cost cap sent a visitor to a person",
    "bot:failed": "the bot could not answer (the LLM failed or timed out)",
    "config:changed": "the runtime configuration changed (before and after in the details)",
    "kill-switch:engaged": "the bot was turned off for every conversation",
    "kill-switch:released": "the bot was turned back on",
    "key:rotated": "the admin key was rotated",
    "seat:taken": "an agent took a seat for the billing month (first claim)",
    "seat:over-quota": "seats went over the plan's quota: the grace period started",
    "seat:within-quota": "seats are within the plan's quota again",
    "approval:drafted": "the bot's reply became an approval card (autonomy approve or auto-after)",
    "approval:sent": "an agent sent an approval card's reply as drafted",
    "approval:edited": "an agent edited an approval card's reply and sent it (before and after in the details)",
    "approval:auto-sent": "an auto-after card nobody handled in time was sent",
    "approval:dismissed": "an approval card was dropped (by an agent, or a person took over)",
    "approval:rephrased": "an agent had the bot draft a card again with an instruction",
    "approval:told": "an agent gave the bot an instruction for the rest of the conversation",
    "approval:superseded": "the visitor wrote again before a card was handled: a new draft replaced it",
}
REFUSAL_PREFIX = "guard:"
ERROR_EVENTS = ("bot:failed",)
STATS_WINDOWS = {"24h": 24, "7d": 168}
MAX_ACTOR = 200
_EVENT = re.compile(r"[a-z][a-z-]{0,40}:(?:[a-z_-]{1,60}|\*)")
_ORDERING = "audit"


def new_entry(event: str, *, actor: str, at: datetime | None = None, **details: Any) -> AuditEntry:
    """A deployment-wide entry for ``event`` now, with this request's correlation id."""
    return AuditEntry(
        event, actor, at or utcnow(), correlation_id=correlation_id(), details=details, entry_id=uuid.uuid4().hex[:16]
    )


async def record(event: str, *, actor: str, **details: Any) -> None:
    """Record a deployment-wide event that just happened (never fails the action it records)."""
    try:
        await AuditRepository().record(new_entry(event, actor=actor, **details))
    except Exception:
        log.error("audit event %s could not be recorded", event, exc_info=True)


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A parsed ``/api/audit`` query."""

    where: AuditFilter
    session_id: str | None
    limit: int
    after: str | None


def _moment(name: str, raw: str) -> datetime:
    """An ISO 8601 date or date-time (UTC unless it says otherwise), or a 422 naming ``name``."""
    text = raw.strip()
    try:
        if len(text) == 10:
            moment = datetime.fromisoformat(text + "T00:00:00")
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid_query(name, "must be an ISO 8601 date or date-time, e.g. 2026-11-23T09:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_query(params: Mapping[str, str], *, limit: int, retention_days: int, now: datetime) -> Query:
    """The filters of ``/api/audit`` (``sessionId``, ``event``, ``actor``, ``from``, ``to``, ``cursor``)."""
    session_id = params.get("sessionId") or None
    if session_id is not None and not is_safe_key(session_id, MAX_SESSION_ID):
        raise invalid_query("sessionId", "is not a session id")
    event = params.get("event") or None
    if event is not None and not _EVENT.fullmatch(event):
        raise invalid_query("event", "must be an event name such as guard:bot-off, or a category such as guard:*")
    actor = params.get("actor") or None
    if actor is not None and (len(actor) > MAX_ACTOR or not actor.isprintable()):
        raise invalid_query("actor", f"must be at most {MAX_ACTOR} printable characters")
    oldest = now - timedelta(days=retention_days)
    start = _moment("from", params["from"]) if params.get("from") else oldest
    end = _moment("to", params["to"]) if params.get("to") else now + timedelta(minutes=1)
    if start >= end:
        raise invalid_query("from", "must be before 'to'")
    if end.year > 9999 or start.year < 1970:
        raise invalid_query("to" if end.year > 9999 else "from", "is out of range")
    start = max(start, oldest)
    where = AuditFilter(
        start=start,
        end=max(end, start + timedelta(milliseconds=1)),
        event=event if event and not event.endswith("*") else None,
        event_prefix=event[:-1] if event and event.endswith("*") else None,
        actor=actor,
    )
    ordering = f"{_ORDERING}:{session_id}" if session_id else _ORDERING
    return Query(where, session_id, limit, decode_cursor(params.get("cursor"), ordering))


def _matches(entry: AuditEntry, where: AuditFilter) -> bool:
    return (
        where.start <= entry.at < where.end
        and (where.event is None or entry.event == where.event)
        and (where.event_prefix is None or entry.event.startswith(where.event_prefix))
        and (where.actor is None or entry.actor == where.actor)
    )


async def list_events(query: Query) -> dict[str, Any]:
    """Events newest first, one page, with ``nextCursor`` when there are more."""
    repo = AuditRepository()
    if query.session_id:
        # One session's events are one small partition: read it, filter and page here.
        entries = [e for e in reversed(await repo.events(query.session_id)) if _matches(e, query.where)]
        if query.after:
            entries = [e for e in entries if e.row < query.after]
        page, more = entries[: query.limit], len(entries) > query.limit
        cursor = encode_cursor(page[-1].row, f"{_ORDERING}:{query.session_id}") if more and page else None
    else:
        page, more = await repo.query(query.where, after=query.after, limit=query.limit)
        cursor = encode_cursor(page[-1].index_key[1], _ORDERING) if more and page else None
    return {"events": [entry.public() for entry in page], "nextCursor": cursor}


async def stats(window: str, now: datetime | None = None) -> dict[str, Any]:
    """Counts by event over the window (whole UTC hours: this one and the 23 or 167 before it)."""
    if window not in STATS_WINDOWS:
        raise invalid_query("window", "must be 24h or 7d")
    now = now or utcnow()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=STATS_WINDOWS[window] - 1)
    counts = await AuditRepository().counts(start, now)
    by_event = dict(sorted(counts.items()))
    refusals = {name: n for name, n in by_event.items() if name.startswith(REFUSAL_PREFIX)}
    errors = {name: n for name, n in by_event.items() if name in ERROR_EVENTS}
    return {
        "window": window,
        "from": iso(start),
        "to": iso(now),
        "total": sum(by_event.values()),
        "byEvent": by_event,
        "refusals": {"total": sum(refusals.values()), "byEvent": refusals},
        "errors": {"total": sum(errors.values()), "byEvent": errors},
    }
