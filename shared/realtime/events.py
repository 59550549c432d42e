"""Real-time events pushed after a change is committed (hub events ``ChatMessageReceived``,
``SessionUpdated``, ``TypingIndicator``, and to agents ``ApprovalCardCreated`` and
``ApprovalCardResolved``).

Each push returns whether every send went through; a failed push is retried from the outbox,
and clients also catch up with ``?after=`` (they drop a message whose ``seq`` they already have).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.clock import iso
from shared.conversations.card import context_of
from shared.conversations.models import Message, Session, page_of

if TYPE_CHECKING:
    from shared.conversations.machine import Note

AGENTS_GROUP = "agents"


def message_payload(message: Message) -> dict[str, Any]:
    """``ChatMessageReceived`` arguments."""
    return {"sessionId": message.session_id, "messageId": message.message_id, **message.public()}


def session_payload(session: Session) -> dict[str, Any]:
    """``SessionUpdated`` arguments."""
    return {
        "sessionId": session.session_id,
        "status": session.status,
        "claimedBy": session.claimed_by or None,
        "agentName": session.claimed_by_name or None,
        "lastActivityAt": iso(session.last_activity_at),
        "handoffRequestedAt": iso(session.handoff_requested_at) or None,
        "preview": session.preview,
        "visitorPreview": session.visitor_preview or None,
        "messageCount": session.seq,
        "replyPending": session.card is not None,  # the bot's reply waits for an agent's approval
        "page": page_of(session.page_url, session.page_title),
    }


def card_payloads(
    before: Session | None, after: Session, messages: Sequence[Message], notes: Sequence[Note]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``ApprovalCardCreated`` and ``ApprovalCardResolved`` arguments of a commit (None: no such event).

    Created: the pending card with the conversation around it. Resolved: which card, what became
    of it (``sent``, ``edited``, ``auto-sent``, ``dismissed``, ``rephrased``, ``told``,
    ``superseded``), the message it sent and the card that replaced it.
    """
    old, new = before.card if before else None, after.card
    old_id, new_id = (old.card_id if old else ""), (new.card_id if new else "")
    created = {**new.public(), "context": context_of(after.recent)} if new and new_id != old_id else None
    resolved = None
    if old is not None and old_id != new_id:
        resolution = next(
            (note.event.removeprefix("approval:") for note in notes
             if note.event.startswith("approval:") and note.details.get("cardId") == old_id),
            "superseded",
        )  # fmt: skip
        sent = next((m for m in messages if m.sender == "bot"), None)
        resolved = {
            "id": old_id,
            "sessionId": old.session_id,
            "createdAt": iso(old.created_at),
            "resolution": resolution,
            "message": sent.public() if sent else None,
            "replacedBy": new_id or None,
        }
    return created, resolved


async def push_cards(created: dict[str, Any] | None, resolved: dict[str, Any] | None) -> bool:
    """Tell every agent that a card was resolved and/or created (True when every send went through)."""
    from shared.realtime.client import get_realtime

    realtime = get_realtime()
    if not realtime.enabled:
        return True
    ok = True
    if resolved is not None:
        ok = await realtime.send_to_group(AGENTS_GROUP, "ApprovalCardResolved", [resolved])
    if created is not None:
        ok = await realtime.send_to_group(AGENTS_GROUP, "ApprovalCardCreated", [created]) and ok
    return ok


async def push_messages(session: Session, messages: list[Message], *, to_visitor: bool = True) -> bool:
    """Send new messages to the session's visitor and its agent; True when every send went through."""
    from shared.realtime.client import get_realtime

    realtime = get_realtime()
    if not realtime.enabled:
        return True
    ok = True
    for message in messages:
        payload = message_payload(message)
        if to_visitor:
            ok = await realtime.send_to_user(session.session_id, "ChatMessageReceived", [payload]) and ok
        if session.claimed_by:
            ok = await realtime.send_to_user(session.claimed_by, "ChatMessageReceived", [payload]) and ok
    return ok


async def push_session(session: Session) -> bool:
    """Tell every agent (and the visitor) that a session's status or owner changed."""
    from shared.realtime.client import get_realtime

    realtime = get_realtime()
    if not realtime.enabled:
        return True
    payload = session_payload(session)
    to_agents = await realtime.send_to_group(AGENTS_GROUP, "SessionUpdated", [payload])
    to_visitor = await realtime.send_to_user(session.session_id, "SessionUpdated", [payload])
    return to_agents and to_visitor


async def push_typing(session: Session, *, sender: str, is_typing: bool) -> None:
    """Typing from one side goes to the other (best effort: typing is never retried)."""
    from shared.realtime.client import get_realtime

    realtime = get_realtime()
    payload = {"sessionId": session.session_id, "sender": sender, "isTyping": is_typing}
    if sender == "visitor":
        if session.claimed_by:
            await realtime.send_to_user(session.claimed_by, "TypingIndicator", [payload])
    else:
        await realtime.send_to_user(session.session_id, "TypingIndicator", [payload])
