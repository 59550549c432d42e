"""Where the search index lives: segment blobs and a manifest in the ``search`` container, the
not-yet-compacted messages in the ``pending`` partition of the ``searchindex`` table, and a
per-worker disk cache of segment files (immutable, so a cached copy never goes stale).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.clock import iso
from shared.conversations.models import Message
from shared.search.query import clean_text
from shared.search.segment import Doc, SegmentReader
from shared.storage import get_blob_service, tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call
from shared.storage.values import safe_key

log = logging.getLogger(__name__)

CONTAINER = "search"
MANIFEST = "manifest.json"
LOCK_BLOB = "compaction.lock"
PENDING = "pending"
MANIFEST_TTL_SECONDS = 2.0
PENDING_READ_LIMIT = 20_000

_container_ready = False
_manifest_cache: tuple[float, Manifest] | None = None
_readers: dict[str, SegmentReader] = {}
_download_locks: dict[str, asyncio.Lock] = {}


@dataclass
class SegmentInfo:
    """One segment blob as the manifest lists it."""

    name: str
    docs: int
    bytes: int = 0
    created_at: str = ""


@dataclass
class Manifest:
    """The live segments (oldest first) and segments retired by merges, awaiting deletion."""

    segments: list[SegmentInfo] = field(default_factory=list)
    retired: list[dict[str, Any]] = field(default_factory=list)
    etag: str = ""

    def to_json(self) -> bytes:
        """The stored form."""
        return json.dumps({"segments": [asdict(s) for s in self.segments], "retired": self.retired}).encode()

    @classmethod
    def from_json(cls, data: bytes, etag: str) -> Manifest:
        """Read the stored form."""
        body = json.loads(data or b"{}")
        return cls([SegmentInfo(**s) for s in body.get("segments", [])], list(body.get("retired", [])), etag)


def doc_key(created_at: str, session_id: str, seq: int) -> str:
    """The sort key of a message (and its pending RowKey): time, then session, then sequence."""
    return safe_key(f"{created_at}|{session_id}|{seq:010d}")


def to_doc(message: Message) -> Doc:
    """A message as the index keeps it."""
    created = iso(message.created_at)
    return Doc(
        doc_key(created, message.session_id, message.seq),
        message.session_id,
        message.seq,
        message.message_id,
        message.sender,
        created,
        clean_text(message.text),
    )


def cache_dir() -> Path:
    """The worker's segment cache (``SEARCH_CACHE_DIR`` or the temp directory)."""
    folder = Path(os.environ.get("SEARCH_CACHE_DIR") or Path(tempfile.gettempdir()) / "supportdesk-search")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def new_segment_name() -> str:
    """A unique, time-ordered blob name for a new segment."""
    return f"segments/{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}.db"


def local_path(name: str) -> Path:
    """Where a segment blob is cached on this worker."""
    return cache_dir() / name.replace("/", "_")


def container() -> Any:
    """The ``search`` container's client."""
    return get_blob_service().get_container_client(CONTAINER)


async def ensure_container() -> None:
    """Create the ``search`` container once per worker (idempotent)."""
    global _container_ready
    if _container_ready:
        return
    from azure.core.exceptions import ResourceExistsError

    try:
        await storage_call(container().create_container())
    except ResourceExistsError:
        pass
    _container_ready = True


async def read_manifest() -> Manifest:
    """The manifest as stored now (an empty one, etag "", when there is none yet)."""
    from azure.core.exceptions import ResourceNotFoundError

    await ensure_container()
    try:
        stream = await storage_call(container().get_blob_client(MANIFEST).download_blob())
        data = await storage_call(stream.readall())
    except ResourceNotFoundError:
        return Manifest()
    return Manifest.from_json(data, stream.properties.etag)


async def cached_manifest() -> Manifest:
    """The manifest, re-read at most every MANIFEST_TTL_SECONDS per worker."""
    global _manifest_cache
    now = time.monotonic()
    if _manifest_cache is not None and now - _manifest_cache[0] < MANIFEST_TTL_SECONDS:
        return _manifest_cache[1]
    manifest = await read_manifest()
    _manifest_cache = (now, manifest)
    _forget_readers({s.name for s in manifest.segments})
    return manifest


