"""Knowledge sources: add pasted text or Q&A pairs, list, rename, enable or disable, delete, search.

A source is chunked (:func:`chunk_markdown` / :func:`chunk_qa`) and stored when it is added; it is
small, so this happens in the request and the source is ``ready`` at once. Only ``text`` and
``qa`` sources exist so far; ``url``, ``sitemap`` and file sources are refused as not supported.

Every change calls :func:`shared.knowledge.searching.changed`, so searches see it
(at once on this worker, within seconds on the others).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from shared.clock import iso, utcnow
from shared.config import get_settings
from shared.errors import Problem
from shared.knowledge.chunking import chunk_markdown, chunk_qa
from shared.knowledge.searching import changed
from shared.storage.errors import ConcurrentUpdate
from shared.storage.knowledge import KnowledgeRepository, SourceRecord
from shared.web.idempotency import RequestKey, check_fingerprint

SUPPORTED_TYPES = ("text", "qa")
NOT_YET_SUPPORTED = ("url", "sitemap", "file")
MAX_TITLE_CHARS = 200
MAX_PAIRS = 500
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 10_000
_ID = re.compile(r"[0-9a-f]{24}")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: Storage and UTF-8 refuse them
_UPDATE_ATTEMPTS = 5


def unsupported_type_message(kind: str) -> str:
    """Why a source type is refused, naming the types that work."""
    planned = f" ({', '.join(NOT_YET_SUPPORTED)} sources are not available yet)" if kind in NOT_YET_SUPPORTED else ""
    return f"type {kind!r} is not supported{planned}; supported types are: {', '.join(SUPPORTED_TYPES)}"


def storable(value: str) -> str:
    """``value`` if it can be stored and indexed; a ValueError (a 422 in a body model) if not."""
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


def not_blank(value: str) -> str:
    """``value`` if it holds more than whitespace; a ValueError if not."""
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    return value


def is_source_id(value: str) -> bool:
    """Whether ``value`` has the shape of a source id (anything else is a 404 without a Storage call)."""
    return bool(_ID.fullmatch(value))


def new_source_id() -> str:
    """A new source id: milliseconds since the epoch then randomness, in hex, so ids sort by creation."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(6)}"


