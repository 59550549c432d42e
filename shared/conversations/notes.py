"""Private notes: what agents write on a conversation for each other, never shown to the visitor.

Notes are kept in the ``agentdesk`` table (partition ``n.<session id>``), not among the session's
messages, so the widget's history, its real-time events and the channels' replies (which all read
messages) cannot carry them. Agents read them beside the transcript; each is audited
(``note:added``, with its length, not its text) and pushed to the agents' console
(``AgentNoteAdded``).
"""

from __future__ import annotations

import secrets
from typing import Any

from shared.clock import iso, utcnow
from shared.conversations.commit import load_session
from shared.conversations.noted import note_event
from shared.identity.teams import Agent
from shared.realtime.client import get_realtime
from shared.realtime.events import AGENTS_GROUP
from shared.storage.agentdesk import AgentDeskRepository, note_partition

MAX_NOTE = 4000
MAX_NOTES = 500  # per conversation


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row.get("noteId", row["RowKey"]),
        "sessionId": row.get("sessionId", ""),
        "text": row.get("text", ""),
        "agentOid": row.get("agentOid", ""),
        "agentName": row.get("agentName", ""),
        "createdAt": row.get("createdAt", ""),
    }


async def add_note(agent: Agent, session_id: str, text: str) -> dict[str, Any]:
    """Store a note on an existing conversation (404 for an unknown one) and tell the other agents."""
    session = await load_session(session_id)  # 404 when there is no such conversation
    now = utcnow()
    note_id = secrets.token_hex(6)
    entity = {
        "PartitionKey": note_partition(session_id),
        "RowKey": f"{int(now.timestamp() * 1000):013d}-{note_id}",
        "noteId": note_id, "sessionId": session_id, "text": text, "agentOid": agent.oid,
        "agentName": agent.name or agent.upn, "createdAt": iso(now),
    }  # fmt: skip
    await AgentDeskRepository().insert(entity)
    note = _public(entity)
    await note_event(session_id, "note:added", f"agent:{agent.oid}", {"noteId": note_id, "chars": len(text)},
                     version=session.version)  # fmt: skip
    try:
        realtime = get_realtime()
        if realtime.enabled:
            await realtime.send_to_group(AGENTS_GROUP, "AgentNoteAdded", [note])
    except Exception:  # the console also reads notes with the transcript: a lost push is caught up there
        pass
    return note


async def list_notes(session_id: str) -> dict[str, Any]:
    """A conversation's notes, oldest first."""
    rows = await AgentDeskRepository().partition(note_partition(session_id), limit=MAX_NOTES)
    return {"sessionId": session_id, "notes": [_public(row) for row in rows]}