async def update_manifest(change: Callable[[Manifest], None]) -> Manifest:
    """Apply ``change`` to the manifest and write it with If-Match (retried when someone else wrote)."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

    global _manifest_cache
    for _ in range(10):
        manifest = await read_manifest()
        change(manifest)
        blob = container().get_blob_client(MANIFEST)
        try:
            if manifest.etag:
                await storage_call(
                    blob.upload_blob(
                        manifest.to_json(),
                        overwrite=True,
                        etag=manifest.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                )
            else:
                await storage_call(blob.upload_blob(manifest.to_json(), overwrite=False))
        except (ResourceModifiedError, ResourceExistsError):
            continue
        _manifest_cache = None
        return manifest
    raise RuntimeError("the search manifest kept changing")


async def upload_segment(path: Path, name: str) -> None:
    """Upload a built segment and keep it in this worker's cache under its blob name."""
    with path.open("rb") as data:
        await storage_call(container().get_blob_client(name).upload_blob(data, overwrite=False, max_concurrency=4))
    os.replace(path, local_path(name))


async def delete_segment(name: str) -> None:
    """Delete a retired segment blob (already gone is fine)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        await storage_call(container().get_blob_client(name).delete_blob())
    except ResourceNotFoundError:
        pass
    local_path(name).unlink(missing_ok=True)


async def segment_file(name: str) -> Path:
    """The local copy of a segment, downloaded on first use."""
    path = local_path(name)
    if path.exists():
        return path
    lock = _download_locks.setdefault(name, asyncio.Lock())
    async with lock:
        if path.exists():
            return path
        partial = path.with_suffix(f".{uuid.uuid4().hex[:8]}.part")
        stream = await storage_call(container().get_blob_client(name).download_blob(max_concurrency=4))
        with partial.open("wb") as out:
            await storage_call(stream.readinto(out))
        os.replace(partial, path)  # atomic: readers never see half a file
        log.info("cached search segment %s (%d bytes)", name, path.stat().st_size)
    return path


async def segment_reader(name: str) -> SegmentReader:
    """A cached read-only connection to a segment."""
    reader = _readers.get(name)
    if reader is None:
        path = await segment_file(name)
        reader = _readers.setdefault(name, SegmentReader(path))
    return reader


def _forget_readers(live: set[str]) -> None:
    for name in [n for n in _readers if n not in live]:
        _readers.pop(name).close()


async def add_pending(messages: list[Message]) -> None:
    """Write messages to the pending partition, 100 per entity-group transaction."""
    from azure.data.tables import UpdateMode

    client = table_client(tables.SEARCH)
    docs = [to_doc(message) for message in messages]
    if len(docs) <= 3:
        # A chat turn's few messages: plain upserts at once cost less than building a batch body.
        await asyncio.gather(
            *(storage_call(client.upsert_entity(_pending_entity(doc), mode=UpdateMode.REPLACE)) for doc in docs)
        )
        return
    for start in range(0, len(docs), 100):
        operations: list[Any] = [
            ("upsert", _pending_entity(doc), {"mode": UpdateMode.REPLACE}) for doc in docs[start : start + 100]
        ]
        # Upserts, so a retried chat turn re-indexes the same rows instead of failing.
        await storage_call(client.submit_transaction(operations))


def _pending_entity(doc: Doc) -> dict[str, Any]:
    return {
        "PartitionKey": PENDING,
        "RowKey": doc.key,
        "sessionId": doc.session_id,
        "seq": doc.seq,
        "messageId": doc.message_id,
        "sender": doc.sender,
        "createdAt": doc.created_at,
        "text": doc.text,
    }


async def pending_docs(limit: int = PENDING_READ_LIMIT) -> list[Doc]:
    """Messages not yet in a segment (oldest first)."""
    query = table_client(tables.SEARCH).query_entities("PartitionKey eq @pk", parameters={"pk": PENDING})
    rows = await collect(query, limit=limit)
    if len(rows) >= limit:
        log.warning("search has %d+ pending messages; is compaction running?", limit)
    return [
        Doc(r["RowKey"], r["sessionId"], int(r["seq"]), r["messageId"], r["sender"], r["createdAt"], r["text"])
        for r in rows
    ]


async def delete_pending(keys: list[str]) -> None:
    """Remove compacted rows from the pending partition, 100 per transaction."""
    client = table_client(tables.SEARCH)
    jobs: list[Awaitable[Any]] = []
    for start in range(0, len(keys), 100):
        operations = [("delete", {"PartitionKey": PENDING, "RowKey": key}) for key in keys[start : start + 100]]
        jobs.append(storage_call(client.submit_transaction(operations)))
    for start in range(0, len(jobs), 8):
        await asyncio.gather(*jobs[start : start + 8])
