"""One idempotent applier per outbox row kind."""

from __future__ import annotations

from datetime import timedelta

from shared.clock import parse_iso, utcnow
from shared.conversations.models import Message
from shared.realtime import events
from shared.storage.audit import AuditEntry, AuditRepository
from shared.storage.chats import ChatRepository, OutboxRow
from shared.storage.orderings import IndexedSession, SessionIndexRepository
from shared.storage.outbox import OutboxNotice
from shared.storage.rollups import RollupRepository
from shared.storage.seats import SeatRepository

PUSH_RETRY_WINDOW = timedelta(minutes=2)


async def project_orderings(row: OutboxRow, _: OutboxNotice) -> None:
    """Put the session where the commit left it; never behind a newer commit's projection."""
    index = SessionIndexRepository()
    if not await index.project(IndexedSession.from_fields(row.payload)):
        # A newer commit was projected meanwhile, and this run may have written over one of its
        # rows: project the session as stored now, which is at least as new.
        session = await ChatRepository().get(row.session_id)
        if session is not None:
            await index.project(IndexedSession.of(session))


async def add_rollup(row: OutboxRow, _: OutboxNotice) -> None:
    """Add the commit's counters to its hour, once."""
    counters = {str(k): int(v) for k, v in (row.payload.get("counters") or {}).items()}
    await RollupRepository().add_once(str(row.payload["hour"]), f"{row.session_id}-{row.version}", counters)


async def index_search(row: OutboxRow, _: OutboxNotice) -> None:
    """Make the commit's messages searchable (rows keyed by message: writing twice is harmless)."""
    from shared import search

    messages = [
        Message(row.session_id, int(m["seq"]), str(m["sender"]), str(m["text"]),
                created_at=parse_iso(str(m["createdAt"])) or utcnow())
        for m in row.payload.get("messages", [])
    ]  # fmt: skip
    await search.index_messages(messages)


async def record_audit(row: OutboxRow, _: OutboxNotice) -> None:
    """Record the commit's events in the session's audit and the day's, keyed by the commit version."""
    listed = row.payload.get("events")
    if not isinstance(listed, list):  # a row written before events were listed: one status change
        details = {k: v for k, v in row.payload.items() if k not in ("event", "actor", "at")}
        listed = [{**row.payload, "details": details}]
    entries = [
        AuditEntry(
            str(item.get("event", "")),
            str(item.get("actor") or "system"),
            parse_iso(str(item.get("at") or "")) or row.created_at,
            correlation_id=str(item.get("correlationId") or ""),
            details=dict(item.get("details") or {}),
        )
        for item in listed
    ]
    await AuditRepository().record_session(row.session_id, row.version, entries)


async def take_seat(row: OutboxRow, _: OutboxNotice) -> None:
    """The claiming agent holds a seat this billing month (the first claim time is kept)."""
    month, oid, at = str(row.payload["month"]), str(row.payload["oid"]), str(row.payload["at"])
    if await SeatRepository().take_seat(month, oid, at) == at:  # this claim took the seat: audit it (once)
        entry = AuditEntry(
            "seat:taken", f"agent:{oid}", parse_iso(at) or row.created_at, details={"month": month, "agentOid": oid},
            correlation_id=str(row.payload.get("correlationId") or ""), entry_id=f"seat.{month}.{oid}",
        )  # fmt: skip
        await AuditRepository().record(entry)


async def record_gap(row: OutboxRow, _: OutboxNotice) -> None:
    """Note a question the knowledge did not answer (one row per session, question and day: idempotent)."""
    from shared.knowledge.gaps import record_gap as record

    at = parse_iso(str(row.payload.get("at", ""))) or row.created_at
    await record(row.session_id, str(row.payload.get("question", "")), str(row.payload.get("reason", "")), at)


async def write_summary(row: OutboxRow, _: OutboxNotice) -> None:
    """Write the handoff summary for the agents (once per commit version)."""
    from shared.conversations.summary import summarise

    await summarise(row.session_id, row.version, now=row.created_at)


async def push(row: OutboxRow, notice: OutboxNotice) -> None:
    """Push what the request could not (it pushes first itself; this runs only when that failed)."""
    if row.version <= notice.pushed_upto:
        return
    chats = ChatRepository()
    session = await chats.get(row.session_id)
    if session is None:
        return
    first, last = int(row.payload.get("first", 0)), int(row.payload.get("last", 0))
    ok = True
    if first:
        messages = await chats.messages(row.session_id, after=first - 1, upto=last)
        ok = await events.push_messages(session, messages)
    if row.payload.get("session"):
        ok = await events.push_session(session) and ok
    # Retried while it is news; after that clients have caught up with ``?after=`` anyway.
    if not ok and utcnow() - row.created_at < PUSH_RETRY_WINDOW:
        raise RuntimeError("real-time push failed")


async def project_card(row: OutboxRow, notice: OutboxNotice) -> None:
    """An approval card: keep the agents' pending list in step, schedule an ``auto-after`` send, push."""
    from shared.storage.approvals import ApprovalRepository, AutoSendNotice, AutoSendQueue

    approvals = ApprovalRepository()
    created, resolved = row.payload.get("created"), row.payload.get("resolved")
    if isinstance(resolved, dict):
        await approvals.resolve(resolved, by=str(row.payload.get("by") or ""), at=row.created_at)
    if isinstance(created, dict):
        card_id = str(created["id"])
        await approvals.put(created)
        session = await ChatRepository().get(row.session_id)
        if session is None or session.card is None or session.card.card_id != card_id:
            # Resolved meanwhile: its resolution's row may have run before this one wrote the card.
            await approvals.remove(str(created.get("createdAt") or ""), card_id)
        elif session.card.auto_send_at is not None:
            await AutoSendQueue().schedule(AutoSendNotice(card_id), session.card.auto_send_at)
    if row.version > notice.pushed_upto:
        ok = await events.push_cards(
            created if isinstance(created, dict) else None, resolved if isinstance(resolved, dict) else None
        )
        if not ok and utcnow() - row.created_at < PUSH_RETRY_WINDOW:
            raise RuntimeError("real-time push of an approval card failed")
