"""Real-time events pushed after a change is committed (hub events ``ChatMessageReceived``,
``SessionUpdated``, ``TypingIndicator``).

Each push returns whether every send went through; a failed push is retried from the outbox,
and clients also catch up with ``?after=`` (they drop a message whose ``seq`` they already have).
"""

from __future__ import annotations

from typing import Any

from shared.clock import iso
from shared.conversations.models import Message, Session

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
        "messageCount": session.seq,
    }


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