def content_hash(kind: str, content: Any) -> str:
    """A hash of a source's content (not its title), to recognise identical content later."""
    canonical = json.dumps({"type": kind, "content": content}, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def view(source: SourceRecord) -> dict[str, Any]:
    """A source as the API shows it."""
    return {
        "id": source.id,
        "type": source.type,
        "title": source.title,
        "status": source.status,
        "error": source.error or None,
        "chunks": source.chunks,
        "enabled": source.enabled,
        "createdAt": source.created_at,
        "lastSyncedAt": source.last_synced_at or None,
        "contentHash": source.content_hash,
    }


def invalid(name: str, message: str, status: int = 422) -> Problem:
    return Problem(
        status,
        f"Invalid fields: {name}." if status == 422 else f"The field {name} {message}.",
        kind="validation-error" if status == 422 else None,
        errors=[{"field": name, "message": message}],
    )


def _not_found(source_id: str) -> Problem:
    return Problem(404, f"No knowledge source {source_id}.", kind="not-found")


# --- adding sources -------------------------------------------------------------------------------------


async def add_source_once(
    request: RequestKey | None,
    kind: str,
    title: str,
    *,
    text: str | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """:func:`add_source`, once per Idempotency-Key: a retry gets the source the first request made.

    The key's record is written after the source; when two requests with one key race, the one
    that records second deletes its own source and answers with the first one's.
    """
    if request is None:
        return await add_source(kind, title, text=text, pairs=pairs)
    repo = KnowledgeRepository()
    stored = await repo.replay(request.key)
    if stored is None:
        created = await add_source(kind, title, text=text, pairs=pairs)
        if await repo.record_replay(request.key, request.fingerprint, created["id"], iso(utcnow())):
            return created
        await delete_source(created["id"])
        stored = await repo.replay(request.key)
        assert stored is not None  # the winner recorded it
    check_fingerprint(str(stored.get("fingerprint", "")), request)
    return await get_source(str(stored["sourceId"]))


async def add_source(
    kind: str, title: str, *, text: str | None = None, pairs: Sequence[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """Chunk and store a new ``text`` or ``qa`` source; its view. Problems name the field at fault."""
    if kind not in SUPPORTED_TYPES:
        raise invalid("type", unsupported_type_message(kind))
    title = title.strip()
    source_id = new_source_id()
    if kind == "text":
        if pairs is not None:
            raise invalid("pairs", "is only for sources of type 'qa'")
        if text is None:
            raise invalid("text", "is required for a source of type 'text'")
        limit = get_settings().max_body_bytes
        size = len(text.encode("utf-8"))
        if size > limit:
            raise invalid("text", f"is {size} bytes; the limit is {limit}", status=413)
        chunks = chunk_markdown(text, source_id=source_id)
        if not chunks:
            raise invalid("text", "has nothing to index")
        digest = content_hash(kind, text.strip())
    else:
        if text is not None:
            raise invalid("text", "is only for sources of type 'text'")
        if pairs is None:
            raise invalid("pairs", "is required for a source of type 'qa'")
        if not 1 <= len(pairs) <= MAX_PAIRS:
            raise invalid("pairs", f"must hold 1 to {MAX_PAIRS} question and answer pairs")
        chunks = chunk_qa(pairs, source_id=source_id)
        if not chunks:
            raise invalid("pairs", "has no pair with both a question and an answer")
        digest = content_hash(kind, [[" ".join(q.split()), a.strip()] for q, a in pairs])
    now = iso(utcnow())
    record = SourceRecord(id=source_id, type=kind, title=title, created_at=now, last_synced_at=now, content_hash=digest)
    stored = await KnowledgeRepository().create(record, chunks)
    await changed()
    return view(stored)


# --- reading, changing and deleting ---------------------------------------------------------------------


async def list_sources(limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of sources (oldest first) and the id the next page continues after (None at the end)."""
    records, more = await KnowledgeRepository().page(after, limit)
    return [view(record) for record in records], (records[-1].id if more and records else None)


async def get_source(source_id: str) -> dict[str, Any]:
    """One source's view; 404 when there is none."""
    record = await KnowledgeRepository().get(source_id) if is_source_id(source_id) else None
    if record is None:
        raise _not_found(source_id)
    return view(record)


async def update_source(source_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a merge patch of ``title`` and/or ``enabled`` (already type-checked); the new view."""
    for name, value in changes.items():
        if value is None:
            raise invalid(name, "cannot be null (it can be changed, not removed)")
    if not is_source_id(source_id):
        raise _not_found(source_id)
    repo = KnowledgeRepository()
    for _ in range(_UPDATE_ATTEMPTS):
        record = await repo.get(source_id)
        if record is None:
            raise _not_found(source_id)
        updated = replace(
            record,
            title=str(changes["title"]).strip() if "title" in changes else record.title,
            enabled=bool(changes["enabled"]) if "enabled" in changes else record.enabled,
        )
        if updated == record:
            return view(record)
        try:
            stored = await repo.update(updated)
        except ConcurrentUpdate:
            continue  # changed or deleted meanwhile: read again (a deletion is then a 404)
        await changed()
        return view(stored)
    raise Problem(409, "The source kept changing while this change was applied; try again.", kind="conflict")


async def delete_source(source_id: str) -> None:
    """Delete a source and its chunks; 404 when there is none."""
    repo = KnowledgeRepository()
    if not is_source_id(source_id) or await repo.get(source_id) is None:
        raise _not_found(source_id)
    try:
        await repo.delete(source_id)
    finally:
        await changed()
