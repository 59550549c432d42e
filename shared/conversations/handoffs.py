"""What agents see of a handoff, and closing with a resolution and a learning note.

The agents' queue, a claim and a transcript carry a ``handoff`` block read from the session's
handoff record: the bot's summary (what the visitor wants, what was tried, the facts they gave),
the email address a visitor left while the team was away, and how long the visitor has waited.
A claim made before the outbox wrote the summary gets the extractive one computed on the spot.
Closing may record ``resolution`` (``resolved`` or ``unresolved``) and a ``note`` of what the bot
should have answered, which becomes a draft Q&A (:mod:`shared.knowledge.drafts`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from shared.clock import iso, parse_iso, utcnow
from shared.conversations import agent as agents
from shared.conversations.models import CLAIMED, HUMAN_REQUESTED
from shared.conversations.noted import note_event
from shared.conversations.summary import handoff_question, summary_now
from shared.identity.teams import Agent
from shared.storage.chats import ChatRepository
from shared.storage.handoffs import HandoffRecord, HandoffRepository
from shared.web.idempotency import RequestKey

RESOLUTIONS = ("resolved", "unresolved")


def _seconds(since: str | None, until: datetime) -> int | None:
    start = parse_iso(since or "")
    return max(0, int((until - start).total_seconds())) if start else None


def block(record: HandoffRecord | None, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``handoff`` block of a session for agents (pure)."""
    record = record or HandoffRecord("")
    return {
        "summary": summary if summary is not None else (record.summary or None),
        "question": record.question or None,
        "email": record.email or None,
        "emailAt": record.email_at or None,
        "resolution": record.resolution or None,
        "note": record.note or None,
    }


async def queue(agent: Agent, **query: Any) -> dict[str, Any]:
    """The agents' queue with each waiting or claimed session's handoff block and waiting time."""
    body = await agents.list_sessions(agent, **query)
    rows = body["sessions"]
    wanted = [row for row in rows if row.get("handoffRequestedAt") or row.get("status") in (HUMAN_REQUESTED, CLAIMED)]
    repo = HandoffRepository()
    records = await asyncio.gather(*(repo.get(row["sessionId"]) for row in wanted))
    now = utcnow()
    for row, record in zip(wanted, records, strict=True):
        row["handoff"] = block(record)
        if row.get("status") == HUMAN_REQUESTED:
            row["waitingSeconds"] = _seconds(row.get("handoffRequestedAt"), now)
    return body


async def claim(agent: Agent, session_id: str, request: RequestKey | None = None) -> dict[str, Any]:
    """Claim, answered with the handoff summary and how long the visitor waited."""
    body = await agents.claim(agent, session_id, request)
    record = await HandoffRepository().get(session_id)
    summary = record.summary if record and record.summary else await summary_now(session_id)
    claimed_at = parse_iso(str(body.get("claimedAt") or "")) or utcnow()
    return {
        **body,
        "handoff": block(record, summary),
        "waitedSeconds": _seconds(body.get("handoffRequestedAt"), claimed_at),
    }


async def transcript(session_id: str, after: int) -> dict[str, Any]:
    """A transcript with the session's handoff block."""
    body, record = await asyncio.gather(agents.transcript(session_id, after), HandoffRepository().get(session_id))
    return {**body, "handoff": block(record)}


async def close(
    agent: Agent, session_id: str, request: RequestKey | None = None, *, resolution: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Close (owning agent only); then record the resolution and turn the note into a draft Q&A.

    What follows the close is idempotent (the record is merged, the audit entry and the draft are
    keyed by the session), so a retry of the same request completes whatever a failure left out.
    """
    body = await agents.close(agent, session_id, request)
    if resolution is None and not note:
        return body
    repo = HandoffRepository()
    record = await repo.get(session_id)
    question = record.question if record and record.question else ""
    if note and not question:
        question = handoff_question(await ChatRepository().messages(session_id, after=0))
    actor = f"agent:{agent.oid}"
    fields: dict[str, Any] = {"closedBy": actor, "closedAt": str(body.get("closedAt") or iso(utcnow()))}
    if resolution:
        fields["resolution"] = resolution
    if note:
        fields["note"], fields["question"] = note, question
    await repo.merge(session_id, **fields)
    details = {"resolution": resolution or "", "note": "yes" if note else "no"}
    await note_event(session_id, "session:resolution", actor, details)
    result = {**body, "resolution": resolution, "note": note or None}
    if note:
        from shared.knowledge.drafts import create_from_note

        result["draft"] = await create_from_note(session_id, question, note, actor=actor, resolution=resolution or "")
    return result
