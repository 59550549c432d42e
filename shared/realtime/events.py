"""Real-time events pushed after a change is stored (hub event names as in seed 001).

A push that fails is logged by the realtime client and never fails the request: the change is
already stored, and clients catch up with ``?after=``.
"""

from __future__ import annotations

from typing import Any

from shared.storage.chats import Message, Session

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
        "lastActivityAt": session.public()["lastActivityAt"],
        "preview": session.preview,
        "messageCount": session.seq,
    }


async def push_messages(session: Session, messages: list[Message], *, to_visitor: bool = True) -> None:
    """Send new messages to the session's visitor and its agent."""
    from shared.realtime.client import get_realtime

    realtime = get_realtime()
    for message in messages:
        payload = message_payload(message)
        if to_visitor:
            await realtime.send_to_user(session.session_id, "ChatMessageReceived", [payload])
        if session.claimed_by:
            await realtime.send_to_user(session.claimed_by, "ChatMessageReceived", [payload])


async def push_session(session: Session) -> None:
    """Tell every agent (and the visitor) that a session's status or owner changed."""
    from shared.realtime.client import get_realtime

    realtime = get_realtime()
    payload = session_payload(session)
    await realtime.send_to_group(AGENTS_GROUP, "SessionUpdated", [payload])
    await realtime.send_to_user(session.session_id, "SessionUpdated", [payload])


async def push_typing(session: Session, *, sender: str, is_typing: bool) -> None:
    """Typing from one side goes to the other."""
    from shared.realtime.client import get_realtime

    realtime = get_realtime()
    payload = {"sessionId": session.session_id, "sender": sender, "isTyping": is_typing}
    if sender == "visitor":
        if session.claimed_by:
            await realtime.send_to_user(session.claimed_by, "TypingIndicator", [payload])
    else:
        await realtime.send_to_user(session.session_id, "TypingIndicator", [payload])
