"""Knowledge sources: add, list, rename, enable or disable, schedule, sync and delete them.

Pasted ``text`` and ``qa`` sources are small: they are chunked (:func:`chunk_markdown` /
:func:`chunk_qa`) and stored in the request, ``ready`` at once. ``url``, ``sitemap`` and ``file``
sources are checked in the request (the URL's addresses, the file's size and type; the file is
stored as a blob) and answered ``queued``; the ingestion job (:mod:`shared.knowledge.ingestion`,
run by a queue trigger) fetches, reads and indexes them.

Every change goes to the knowledge backend (:func:`shared.knowledge.backend.get_backend`) after it is
stored: the local index sees it at once on this worker and within seconds on the others; Azure AI
Search gets the source sent in the same request.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from shared.clock import iso, utcnow
from shared.config import get_settings
from shared.errors import Problem
from shared.knowledge.backend import REQUEST_EMBED_SECONDS, get_backend
from shared.knowledge.chunking import chunk_markdown, chunk_qa
from shared.storage.errors import ConcurrentUpdate
from shared.storage.knowledge import KnowledgeFiles, KnowledgeRepository, PageRecord, SourceRecord
from shared.web.idempotency import RequestKey, check_fingerprint

SUPPORTED_TYPES = ("text", "qa", "url", "sitemap")  # as JSON; a file comes as multipart/form-data
FETCHED_TYPES = ("url", "sitemap")
FILE_KINDS = "PDF, DOCX, HTML, Markdown or plain text"
MAX_FILE_NAME_CHARS = 200
MAX_TITLE_CHARS = 200
MAX_PAIRS = 500
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 10_000
_ID = re.compile(r"[0-9a-f]{24}")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: Storage and UTF-8 refuse them
_UPDATE_ATTEMPTS = 5


def unsupported_type_message(kind: str) -> str:
    """Why a source type is refused, naming the types that work."""
    if kind == "file":
        return "a file is sent as multipart/form-data with the file in a 'file' field (and an optional 'title')"
    return (
        f"type {kind!r} is not supported; supported types are: {', '.join(SUPPORTED_TYPES)} "
        "(and files, sent as multipart/form-data)"
    )


def storable(value: str) -> str:
    """``value`` if it can be stored and indexed; a ValueError (a 422 in a body model) if not."""
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


def is_storable(value: str) -> bool:
    """Whether ``value`` can be stored and indexed as it is."""
    return not _UNSTORABLE.search(value)


def file_name_of(raw: str) -> str:
    """The name of an uploaded file without any folder a browser sent along, safe to store and show."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return _UNSTORABLE.sub("", "".join(ch for ch in name if ch.isprintable()))[:MAX_FILE_NAME_CHARS]


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
    """A source as the API shows it (one shape for every type: what doesn't apply is null)."""
    try:
        last_sync = json.loads(source.last_sync) if source.last_sync else None
    except ValueError:
        last_sync = None
    return {
        "id": source.id,
        "type": source.type,
        "title": source.title,
        "url": source.url or None,
        "status": source.status,
        "error": source.error or None,
        "warnings": list(source.warnings),
        "chunks": source.chunks,
        "pages": source.pages if source.type in FETCHED_TYPES or source.type == "file" else None,
        "enabled": source.enabled,
        "refresh": source.refresh,
        "maxPages": source.max_pages if source.type in FETCHED_TYPES else None,
        "file": {"name": source.file_name, "kind": source.file_kind, "bytes": source.file_bytes}
        if source.type == "file"
        else None,
        "createdAt": source.created_at,
        "lastSyncedAt": source.last_synced_at or None,
        "lastSync": last_sync,
        "contentHash": source.content_hash or None,
        "indexError": source.index_error or None,
    }


