"""The session state machine and the one path every change to a session takes.

``open`` (bot) -> ``human_requested`` -> ``claimed`` (one agent) -> ``closed``; a
``human_requested`` session nobody claims goes back to ``open``. Every change is read-modify-write
on the header with its ETag (retried on conflict), so a claim race has exactly one winner; after
it lands, the derived data (orderings, rollups, search index, audit) and real-time pushes follow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from shared import search
from shared.realtime import events
from shared.storage.audit import AuditRepository
from shared.storage.chats import ChatRepository, ConcurrentUpdate, Message, Replay, Session, utcnow
from shared.storage.orderings import IndexedSession, SessionIndexRepository
from shared.storage.rollups import RollupRepository
from shared.web.http import Problem

log = logging.getLogger(__name__)

OPEN, HUMAN_REQUESTED, CLAIMED, CLOSED = "open", "human_requested", "claimed", "closed"
STATUSES = (OPEN, HUMAN_REQUESTED, CLAIMED, CLOSED)
TRANSITIONS: dict[str, set[str]] = {
    OPEN: {HUMAN_REQUESTED, CLAIMED, CLOSED},
    HUMAN_REQUESTED: {OPEN, CLAIMED, CLOSED},
    CLAIMED: {CLOSED},
    CLOSED: set(),
}
_ATTEMPTS = 8


def move(session: Session, to: str) -> None:
    """Change status if the machine allows it; a 409 problem otherwise (pure)."""
    if to == session.status:
        return
    if to not in TRANSITIONS[session.status]:
        raise Problem(
            409,
            f"A {session.status} session can't become {to}.",
            kind="invalid-transition",
            sessionStatus=session.status,
        )
    now = utcnow()
    if to == HUMAN_REQUESTED:
        session.handoff_requested_at = now
    elif to == CLOSED:
        session.closed_at = now
    elif to == OPEN:
        session.handoff_requested_at = None
    session.status = to


def new_message(session: Session, sender: str, text: str, **extra: object) -> Message:
    """The next message of ``session`` (advances its sequence and activity)."""
    session.seq += 1
    session.last_activity_at = utcnow()
    session.preview = text[:200]
    return Message(session_id=session.session_id, seq=session.seq, sender=sender, text=text, **extra)  # type: ignore[arg-type]


class Skip(Exception):
    """Raised by a change function to leave the session as it is (nothing is written)."""


@dataclass
class Change:
    """What a change function decided: new messages, a replay record, and usage to count."""

    messages: list[Message] = field(default_factory=list)
    replay: Replay | None = None
    usage: dict[str, int] = field(default_factory=dict)
    actor: str = "system"


@dataclass
class Outcome:
    """A committed change: the session before and after, and what was added."""

    before: Session
    after: Session
    change: Change


async def load(session_id: str) -> Session:
    """The session, or a 404 problem."""
    session = await ChatRepository().get(session_id)
    if session is None:
        raise Problem(404, f"No session {session_id}.", kind="session-not-found")
    return session


async def apply(
    session_id: str, decide: Callable[[Session], Change], *, loaded: Session | None = None
) -> Outcome | None:
    """Read the session, let ``decide`` change it, commit atomically; retry when someone else wrote.

    ``loaded`` is a copy the caller already read: the first attempt starts from it (its ETag still
    guards the commit), which saves a read on the hot path. Returns None when ``decide`` raised
    :class:`Skip`.
    """
    repo = ChatRepository()
    for attempt in range(_ATTEMPTS):
        session = loaded.copy() if attempt == 0 and loaded is not None else await load(session_id)
        before = session.copy()
        try:
            change = decide(session)
        except Skip:
            return None
        try:
            await repo.commit(session, change.messages, change.replay)
        except ConcurrentUpdate:
            continue
        outcome = Outcome(before, session, change)
        await after_commit(outcome)
        return outcome
    raise Problem(409, "The session is changing too fast; retry.", kind="busy", headers={"Retry-After": "1"})


def indexed(session: Session) -> IndexedSession:
    """The orderings' view of a session."""
    return IndexedSession(
        session_id=session.session_id,
        status=session.status,
        last_activity_at=session.last_activity_at,
        cost_micro_usd=session.cost_micro_usd,
        claimed_by=session.claimed_by,
        message_count=session.seq,
        preview=session.preview,
    )


async def after_commit(outcome: Outcome, *, new_session: bool = False) -> None:
    """Derived data and pushes, concurrently; a failure here is logged, the change stands."""
    before, after, change = outcome.before, outcome.after, outcome.change
    counters = dict(change.usage)
    if change.messages:
        counters["messages"] = counters.get("messages", 0) + len(change.messages)
    if after.status == HUMAN_REQUESTED and before.status != HUMAN_REQUESTED:
        counters["handoffs"] = counters.get("handoffs", 0) + 1
    if new_session:
        counters["sessions"] = 1
    jobs = [SessionIndexRepository().update(None if new_session else indexed(before), indexed(after))]
    if counters:
        jobs.append(RollupRepository().add(utcnow(), **counters))
    if change.messages:
        jobs.append(search.index_messages(change.messages))
    if after.status != before.status or new_session:
        jobs.append(
            AuditRepository().record(
                after.session_id, f"status:{after.status}", actor=change.actor, previous=before.status
            )
        )
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            log.warning("derived update failed for session %s: %r", after.session_id, result)
    await _push(before, after, change)


async def _push(before: Session, after: Session, change: Change) -> None:
    try:
        if change.messages:
            await events.push_messages(after, change.messages)
        if after.status != before.status or after.claimed_by != before.claimed_by:
            await events.push_session(after)
    except Exception:
        log.warning("real-time push failed for session %s", after.session_id, exc_info=True)


async def create(session: Session) -> Session:
    """Store a new session and its derived rows."""
    await ChatRepository().create(session)
    stored = await load(session.session_id)
    await after_commit(Outcome(stored.copy(), stored, Change(actor="visitor")), new_session=True)
    return stored
