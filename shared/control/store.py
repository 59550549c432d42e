"""The runtime configuration as every worker sees it: read through a short cache, changed under an ETag.

Each worker keeps the effective configuration and re-reads the stored record (one query) beside its
requests once its copy is :data:`CHECK_SECONDS` old, and before deciding anything once it is
:data:`MAX_AGE_SECONDS` old, so a change reaches every worker within seconds with no restart and a
busy worker's requests don't wait for the read; the worker that made a change uses it at once.
Changes are JSON merge patches (RFC 7396) applied to the stored overrides under ``If-Match``; each
writes the record, its Idempotency-Key replay and its audit entries in one transaction
(:mod:`shared.storage.runtime_config`), then copies the entries to the audit log. Entries a stopped
writer left behind are copied by the next reader.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shared.clock import iso, parse_iso, utcnow
from shared.config import get_settings
from shared.control import audit
from shared.control.model import (
    InvalidConfig,
    RuntimeConfig,
    check_patch,
    diff,
    leaves,
    matches,
    merge_patch,
    touched,
)
from shared.control.model import validate as validate_config
from shared.control.presets import preset_patch
from shared.control.settings import defaults
from shared.errors import Problem
from shared.storage.audit import AuditEntry, AuditRepository
from shared.storage.errors import ConcurrentUpdate, StorageUnavailable
from shared.storage.runtime_config import RuntimeConfigRepository, StoredConfig
from shared.web.idempotency import RequestKey, check_fingerprint

log = logging.getLogger(__name__)

CHECK_SECONDS = 2.0  # a worker's copy is used as it is for this long, then re-read beside requests
MAX_AGE_SECONDS = 5.0  # a copy older than this (an idle worker's) is re-read before it is used
LEFT_BEHIND = timedelta(seconds=10)  # an audit entry still pending after this was left by a stopped writer
REPLAY_TTL = timedelta(hours=24)
_ATTEMPTS = 5


@dataclass(frozen=True)
class Snapshot:
    """The effective configuration, where each field comes from, and the stored record's version."""

    config: RuntimeConfig
    document: dict[str, Any]
    sources: dict[str, str]
    storage_etag: str = ""
    version: str = ""
    updated_at: str = ""
    updated_by: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        """The strong ETag of ``GET /api/config``: the stored version token (``"defaults"`` before any change)."""
        return f'"{self.version or "defaults"}"'

    def public(self) -> dict[str, Any]:
        """The ``GET /api/config`` body: every field, then where each comes from and the last change."""
        return {
            **self.document,
            "sources": self.sources,
            "updatedAt": self.updated_at or None,
            "updatedBy": self.updated_by or None,
        }


def _sources(document: dict[str, Any], overrides: dict[str, Any], from_settings: set[str]) -> dict[str, str]:
    sources = {}
    for name in leaves(document):
        if touched(overrides, name):
            sources[name] = "stored"
        else:
            sources[name] = "setting" if name in from_settings else "default"
    return sources


def build(stored: StoredConfig) -> Snapshot:
    """The effective configuration of ``stored`` over the app settings.

    Overrides that no longer make a valid configuration with today's app settings (one changed
    since) are dropped field by field, logged, and the defaults used for them.
    """
    default_document, from_settings = defaults(get_settings())
    overrides = dict(stored.overrides)
    while True:
        document = merge_patch(default_document, overrides)
        try:
            config = validate_config(document)
            break
        except InvalidConfig as exc:
            broken = {error["field"].split(".")[0] for error in exc.errors} & overrides.keys()
            if not broken:
                raise
            log.error("stored configuration fields %s are invalid now and ignored: %s", sorted(broken), exc)
            overrides = {name: value for name, value in overrides.items() if name not in broken}
    return Snapshot(
        config,
        config.model_dump(mode="json"),
        _sources(document, overrides, from_settings),
        stored.etag,
        stored.version,
        stored.updated_at,
        stored.updated_by,
        dict(stored.overrides),
    )


# --- this worker's copy ---------------------------------------------------------------------------


@dataclass
class _Cache:
    snapshot: Snapshot | None = None
    checked: float = 0.0
    lock: asyncio.Lock | None = None


_cache = _Cache()
_copying: set[asyncio.Task[None]] = set()


