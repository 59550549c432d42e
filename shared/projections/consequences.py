"""What follows from a commit, as outbox rows (pure): orderings, rollup, search, audit, seat, push, gap.

Each row is written in the commit's own transaction and applied later by the outbox queue
trigger (see :mod:`shared.projections.apply`), so none of this work happens inside the request
and none of it is lost when a worker dies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.analytics.facts import event_of
from shared.clock import iso
from shared.conversations.machine import Gap, Note
from shared.conversations.models import HUMAN_REQUESTED, Message, Session, seen_differently
from shared.realtime.events import card_payloads
from shared.storage.chats import OutboxRow
from shared.storage.orderings import IndexedSession
from shared.storage.rollups import hour_key
from shared.storage.seats import billing_month
from shared.webhooks.events import commit_events

ORDERINGS, ROLLUP, SEARCH, AUDIT, SEAT, PUSH = "orderings", "rollup", "search", "audit", "seat", "push"
GAP = "gap"  # a question the knowledge did not answer (shown on the dashboard as a content gap)
HANDOFF = "handoff"  # the conversation moved to a person: write the handoff summary for the agents
WEBHOOK = "webhook"  # the commit's events for the webhook endpoints subscribed to them
CARD = "card"  # an approval card created or resolved: the agents' pending list, the auto-send, the push
ANALYTICS = "analytics"  # the conversation's facts and its start day's counters (the Analytics view)
KINDS = (ORDERINGS, ROLLUP, SEARCH, AUDIT, SEAT, PUSH, GAP, HANDOFF, CARD, WEBHOOK, ANALYTICS)
GAP_QUESTION_CHARS = 500
CHANNEL = "channel"  # bot and agent messages of a channel session: send them out through its channel


def search_fields(message: Message) -> dict[str, Any]:
    """What the search index keeps of a message."""
    return {"seq": message.seq, "sender": message.sender, "text": message.text, "createdAt": iso(message.created_at)}


def consequences(
    before: Session | None,
    after: Session,
    messages: list[Message],
    *,
    usage: dict[str, int] | None = None,
    gap: Gap | None = None,
    notes: Sequence[Note] = (),
    actor: str,
    now: datetime,
    correlation: str = "",
) -> list[OutboxRow]:
    """The outbox rows of a commit that took ``before`` (None: a new session) to ``after``.

    The audit row lists the commit's events: its status change, then the decision's ``notes``, each
    with the ``actor``, the time and the request's ``correlation`` id.
    """

    def row(kind: str, **payload: Any) -> OutboxRow:
        return OutboxRow(after.session_id, after.version, kind, payload, created_at=now)

    rows = [row(ORDERINGS, **IndexedSession.of(after).fields())]  # carried, so applying it reads nothing
    counters = {name: value for name, value in (usage or {}).items() if value}
    if messages:
        counters["messages"] = len(messages)
    if before is None:
        counters["sessions"] = 1
    elif after.status == HUMAN_REQUESTED and before.status != HUMAN_REQUESTED:
        counters["handoffs"] = 1
    if counters:
        rows.append(row(ROLLUP, hour=hour_key(now), counters=counters))
    if messages:
        rows.append(row(SEARCH, messages=[search_fields(message) for message in messages]))
    if after.channel != "web" and any(message.sender != "visitor" for message in messages):
        rows.append(row(CHANNEL, first=messages[0].seq, last=messages[-1].seq))
    status_changed = before is None or before.status != after.status
    events = [(note.event, dict(note.details)) for note in notes]
    if status_changed:
        events.insert(0, (f"status:{after.status}", {"previous": before.status if before else ""}))
    if events:
        stamp = {"actor": actor, "at": iso(now), "correlationId": correlation}
        rows.append(row(AUDIT, events=[{"event": event, **stamp, "details": details} for event, details in events]))
    if after.claimed_by and (before is None or before.claimed_by != after.claimed_by):
        rows.append(row(SEAT, month=billing_month(now), oid=after.claimed_by, at=iso(now), correlationId=correlation))
    session_changed = status_changed or (before is not None and seen_differently(before, after))
    if messages or (before is not None and session_changed):
        first, last = (messages[0].seq, messages[-1].seq) if messages else (0, 0)
        rows.append(row(PUSH, first=first, last=last, session=session_changed))
    if before is not None and after.status == HUMAN_REQUESTED and before.status != HUMAN_REQUESTED:
        rows.append(row(HANDOFF, at=iso(now)))
    if hooks := commit_events(before, after, messages, notes, now):
        rows.append(row(WEBHOOK, events=hooks))
    created, resolved = card_payloads(before, after, messages, notes)
    if created or resolved:
        rows.append(row(CARD, created=created, resolved=resolved, by=actor))
    if gap is not None:
        rows.append(row(GAP, question=gap.question[:GAP_QUESTION_CHARS], reason=gap.reason, at=iso(now)))
    cost = (usage or {}).get("costMicroUsd", 0)
    if (counted := event_of(before, after, messages, cost_micro_usd=cost, now=now)) is not None:
        rows.append(row(ANALYTICS, **counted.payload()))
    return rows
