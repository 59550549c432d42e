"""The one path every change to a session takes: load, decide, commit with the outbox, push, enqueue.

1. Load the header (and the Idempotency-Key's replay record) in one query, while marking the
   session as about to commit (so a lost notice is found by the repair timer).
2. ``decide`` (pure) what the command does.
3. Commit in one entity-group transaction, guarded by the header's ETag: the header, its new
   messages, the replay record (inserted, never upserted) and one outbox row per consequence.
   Someone else wrote first: load again and decide again.
4. Push the change to the visitor and agents right away (latency matters), answer, and put a
   notice on the outbox queue beside the answer; the queue trigger applies the rows (and pushes
   again only if this push failed). A notice that never makes it is re-sent by the repair timer.
Nothing derived (orderings, rollups, search, audit, seats, content gaps) is written inside the request.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.clock import utcnow
from shared.conversations import idempotency
from shared.conversations.machine import Decision, Outcome, decide
from shared.conversations.models import Session, seen_differently
from shared.errors import Problem
from shared.projections.consequences import consequences
from shared.realtime import events
from shared.storage.chats import MAX_SESSION_ID, ChatRepository, Loaded, Replay
from shared.storage.errors import ConcurrentUpdate
from shared.storage.outbox import OutboxNotice, OutboxQueue, PendingMarkers
from shared.storage.values import is_safe_key
from shared.web.http import correlation_id
from shared.web.idempotency import RequestKey, check_fingerprint

log = logging.getLogger(__name__)

_ATTEMPTS = 8
Respond = Callable[[Decision], tuple[int, dict[str, Any]]]
Decide = Callable[[Session, Any, datetime], Decision]


@dataclass
class Result:
    """The answer to a command: HTTP status and body, and the decision (None when replayed)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    session: Session | None = None  # as it stands after the command (as loaded, for a replay)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def asks_bot(self) -> bool:
        """True when nothing was committed because the bot must answer first."""
        return self.decision is not None and self.decision.outcome is Outcome.ASK_BOT


def not_found(session_id: str) -> Problem:
    """The 404 for a session that doesn't exist."""
    return Problem(404, f"No session {session_id[:64]!r}.", kind="session-not-found")


async def load_session(session_id: str) -> Session:
    """The session as stored now (for reads), or a 404 problem."""
    session = await ChatRepository().get(session_id)
    if session is None:
        raise not_found(session_id)
    return session


async def load_for_change(session_id: str, request: RequestKey | None) -> Loaded:
    """The header and the key's replay record (one query), with the session marked as about to commit."""
    if not is_safe_key(session_id, MAX_SESSION_ID):  # an id from a URL that can't be a session's
        raise not_found(session_id)
    chats = ChatRepository()
    loaded, _ = await asyncio.gather(
        chats.load(session_id, request.key if request else None), PendingMarkers().mark(session_id)
    )
    return loaded


def refusal_problem(decision: Decision) -> Problem:
    """The problem for a refused decision."""
    assert decision.refusal is not None
    refusal = decision.refusal
    headers = {"Retry-After": str(refusal.extras["retryAfter"])} if "retryAfter" in refusal.extras else {}
    return Problem(refusal.status, refusal.detail, kind=refusal.kind, headers=headers,
                   sessionStatus=decision.before.status, **refusal.extras)  # fmt: skip


async def execute(
    session_id: str,
    command: object,  # a machine ``Command``, or what ``decider`` takes (approval cards)
    *,
    respond: Respond,
    actor: str,
    request: RequestKey | None = None,
    loaded: Loaded | None = None,
    marked: bool = True,
    decider: Decide = decide,
) -> Result:
    """Decide ``command`` on the session and commit it (see the module docstring).

    ``loaded`` is what the caller already read with :func:`load_for_change` (which marks the
    session): the first attempt decides on it (its ETag still guards the commit). With
    ``marked=False`` the session is marked only when there is something to commit (timers that
    look at many sessions and change few). A refused command raises its problem; one that needs
    the bot first returns a result whose ``asks_bot`` is True, with nothing written.
    """
    for _ in range(_ATTEMPTS):
        if loaded is None:
            loaded = await ChatRepository().load(session_id, request.key if request else None)
        now = utcnow()
        if request is not None:
            stored = idempotency.live(loaded.replay, now)
            if stored is not None:
                status, body = idempotency.replayed(stored, request)
                return Result(status, body, session=loaded.session)
        session = loaded.session
        if session is None:
            raise not_found(session_id)
        decision = decider(session, command, now)
        if decision.outcome is Outcome.REFUSED:
            raise refusal_problem(decision)
        if decision.outcome is Outcome.ASK_BOT:
            return Result(0, {}, decision, session)
        status, body = respond(decision)
        if not decision.changed:
            return Result(status, body, decision, session)
        record = idempotency.record(request, status, body, now, loaded.replay) if request else None
        if not marked:
            await PendingMarkers().mark(session_id)
            marked = True
        try:
            await _commit(decision, record, actor, now)
        except ConcurrentUpdate:
            loaded = None  # someone else wrote (or stored this key's answer) first: look again
            continue
        return Result(status, body, decision, decision.after)
    raise Problem(409, "The session is changing too fast; retry.", kind="busy", headers={"Retry-After": "1"})


