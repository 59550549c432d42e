"""Saved replies: short texts agents insert with ``/`` in the console; admins manage them.

Each has a ``title`` (what the picker shows), an optional ``shortcut`` (one word, typed after ``/``
to find it) and the ``text`` put into the composer. Stored in the ``agentdesk`` table (partition
``reply``); every change is audited (``reply:created``, ``reply:changed``, ``reply:deleted``).
"""

from __future__ import annotations

import secrets
from typing import Any

from shared.clock import iso, utcnow
from shared.control import audit
from shared.errors import Problem
from shared.storage.agentdesk import REPLY, AgentDeskRepository
from shared.storage.errors import ConcurrentUpdate

MAX_REPLIES = 500
MAX_TITLE, MAX_SHORTCUT, MAX_TEXT = 100, 30, 4000
FIELDS = ("title", "shortcut", "text")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["RowKey"],
        "title": row.get("title", ""),
        "shortcut": row.get("shortcut") or None,
        "text": row.get("text", ""),
        "createdAt": row.get("createdAt", ""),
        "updatedAt": row.get("updatedAt", ""),
    }


def _not_found(reply_id: str) -> Problem:
    return Problem(404, f"No saved reply {reply_id[:40]}.", kind="reply-not-found")


def _shortcut_taken(shortcut: str) -> Problem:
    return Problem(
        409, f"The shortcut /{shortcut} is used by another saved reply.", kind="shortcut-taken",
        errors=[{"field": "shortcut", "message": "is used by another saved reply"}],
    )  # fmt: skip


async def list_replies() -> dict[str, Any]:
    """Every saved reply, by title."""
    rows = await AgentDeskRepository().partition(REPLY, limit=MAX_REPLIES)
    replies = sorted((_public(row) for row in rows), key=lambda r: (str(r["title"]).lower(), r["id"]))
    return {"replies": replies}


async def create_reply(fields: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Store a new saved reply (409 when its shortcut is taken or the list is full)."""
    repo = AgentDeskRepository()
    existing = await repo.partition(REPLY, limit=MAX_REPLIES)
    if len(existing) >= MAX_REPLIES:
        raise Problem(409, f"At most {MAX_REPLIES} saved replies; delete one first.", kind="too-many-replies")
    shortcut = fields.get("shortcut") or ""
    if shortcut and any((row.get("shortcut") or "").lower() == shortcut.lower() for row in existing):
        raise _shortcut_taken(shortcut)
    now = iso(utcnow())
    entity = {
        "PartitionKey": REPLY, "RowKey": secrets.token_hex(8), "title": fields["title"], "shortcut": shortcut,
        "text": fields["text"], "createdAt": now, "updatedAt": now, "createdBy": actor,
    }  # fmt: skip
    await repo.insert(entity)
    await audit.record("reply:created", actor=actor, replyId=entity["RowKey"], title=fields["title"])
    return _public(entity)


async def update_reply(reply_id: str, changes: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Change a saved reply's title, shortcut (``""`` removes it) or text (merge semantics)."""
    repo = AgentDeskRepository()
    row = await repo.get(REPLY, reply_id)
    if row is None:
        raise _not_found(reply_id)
    shortcut = changes.get("shortcut")
    if shortcut:
        others = await repo.partition(REPLY, limit=MAX_REPLIES)
        if any(o["RowKey"] != reply_id and (o.get("shortcut") or "").lower() == shortcut.lower() for o in others):
            raise _shortcut_taken(shortcut)
    etag = row.pop("etag")
    row.update({k: v for k, v in changes.items() if k in FIELDS}, updatedAt=iso(utcnow()))
    try:
        await repo.replace(row, etag)
    except ConcurrentUpdate as exc:
        raise Problem(409, "Someone changed this saved reply just now; load it again.", kind="reply-changed") from exc
    await audit.record("reply:changed", actor=actor, replyId=reply_id, fields=sorted(changes))
    return _public(row)


async def delete_reply(reply_id: str, *, actor: str) -> None:
    """Delete a saved reply (404 when there is none)."""
    if not await AgentDeskRepository().delete(REPLY, reply_id):
        raise _not_found(reply_id)
    await audit.record("reply:deleted", actor=actor, replyId=reply_id)
