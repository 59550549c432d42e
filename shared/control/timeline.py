"""A session's timeline: its messages and its audit events in one list, oldest first.

Both come from the session's own partitions (messages from ``chats``, events from ``audit``), so a
timeline never scans anything else. Events of a commit follow the messages of the same commit.
A page holds ``limit`` items; the cursor carries the last message's seq and the last event's row.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.clock import iso
from shared.conversations.commit import load_session
from shared.storage.audit import AuditRepository
from shared.storage.chats import ChatRepository
from shared.web.http import decode_cursor, encode_cursor, invalid_query

_ORDERING = "timeline"


def _position(cursor: str | None, session_id: str) -> tuple[int, str]:
    """(last message seq, last event row) from a cursor of this session's timeline."""
    key = decode_cursor(cursor, f"{_ORDERING}:{session_id}")
    if key is None:
        return 0, ""
    seq, _, row = key.partition("|")
    if not seq.isdigit():
        raise invalid_query("cursor", "is not a cursor from a previous page of this timeline")
    return int(seq), row


async def timeline(session_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """The session's messages and events, oldest first; 404 for a session that doesn't exist."""
    after_seq, after_row = _position(cursor, session_id)
    session = await load_session(session_id)
    messages, events = await asyncio.gather(
        ChatRepository().messages(session_id, after=after_seq, limit=limit + 1),
        AuditRepository().events(session_id),
    )
    items: list[tuple[tuple[str, int, str], dict[str, Any], int, str]] = []
    for message in messages:
        body = {"type": "message", "at": iso(message.created_at), **message.transcript()}
        items.append(((body["at"], 0, f"{message.seq:010d}"), body, message.seq, ""))
    for event in events:
        if event.row > after_row:
            body = {"type": "event", **event.public()}
            items.append(((body["at"], 1, event.row), body, 0, event.row))
    items.sort(key=lambda item: item[0])
    page = items[:limit]
    last_seq = max([after_seq, *(seq for _, _, seq, _ in page)])
    last_row = max([after_row, *(row for _, _, _, row in page)])
    more = len(items) > limit
    return {
        "sessionId": session_id,
        "session": session.public(),
        "items": [body for _, body, _, _ in page],
        "nextCursor": encode_cursor(f"{last_seq}|{last_row}", f"{_ORDERING}:{session_id}") if more else None,
    }