def page_view(page: PageRecord) -> dict[str, Any]:
    """A page of a url or sitemap source as the API shows it."""
    return {
        "url": page.url or None,
        "title": page.title,
        "status": page.status,
        "error": page.error or None,
        "chunks": page.chunks,
        "contentHash": page.content_hash or None,
        "syncedAt": page.synced_at or None,
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
    request: RequestKey | None, create: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """``create()`` once per Idempotency-Key: a retry gets the source the first request made.

    The key's record is written after the source; when two requests with one key race, the one
    that records second deletes its own source and answers with the first one's.
    """
    if request is None:
        return await create()
    repo = KnowledgeRepository()
    stored = await repo.replay(request.key)
    if stored is None:
        created = await create()
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
    if kind not in ("text", "qa"):
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
    backend = get_backend()
    record = SourceRecord(id=source_id, type=kind, title=title, created_at=now, last_synced_at=now, content_hash=digest,
                          index_error=backend.mark)  # fmt: skip
    stored = await KnowledgeRepository().create(record, chunks)
    note = await backend.publish(source_id, embed_seconds=REQUEST_EMBED_SECONDS)
    return view(replace(stored, index_error=note))


async def add_site_source(
    kind: str, url: str, *, title: str | None = None, max_pages: int | None = None, refresh: str = "manual"
) -> dict[str, Any]:
    """Queue a new ``url`` (crawl from the page) or ``sitemap`` source; its view. The URL must be public."""
    from shared.knowledge import ingestion
    from shared.knowledge.fetching import check_public_url, normalize_url

    settings = get_settings()
    limit = settings.knowledge.max_pages
    if max_pages is not None and not 1 <= max_pages <= limit:
        raise invalid("maxPages", f"must be 1 to {limit} (KNOWLEDGE_MAX_PAGES)")
    refused = await check_public_url(url, allow_private=settings.allow_private_urls)
    if refused:
        raise invalid("url", refused)
    url = normalize_url(url)
    now = iso(utcnow())
    record = SourceRecord(
        id=new_source_id(),
        type=kind,
        title=(title or "").strip() or url,
        status="queued",
        created_at=now,
        url=url,
        max_pages=max_pages or settings.knowledge.default_pages,
        refresh=refresh,
        auto_title=not (title or "").strip(),
        job=ingestion.new_job_id(),
        queued_at=now,
    )
    stored = await KnowledgeRepository().create(record, [])
    await ingestion.enqueue(stored)
    return view(stored)


def check_file(data: bytes, file_name: str, media_type: str) -> str:
    """The kind of an uploaded file; a problem naming ``file`` when it is too large or of a kind not read."""
    from shared.knowledge.extraction import detect_kind, unsupported_message

    limit = get_settings().knowledge.max_file_bytes
    if len(data) > limit:
        raise invalid("file", f"is {len(data)} bytes; the limit is {limit} (KNOWLEDGE_MAX_FILE_BYTES)", status=413)
    if not data:
        raise invalid("file", "is empty")
    kind = detect_kind(data, file_name, media_type)
    if kind is None:
        raise Problem(
            415,
            f"The file {file_name or ''} can't be read: {unsupported_message(file_name, media_type)}.".replace(
                "  ", " "
            ),
            errors=[{"field": "file", "message": unsupported_message(file_name, media_type)}],
        )
    return kind


async def add_file_source(data: bytes, file_name: str, media_type: str, *, title: str | None = None) -> dict[str, Any]:
    """Store an uploaded file and queue it for indexing; its view."""
    from shared.knowledge import ingestion

    kind = check_file(data, file_name, media_type)
    now = iso(utcnow())
    shown_name = file_name.strip() or f"upload.{kind}"
    record = SourceRecord(
        id=new_source_id(),
        type="file",
        title=(title or "").strip() or shown_name,
        status="queued",
        created_at=now,
        auto_title=not (title or "").strip(),
        file_name=shown_name,
        file_kind=kind,
        file_bytes=len(data),
        content_hash="sha256:" + hashlib.sha256(data).hexdigest(),
        job=ingestion.new_job_id(),
        queued_at=now,
    )
    files = KnowledgeFiles()
    await files.save(record.id, data, file_name=shown_name, content_type=media_type)
    try:
        stored = await KnowledgeRepository().create(record, [])
    except BaseException:
        await files.delete(record.id)  # no source row: leave no file behind either
        raise
    await ingestion.enqueue(stored)
    return view(stored)


async def sync_source(source_id: str, upload: tuple[bytes, str, str] | None = None) -> dict[str, Any]:
    """Fetch a url or sitemap source again, or re-read a file source (``upload``: a new version of it).

    A job already queued or running is not started twice: the answer is the source as it is.
    """
    from shared.knowledge import ingestion

    repo = KnowledgeRepository()
    for _ in range(_UPDATE_ATTEMPTS):
        record = await repo.get(source_id) if is_source_id(source_id) else None
        if record is None:
            raise _not_found(source_id)
        if record.type not in ingestion.INDEXED_TYPES:
            raise Problem(
                409,
                f"A {record.type} source is stored as it was given; there is nothing to fetch again. "
                "To change it, add the new version and delete this one.",
                kind="not-syncable",
            )
        if upload is not None:
            if record.type != "file":
                raise invalid("file", "can only replace the file of a file source")
            data, file_name, media_type = upload
            kind = check_file(data, file_name, media_type)
            if ingestion.is_running(record):
                raise Problem(409, "The source is being indexed; upload the new version when it is done.")
            await KnowledgeFiles().save(record.id, data, file_name=file_name, content_type=media_type)
            record = replace(record, file_name=file_name.strip() or record.file_name, file_kind=kind,
                             file_bytes=len(data))  # fmt: skip
        elif ingestion.is_running(record):
            return view(record)
        try:
            stored = await ingestion.start_sync(replace(record, error=""), repo)
        except ConcurrentUpdate:
            continue
        return view(stored)
    raise Problem(409, "The source kept changing while the sync was started; try again.", kind="conflict")


async def list_pages(source_id: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of a source's pages (in key order) and the key the next page continues after."""
    repo = KnowledgeRepository()
    if not is_source_id(source_id) or await repo.get(source_id) is None:
        raise _not_found(source_id)
    pages, more = await repo.page_list(source_id, after, limit)
    return [page_view(page) for page in pages], (pages[-1].key if more and pages else None)


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
    """Apply a merge patch of ``title``, ``enabled`` and/or ``refresh`` (already type-checked); the new view."""
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
        refresh = str(changes.get("refresh", record.refresh))
        if refresh != "manual" and record.type not in FETCHED_TYPES:
            raise invalid("refresh", f"can only be 'manual' for a {record.type} source: only url and sitemap "
                                     "sources are fetched again on a schedule")  # fmt: skip
        updated = replace(
            record,
            title=str(changes["title"]).strip() if "title" in changes else record.title,
            auto_title=False if "title" in changes else record.auto_title,
            enabled=bool(changes["enabled"]) if "enabled" in changes else record.enabled,
            refresh=refresh,
        )
        if updated == record:
            return view(record)
        try:
            stored = await repo.update(updated)
        except ConcurrentUpdate:
            continue  # changed or deleted meanwhile: read again (a deletion is then a 404)
        note = await get_backend().publish(source_id, change="settings")
        return view(replace(stored, index_error=note))
    raise Problem(409, "The source kept changing while this change was applied; try again.", kind="conflict")


async def delete_source(source_id: str) -> None:
    """Delete a source and its chunks; 404 when there is none."""
    repo = KnowledgeRepository()
    if not is_source_id(source_id) or await repo.get(source_id) is None:
        raise _not_found(source_id)
    await get_backend().remove(source_id, lambda: repo.delete(source_id))