async def _commit(decision: Decision, record: Replay | None, actor: str, now: datetime) -> None:
    before, after = decision.before, decision.after
    after.version = before.version + 1
    rows = consequences(
        before, after, decision.messages, usage=decision.usage, gap=decision.gap, notes=decision.notes,
        actor=actor, now=now, correlation=correlation_id(),
    )  # fmt: skip
    await ChatRepository().commit(after, decision.messages, record, rows)
    pushed = await _push(decision)
    announce_soon(after.session_id, pushed_upto=after.version if pushed else 0)


async def create_session(session: Session, *, actor: str) -> Session:
    """Store a new session with the outbox rows of its creation."""
    now = utcnow()
    session.version = 1
    rows = consequences(None, session, [], actor=actor, now=now, correlation=correlation_id())
    await asyncio.gather(PendingMarkers().mark(session.session_id), ChatRepository().create(session, rows))
    announce_soon(session.session_id, pushed_upto=session.version)
    return session


async def _push(decision: Decision) -> bool:
    """The first push, from the request; False when it must be retried from the outbox."""
    before, after = decision.before, decision.after
    try:
        ok = True
        if decision.messages:
            ok = await events.push_messages(after, decision.messages)
        if seen_differently(before, after) or card_changed(decision):
            ok = await events.push_session(after) and ok
        if card_changed(decision):
            created, resolved = events.card_payloads(before, after, decision.messages, decision.notes)
            ok = await events.push_cards(created, resolved) and ok
        return ok
    except Exception:
        log.warning("real-time push failed for session %s", after.session_id, exc_info=True)
        return False


def card_changed(decision: Decision) -> bool:
    """True when the decision created or resolved an approval card."""
    before, after = decision.before.card, decision.after.card
    return (before.card_id if before else "") != (after.card_id if after else "")


_announcing: set[asyncio.Task[None]] = set()


def announce_soon(session_id: str, *, pushed_upto: int = 0) -> None:
    """Enqueue the outbox notice without holding up the answer.

    The session was marked before the commit, so a notice lost here (the worker stops first, or
    Storage fails) is enqueued by the repair timer a minute later: the answer needn't wait for it.
    """
    # A context of its own: this work is no longer the request's (nor counted as its Storage calls).
    task = asyncio.create_task(announce(session_id, pushed_upto=pushed_upto), context=contextvars.Context())
    _announcing.add(task)  # a reference, so the task isn't collected before it runs
    task.add_done_callback(_announcing.discard)


async def announce(session_id: str, *, pushed_upto: int = 0) -> None:
    """Put the outbox notice on the queue; if that fails the repair timer enqueues it later."""
    try:
        await OutboxQueue().enqueue(OutboxNotice(session_id, pushed_upto))
    except Exception as exc:
        log.warning(
            "outbox notice for session %s not enqueued (%s); the repair timer will", session_id, type(exc).__name__
        )


# --- one run per Idempotency-Key in this worker ----------------------------------------------------

_running: dict[tuple[str, str], tuple[str, asyncio.Future[Result]]] = {}


async def once(session_id: str, request: RequestKey | None, run: Callable[[], Awaitable[Result]]) -> Result:
    """Run ``run`` once for concurrent requests with the same key: later ones wait for its answer.

    The transaction already guarantees one stored answer across workers; this also saves the
    duplicates an LLM call when they reach the same worker, as a client's retries usually do.
    """
    if request is None:
        return await run()
    slot = (session_id, request.key)
    running = _running.get(slot)
    if running is not None:
        fingerprint, first = running
        result = await asyncio.shield(first)
        check_fingerprint(fingerprint, request)
        return Result(result.status, result.body, session=result.session)
    future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
    future.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no warning
    _running[slot] = (request.fingerprint, future)
    try:
        result = await run()
        future.set_result(result)
        return result
    except asyncio.CancelledError:
        future.cancel()
        raise
    except Exception as exc:
        future.set_exception(exc)
        raise
    finally:
        del _running[slot]
