"""Search for agents: the transcript index (:mod:`shared.search`), kept to the agent's conversations.

An agent finds what they may work on: conversations they own or owned (claimed by them, also once
closed) and those waiting for a person. Hits are read from the full-text index newest first and
filtered by each session's header (one read per distinct session), so a page may hold fewer hits
than ``limit``; ``nextCursor`` continues the index's order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.conversations.models import HUMAN_REQUESTED
from shared.identity.teams import Agent
from shared.search import search
from shared.storage.chats import ChatRepository

_SCAN = 100  # index hits looked at per page


async def search_mine(agent: Agent, q: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """Hits in the agent's own and waiting conversations, grouped one row per conversation."""
    found = await search(q, limit=_SCAN, cursor=cursor)
    ids = list(dict.fromkeys(hit["sessionId"] for hit in found["results"]))
    repo = ChatRepository()
    headers = await asyncio.gather(*(repo.get(session_id) for session_id in ids))
    allowed = {
        s.session_id: s for s in headers
        if s is not None and (s.claimed_by == agent.oid or s.status == HUMAN_REQUESTED)
    }  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    for hit in found["results"]:
        session = allowed.get(hit["sessionId"])
        if session is None or hit["sessionId"] in rows or len(rows) >= limit:
            continue
        rows[hit["sessionId"]] = {**session.public(), "snippet": hit["snippet"], "seq": hit["seq"],
                                  "sender": hit["sender"], "matchedAt": hit["createdAt"]}  # fmt: skip
    return {"query": q, "sessions": list(rows.values()), "nextCursor": found["nextCursor"]}
