"""Learning notes as draft Q&A pairs: written when an agent closes a conversation, used once approved.

An agent closing a conversation may note what the bot should have answered. The note becomes a
draft (question: the visitor's question that led to the handoff; answer: the note), one per
session (a retried close makes no second). Drafts are not knowledge sources, so search and the
bot never read them; an admin edits, approves (the draft becomes a ``qa`` source, searchable
within seconds on every worker) or discards them on the dashboard's Knowledge page. Every step
is audited (``knowledge:draft-created``, ``-edited``, ``-approved``, ``-discarded``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from shared.clock import iso, utcnow
from shared.errors import Problem
from shared.knowledge import sources
from shared.storage.drafts import APPROVED, DRAFT, DraftRecord, DraftRepository
from shared.storage.errors import ConcurrentUpdate

MAX_QUESTION = 500
MAX_ANSWER = 4000
STATUSES = (DRAFT, APPROVED)
TITLE_PREFIX = "Learning note: "
_TITLE_CHARS = 120


def draft_id_of(session_id: str) -> str:
    """The id of a session's draft: its creation is idempotent per session."""
    return "s" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:24]


def view(draft: DraftRecord) -> dict[str, Any]:
    """The public form."""
    return {
        "id": draft.id,
        "question": draft.question,
        "answer": draft.answer,
        "status": draft.status,
        "sessionId": draft.session_id or None,
        "resolution": draft.resolution or None,
        "createdBy": draft.created_by or None,
        "createdAt": draft.created_at,
        "updatedAt": draft.updated_at or None,
        "sourceId": draft.source_id or None,
    }


async def _audit(event: str, actor: str, draft: DraftRecord, **details: str) -> None:
    from shared.conversations.noted import note_event

    await note_event(draft.session_id, f"knowledge:draft-{event}", actor, {"draftId": draft.id, **details})


async def create_from_note(session_id: str, question: str, note: str, *, actor: str, resolution: str) -> dict[str, Any]:
    """The session's draft (made now, or by an earlier try of the same close)."""
    repo = DraftRepository()
    now = iso(utcnow())
    draft = DraftRecord(
        id=draft_id_of(session_id), question=question[:MAX_QUESTION] or "(the visitor asked nothing yet)",
        answer=note[:MAX_ANSWER], session_id=session_id, resolution=resolution, created_by=actor, created_at=now,
    )  # fmt: skip
    if await repo.insert(draft):
        await _audit("created", actor, draft, resolution=resolution)
        return view(draft)
    existing = await repo.get(draft.id)
    return view(existing or draft)


def _not_found(draft_id: str) -> Problem:
    return Problem(404, f"No draft {draft_id[:64]!r}.", kind="draft-not-found")


async def _pending(draft_id: str) -> DraftRecord:
    usable = draft_id.isascii() and draft_id.isalnum() and len(draft_id) <= 64  # a key, not a stranger's string
    draft = await DraftRepository().get(draft_id) if usable else None
    if draft is None:
        raise _not_found(draft_id)
    if draft.status != DRAFT:
        raise Problem(
            409, f"This draft was already {draft.status}.", kind="draft-not-pending", draftStatus=draft.status
        )
    return draft


async def list_drafts(status: str, limit: int) -> dict[str, Any]:
    """Drafts of ``status`` (``draft`` by default), oldest first."""
    if status not in STATUSES:
        raise Problem(
            422, f"status: must be one of {', '.join(STATUSES)}", kind="validation-error",
            errors=[{"field": "status", "message": f"must be one of {', '.join(STATUSES)}"}],
        )  # fmt: skip
    return {"drafts": [view(d) for d in await DraftRepository().list(status, limit)]}


async def edit_draft(draft_id: str, changes: Mapping[str, str], *, actor: str) -> dict[str, Any]:
    """Change a pending draft's question and/or answer."""
    draft = await _pending(draft_id)
    draft.question = changes.get("question", draft.question)
    draft.answer = changes.get("answer", draft.answer)
    draft.updated_at = iso(utcnow())
    try:
        await DraftRepository().replace(draft)
    except ConcurrentUpdate:
        raise Problem(409, "The draft changed meanwhile; load it again.", kind="draft-changed") from None
    await _audit("edited", actor, draft, fields=",".join(sorted(changes)))
    return view(draft)


async def approve_draft(draft_id: str, *, actor: str) -> dict[str, Any]:
    """Make a pending draft a Q&A source; of two admins approving at once, one wins and the other gets 409."""
    draft = await _pending(draft_id)
    title = TITLE_PREFIX + " ".join(draft.question.split())[:_TITLE_CHARS]
    source = await sources.add_source("qa", title, pairs=[(draft.question, draft.answer)])
    draft.status, draft.source_id, draft.updated_at = APPROVED, str(source["id"]), iso(utcnow())
    try:
        await DraftRepository().replace(draft)
    except ConcurrentUpdate:
        await sources.delete_source(str(source["id"]))
        raise Problem(409, "The draft changed meanwhile; load it again.", kind="draft-changed") from None
    await _audit("approved", actor, draft, sourceId=draft.source_id)
    return {"draft": view(draft), "source": source}


async def discard_draft(draft_id: str, *, actor: str) -> None:
    """Delete a pending draft."""
    draft = await _pending(draft_id)
    try:
        await DraftRepository().delete(draft)
    except ConcurrentUpdate:
        raise Problem(409, "The draft changed meanwhile; load it again.", kind="draft-changed") from None
    await _audit("discarded", actor, draft)
