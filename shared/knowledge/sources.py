"""Knowledge sources: add pasted text or Q&A pairs, list, rename, enable or disable, delete, search.

A source is chunked (:func:`chunk_markdown` / :func:`chunk_qa`) and stored when it is added; it is
small, so this happens in the request and the source is ``ready`` at once. Only ``text`` and
``qa`` sources exist so far; ``url``, ``sitemap`` and file sources are refused as not supported.

Search runs on an in-memory :class:`KnowledgeIndex` per worker, built from the enabled sources'
chunks and cached. Every change writes a new random token to the ``knowledge`` record of the meta
table (a token, not a read-and-increment counter, so two changes racing on different workers can't
write the same value). A worker re-reads the token at most every :data:`VERSION_CHECK_SECONDS`
and rebuilds when it differs, so other workers see a change within seconds; the worker that made
the change also counts it locally and rebuilds before its next search, so it sees it at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.clock import iso, utcnow
from shared.config import get_settings
from shared.errors import Problem
from shared.knowledge.chunking import Chunk, chunk_markdown, chunk_qa
from shared.knowledge.retrieval import KnowledgeIndex
from shared.storage.errors import ConcurrentUpdate
from shared.storage.knowledge import KnowledgeRepository, SourceRecord
from shared.storage.state import StateRepository
from shared.web.idempotency import RequestKey, check_fingerprint

SUPPORTED_TYPES = ("text", "qa")
NOT_YET_SUPPORTED = ("url", "sitemap", "file")
MAX_TITLE_CHARS = 200
MAX_PAIRS = 500
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 10_000
MAX_QUERY_CHARS = 1000
VERSION_RECORD = "knowledge"  # the meta table's record holding the knowledge base's version token
VERSION_CHECK_SECONDS = 2.0
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


def _invalid(name: str, message: str, status: int = 422) -> Problem:
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
        raise _invalid("type", unsupported_type_message(kind))
    title = title.strip()
    source_id = new_source_id()
    if kind == "text":
        if pairs is not None:
            raise _invalid("pairs", "is only for sources of type 'qa'")
        if text is None:
            raise _invalid("text", "is required for a source of type 'text'")
        limit = get_settings().max_body_bytes
        size = len(text.encode("utf-8"))
        if size > limit:
            raise _invalid("text", f"is {size} bytes; the limit is {limit}", status=413)
        chunks = chunk_markdown(text, source_id=source_id)
        if not chunks:
            raise _invalid("text", "has nothing to index")
        digest = content_hash(kind, text.strip())
    else:
        if text is not None:
            raise _invalid("text", "is only for sources of type 'text'")
        if pairs is None:
            raise _invalid("pairs", "is required for a source of type 'qa'")
        if not 1 <= len(pairs) <= MAX_PAIRS:
            raise _invalid("pairs", f"must hold 1 to {MAX_PAIRS} question and answer pairs")
        chunks = chunk_qa(pairs, source_id=source_id)
        if not chunks:
            raise _invalid("pairs", "has no pair with both a question and an answer")
        digest = content_hash(kind, [[" ".join(q.split()), a.strip()] for q, a in pairs])
    now = iso(utcnow())
    record = SourceRecord(id=source_id, type=kind, title=title, created_at=now, last_synced_at=now, content_hash=digest)
    stored = await KnowledgeRepository().create(record, chunks)
    await _changed()
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
            raise _invalid(name, "cannot be null (it can be changed, not removed)")
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
        await _changed()
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
        await _changed()


# --- search ---------------------------------------------------------------------------------------------


@dataclass
class _Cached:
    """This worker's index of the enabled sources' chunks and what it was built from."""

    index: KnowledgeIndex
    titles: dict[str, str] = field(default_factory=dict)
    version: str = ""  # the meta table's token when it was built
    generation: int = -1  # this worker's own changes counted when it was built
    checked: float = 0.0  # time.monotonic() of the last token read that matched


_cached: _Cached | None = None
_generation = 0  # changes made by this worker
_lock: asyncio.Lock | None = None


async def _changed() -> None:
    """After a change: this worker rebuilds before its next search, and others learn it from the token."""
    global _generation
    _generation += 1
    await StateRepository().merge(VERSION_RECORD, {"version": uuid.uuid4().hex})


async def _version() -> str:
    return str((await StateRepository().get(VERSION_RECORD)).get("version", ""))


def _fresh(cached: _Cached | None, now: float) -> bool:
    return cached is not None and cached.generation == _generation and now - cached.checked < VERSION_CHECK_SECONDS


async def _build(version: str, generation: int, checked: float) -> _Cached:
    repo = KnowledgeRepository()
    sources = [source for source in await repo.all() if source.enabled]
    per_source = await asyncio.gather(*(repo.chunks_of(source.id) for source in sources))
    chunks: list[Chunk] = [chunk for chunks in per_source for chunk in chunks]
    index = await asyncio.to_thread(KnowledgeIndex.build, chunks)
    titles = {source.id: source.title for source in sources}
    return _Cached(index, titles, version, generation, checked)


async def _current() -> _Cached:
    """The index to search: the cached one while it is known to be current, else a new one."""
    global _cached, _lock
    if _fresh(_cached, time.monotonic()) and _cached is not None:
        return _cached
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        now = time.monotonic()
        if _fresh(_cached, now) and _cached is not None:
            return _cached
        generation = _generation
        version = await _version()  # read before the sources: a change after this is seen next time
        if _cached is not None and _cached.generation == generation and _cached.version == version:
            _cached.checked = now
            return _cached
        _cached = await _build(version, generation, now)
        return _cached


async def search(query: str, top: int) -> list[dict[str, Any]]:
    """The ``top`` chunks of enabled sources that best match ``query``, best first."""
    if not query.strip():
        raise _invalid("q", "is required: the words to look for")
    if len(query) > MAX_QUERY_CHARS:
        raise _invalid("q", f"must be at most {MAX_QUERY_CHARS} characters")
    query = _UNSTORABLE.sub(" ", query)
    cached = await _current()
    hits = await asyncio.to_thread(cached.index.search, query, top)
    return [
        {
            "sourceId": hit.chunk.source_id,
            "sourceTitle": cached.titles.get(hit.chunk.source_id, ""),
            "chunkId": hit.chunk.id,
            "anchor": hit.chunk.anchor,
            "headingPath": list(hit.chunk.heading_path),
            "text": hit.chunk.text,
            "score": round(hit.score, 6),
        }
        for hit in hits
    ]
