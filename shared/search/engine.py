"""Answering a search: every segment plus the pending rows, merged newest first, paged by cursor."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.search import store
from shared.search.query import build_match, render_snippet
from shared.search.segment import Doc, Hit, SegmentReader, memory_segment, query
from shared.web.http import decode_cursor, encode_cursor

MAX_LIMIT = 100


def _query_pending(docs: list[Doc], match: str, before: str | None, limit: int) -> list[Hit]:
    if not docs:
        return []
    conn = memory_segment(docs)
    try:
        return query(conn, match, before, limit)
    finally:
        conn.close()


def _query_all(
    readers: list[SegmentReader], pending: list[Doc], match: str, before: str | None, limit: int
) -> list[Hit]:
    """Top ``limit`` hits over every source (runs in a worker thread: SQLite calls block)."""
    hits = _query_pending(pending, match, before, limit)
    for reader in readers:
        hits += reader.query(match, before, limit)
    # A message can sit in a segment and in pending for a moment after compaction: keep one.
    unique = {hit.key: hit for hit in hits}
    return sorted(unique.values(), key=lambda hit: hit.key, reverse=True)[:limit]


def _public(hit: Hit) -> dict[str, Any]:
    return {
        "sessionId": hit.session_id,
        "seq": hit.seq,
        "messageId": hit.message_id,
        "sender": hit.sender,
        "snippet": render_snippet(hit.snippet),
        "createdAt": hit.created_at,
    }


async def search(q: str | None, *, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
    """Messages matching ``q`` (words AND-ed, "phrases", case/accent-insensitive), newest first.

    Snippets are HTML-escaped with matches wrapped in ``<mark>``; ``nextCursor`` continues.
    """
    match = build_match(q)
    before = decode_cursor(cursor)
    limit = max(1, min(limit, MAX_LIMIT))
    if match is None:  # only symbols or emoji: nothing the index could match
        return {"query": q, "results": [], "nextCursor": None}
    # Pending first, then the manifest: a row compacted in between is then in the newer manifest.
    pending = await store.pending_docs()
    manifest = await store.cached_manifest()
    readers = list(await asyncio.gather(*(store.segment_reader(s.name) for s in manifest.segments)))
    hits = await asyncio.to_thread(_query_all, readers, pending, match, before, limit + 1)
    more = len(hits) > limit
    hits = hits[:limit]
    return {
        "query": q,
        "results": [_public(hit) for hit in hits],
        "nextCursor": encode_cursor(hits[-1].key) if more and hits else None,
    }
