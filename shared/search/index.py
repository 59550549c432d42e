"""Keeping the search index: pending rows as messages are written, compaction into segments.

Compaction is LSM-style: pending rows become a new segment, merged with the newest segments
while those are no bigger than what has been merged so far (a binary counter), so the number of
segments grows with the log of the message count. One compactor at a time holds a blob lease;
the manifest itself is written with If-Match, so even a lost lease can't drop a segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.conversations.models import Message
from shared.search import store
from shared.search.segment import Doc, build
from shared.storage.errors import storage_call

log = logging.getLogger(__name__)

MAX_SEGMENTS = 12
COMPACT_BATCH = 50_000
RETIRED_GRACE_SECONDS = 600
LEASE_SECONDS = 60


async def index_messages(messages: list[Message]) -> None:
    """Make new messages searchable (pending until the next compaction)."""
    if messages:
        await store.add_pending(messages)


@contextlib.asynccontextmanager
async def _compaction_lease() -> AsyncIterator[bool]:
    """Hold the compaction lease (renewed while held); yields False when another worker has it."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError

    await store.ensure_container()
    blob = store.container().get_blob_client(store.LOCK_BLOB)
    try:
        await storage_call(blob.upload_blob(b"", overwrite=False))
    except ResourceExistsError:
        pass
    try:
        lease = await storage_call(blob.acquire_lease(lease_duration=LEASE_SECONDS))
    except HttpResponseError as exc:
        if exc.status_code == 409:  # leased by another compactor
            yield False
            return
        raise

    async def renew() -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            await lease.renew()

    renewing = asyncio.create_task(renew())
    try:
        yield True
    finally:
        renewing.cancel()
        with contextlib.suppress(Exception):
            await lease.release()


def _plan_merge(segments: list[store.SegmentInfo], incoming: int) -> list[store.SegmentInfo]:
    """The newest segments to merge with ``incoming`` new docs (pure)."""
    merged: list[store.SegmentInfo] = []
    total = incoming
    remaining = list(segments)
    while remaining and (remaining[-1].docs <= total or len(remaining) + 1 > MAX_SEGMENTS):
        segment = remaining.pop()
        merged.append(segment)
        total += segment.docs
    return merged


async def compact() -> dict[str, Any]:
    """Turn pending rows into a segment, merging small segments; a no-op if another worker is at it."""
    async with _compaction_lease() as held:
        if not held:
            return {"compacted": 0, "skipped": "another compaction is running"}
        return await _compact_locked()


async def _compact_locked() -> dict[str, Any]:
    manifest = await store.read_manifest()
    pending = await store.pending_docs(COMPACT_BATCH)
    merge = _plan_merge(manifest.segments, len(pending)) if pending or len(manifest.segments) > MAX_SEGMENTS else []
    if merge == [] and not pending:
        await _delete_retired(manifest)
        return {"compacted": 0, "segments": len(manifest.segments)}
    sources = await asyncio.gather(*(store.segment_file(s.name) for s in merge))
    name = store.new_segment_name()
    info = await _build_and_upload(name, pending, list(sources))
    merged_names = {s.name for s in merge}

    def swap(current: store.Manifest) -> None:
        names = [s.name for s in current.segments]
        if not merged_names <= set(names):
            raise RuntimeError("segments to merge vanished from the manifest")
        # Newest position: merged segments were the newest ones, so order (by age) is kept.
        current.segments = [s for s in current.segments if s.name not in merged_names] + [info]
        now = time.time()
        current.retired += [{"name": n, "at": now} for n in sorted(merged_names)]

    await store.update_manifest(swap)
    # Readers may hold a manifest up to its TTL old: keep the pending rows visible until they re-read.
    await asyncio.sleep(store.MANIFEST_TTL_SECONDS + 1)
    await store.delete_pending([doc.key for doc in pending])
    await _delete_retired(await store.read_manifest())
    log.info("search compaction: %d pending + %d segments -> %s (%d docs)", len(pending), len(merge), name, info.docs)
    return {"compacted": len(pending), "merged": len(merge), "segment": name, "docs": info.docs}


async def _build_and_upload(name: str, docs: Iterable[Doc], sources: list[Path]) -> store.SegmentInfo:
    path = Path(tempfile.gettempdir()) / f"segment-build-{uuid.uuid4().hex}.db"
    try:
        count = await asyncio.to_thread(build, path, docs, sources)
        size = path.stat().st_size
        await store.upload_segment(path, name)
    finally:
        path.unlink(missing_ok=True)
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return store.SegmentInfo(name, count, size, created)


async def _delete_retired(manifest: store.Manifest) -> None:
    """Delete merged-away segment blobs once no reader can still be using them."""
    cutoff = time.time() - RETIRED_GRACE_SECONDS
    expired = [r["name"] for r in manifest.retired if r.get("at", 0) < cutoff]
    if not expired:
        return
    for name in expired:
        await store.delete_segment(name)

    def forget(current: store.Manifest) -> None:
        current.retired = [r for r in current.retired if r["name"] not in expired]

    await store.update_manifest(forget)


async def bulk_index(messages: Iterable[Message]) -> dict[str, Any]:
    """Index many messages straight into one new segment (seeding and re-indexing)."""
    await store.ensure_container()
    name = store.new_segment_name()
    info = await _build_and_upload(name, (store.to_doc(m) for m in messages), [])

    def add(current: store.Manifest) -> None:
        current.segments.append(info)

    await store.update_manifest(add)
    return {"segment": name, "docs": info.docs}