def _keep(snapshot: Snapshot) -> None:
    _cache.snapshot, _cache.checked = snapshot, time.monotonic()


def _young(cached: Snapshot | None, limit: float) -> bool:
    return cached is not None and time.monotonic() - _cache.checked < limit


async def snapshot(*, fresh: bool = False) -> Snapshot:
    """The configuration as stored moments ago (``fresh``: as stored now).

    A copy younger than :data:`CHECK_SECONDS` is used as it is; one younger than
    :data:`MAX_AGE_SECONDS` too, while a re-read starts beside the request (so a busy worker reads
    the record off the request path); an older one (an idle worker) is re-read first. When Storage
    can't be read, the last copy this worker had is used (and logged).
    """
    cached = _cache.snapshot
    if not fresh and _young(cached, CHECK_SECONDS) and cached is not None:
        return cached
    if not fresh and _young(cached, MAX_AGE_SECONDS) and cached is not None:
        _reread_soon()
        return cached
    return await _reread(fresh=fresh)


async def _reread(*, fresh: bool) -> Snapshot:
    if _cache.lock is None:
        _cache.lock = asyncio.Lock()
    async with _cache.lock:
        cached = _cache.snapshot
        if not fresh and _young(cached, CHECK_SECONDS) and cached is not None:
            return cached  # another request read it meanwhile
        try:
            stored = await RuntimeConfigRepository().read()
        except StorageUnavailable:
            if cached is None:
                raise
            log.warning("configuration not re-read (storage unavailable); using this worker's copy")
            return cached
        current = cached if cached is not None and cached.storage_etag == stored.etag and stored.etag else None
        result = current or build(stored)
        _keep(result)
        _copy_left_behind(stored)
        return result


_rereading: set[asyncio.Task[Snapshot]] = set()


def _reread_soon() -> None:
    """Re-read the record beside the request (one at a time), in a context of its own: not the request's work."""
    if _rereading:
        return
    task = asyncio.create_task(_reread(fresh=False), context=contextvars.Context())
    _rereading.add(task)
    task.add_done_callback(_reread_done)


def _reread_done(task: asyncio.Task[Snapshot]) -> None:
    _rereading.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("configuration re-read failed: %r", task.exception())


async def current() -> RuntimeConfig:
    """The effective configuration (what the cost guard and the kill switch read)."""
    return (await snapshot()).config


# --- audit entries of changes ---------------------------------------------------------------------


def _pending_fields(entry: AuditEntry) -> dict[str, Any]:
    return entry.fields()


def _entry_of(fields: dict[str, Any]) -> AuditEntry:
    entry = AuditEntry.from_entity({**fields, "PartitionKey": "~pending"})
    entry.session_id, entry.row = "", ""
    return entry


async def _copy_to_log(rows: list[dict[str, Any]]) -> None:
    repo, records = AuditRepository(), RuntimeConfigRepository()
    for row in rows:
        try:
            await repo.record(_entry_of(row))
            await records.forget_pending(str(row["RowKey"]))
        except Exception:
            log.warning("audit entry %s not copied yet; the next reader will", row.get("RowKey"), exc_info=True)
            return


def _copy_left_behind(stored: StoredConfig) -> None:
    """Copy audit entries a writer left pending (it stopped before copying them), off the request path."""
    now = utcnow()
    old = [row for row in stored.pending if now - (parse_iso(str(row.get("at", ""))) or now) >= LEFT_BEHIND]
    if old and not _copying:
        task = asyncio.create_task(_copy_to_log(old))
        _copying.add(task)
        task.add_done_callback(_copying.discard)


# --- changes --------------------------------------------------------------------------------------


def _precondition_failed(current: Snapshot) -> Problem:
    return Problem(
        412, "The configuration changed since you read it; read it again and re-apply your change.",
        kind="precondition-failed", title="Precondition Failed", headers={"ETag": current.etag}, etag=current.etag,
    )  # fmt: skip


@dataclass
class Changed:
    """The answer to a change: status, body and the new ETag."""

    status: int
    body: dict[str, Any]
    etag: str


async def _replayed(request: RequestKey) -> Changed | None:
    repo = RuntimeConfigRepository()
    stored = await repo.replay(request.key)
    if stored is None:
        return None
    created = parse_iso(str(stored.get("createdAt", ""))) or utcnow()
    if utcnow() - created > REPLAY_TTL:
        await repo.forget_replay(request.key, str(stored.get("etag", "")))
        return None
    check_fingerprint(str(stored.get("fingerprint", "")), request)
    return Changed(int(stored.get("status", 200)), json.loads(str(stored.get("body") or "{}")), str(stored["result"]))


def _entries(before: Snapshot, after: dict[str, Any], actor: str, details: dict[str, Any]) -> list[AuditEntry]:
    changes = diff(before.document, after)
    entries = [audit.new_entry("config:changed", actor=actor, changes=changes, **details)]
    if before.document["botEnabled"] != after["botEnabled"]:
        event = "kill-switch:released" if after["botEnabled"] else "kill-switch:engaged"
        entries.append(audit.new_entry(event, actor=actor, **details))
    return entries


async def change(
    patch: dict[str, Any],
    *,
    if_match: str | None,
    actor: str,
    request: RequestKey | None = None,
    preset: str | None = None,
    via: str = "",
) -> Changed:
    """Apply a merge patch to the stored configuration (see the module docstring).

    412 when ``if_match`` no longer matches; 422 naming each invalid field. With an
    Idempotency-Key, a retry gets the first answer even though its If-Match is stale by then.
    """
    try:
        check_patch(patch)
    except InvalidConfig as exc:
        raise _invalid(exc) from None
    if request is not None and (replayed := await _replayed(request)) is not None:
        return replayed
    repo = RuntimeConfigRepository()
    for _ in range(_ATTEMPTS):
        stored = await repo.read()
        before = build(stored)
        if if_match is not None and not matches(if_match, before.etag):
            raise _precondition_failed(before)
        overrides = merge_patch(stored.overrides, patch)
        default_document, _ = defaults(get_settings())
        try:
            after_document = validate_config(merge_patch(default_document, overrides)).model_dump(mode="json")
        except InvalidConfig as exc:
            raise _invalid(exc) from None
        if overrides == stored.overrides:
            _keep(before)
            return Changed(200, before.public(), before.etag)
        details: dict[str, Any] = {"via": via} if via else {}
        if preset:
            details["preset"] = preset
        entries = _entries(before, after_document, actor, details)
        now = iso(utcnow())
        new = StoredConfig(overrides, "", uuid.uuid4().hex[:20], now, actor)
        try:
            new.etag = await repo.write(
                overrides, etag=stored.etag, version=new.version, updated_at=now, updated_by=actor,
                pending=[(entry.entry_id, _pending_fields(entry)) for entry in entries],
                replay=_replay_row(request, build(new), now) if request else None,
            )  # fmt: skip
        except ConcurrentUpdate:
            if request is not None and (replayed := await _replayed(request)) is not None:
                return replayed
            if if_match is not None:  # the caller's version is gone: they must look again
                raise _precondition_failed(await snapshot(fresh=True)) from None
            continue
        result = build(new)
        _keep(result)
        await _copy_to_log([{**_pending_fields(e), "RowKey": f"audit-{e.entry_id}"} for e in entries])
        return Changed(200, result.public(), result.etag)
    raise Problem(409, "The configuration kept changing; retry.", kind="busy", headers={"Retry-After": "1"})


def _replay_row(request: RequestKey, result: Snapshot, now: str) -> tuple[str, dict[str, Any]]:
    body = json.dumps(result.public(), separators=(",", ":"), ensure_ascii=False)
    fields = {"fingerprint": request.fingerprint, "status": 200, "body": body, "createdAt": now, "result": result.etag}
    return request.key, fields


async def apply_preset(
    name: str, *, if_match: str | None, actor: str, request: RequestKey | None = None, via: str = ""
) -> Changed:
    """Apply preset ``name`` (404 for an unknown one) as one change."""
    patch = preset_patch(name)
    if patch is None:
        raise Problem(404, f"No preset {name[:40]!r}; the presets are conservative, balanced and aggressive.",
                      kind="preset-not-found")  # fmt: skip
    return await change(patch, if_match=if_match, actor=actor, request=request, preset=name, via=via)


def _invalid(exc: InvalidConfig) -> Problem:
    fields = ", ".join(error["field"] for error in exc.errors)
    return Problem(422, f"Invalid fields: {fields}.", kind="validation-error", errors=exc.errors)
