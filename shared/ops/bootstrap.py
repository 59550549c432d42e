"""First-start set-up: tables, containers, the admin key and the deployment record.

Idempotent and safe when two workers race: the record is created with an insert that only one
worker can win; the loser reads the winner's record and announces nothing.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.config import Settings, get_settings
from shared.identity import secrets as security
from shared.storage import get_blob_service, get_table_service, tables
from shared.storage.clients import queue_client
from shared.storage.deployment import DeploymentRecord, DeploymentRepository
from shared.storage.errors import storage_call

log = logging.getLogger(__name__)
MIN_ADMIN_KEY_LENGTH = 32


@dataclass
class BootstrapStatus:
    """What ``/api/health`` reports about bootstrap in this worker."""

    attempted: bool = False
    result: str = "pending"  # pending | succeeded | failed


STATUS = BootstrapStatus()
_record: DeploymentRecord | None = None
_lock: asyncio.Lock | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def _create_stores() -> None:
    from azure.core.exceptions import ResourceExistsError

    async def create(make: Awaitable[object]) -> None:
        try:
            await storage_call(make)
        except ResourceExistsError:
            pass

    service, blobs = get_table_service(), get_blob_service()
    await asyncio.gather(
        *(create(service.create_table(name)) for name in tables.ALL_TABLES),
        *(create(blobs.create_container(name)) for name in tables.ALL_CONTAINERS),
        *(create(queue_client(name).create_queue()) for name in tables.ALL_QUEUES),
    )


def _announce_generated_key(key: str, settings: Settings) -> None:
    """Show a generated key to the developer once; outside Development it is never written out."""
    if not settings.is_development:
        log.warning("an admin key was generated; set ADMIN_KEY or rotate it from the dashboard")
        return
    path = Path(settings.admin_key_file)
    try:
        path.write_text(key + "\n", encoding="utf-8")
        os.chmod(path, 0o600)
    except OSError:
        log.warning("could not write the admin key file %s", path)
    # Development only: the local stack prints the key once so the developer can sign in.
    print(f"Admin key (development, shown once): {key}", flush=True)  # noqa: T201


def _new_record(settings: Settings) -> tuple[DeploymentRecord, str | None]:
    """A fresh record and, when the key was generated here, the key itself."""
    generated = None if settings.admin_key else security.new_key("sdk")
    key = settings.admin_key or generated or ""
    salt = security.new_salt()
    record = DeploymentRecord(
        deployment_id=settings.deployment_id or f"sd-{uuid.uuid4().hex[:12]}",
        version=settings.app_version,
        bootstrapped_at=_now(),
        admin_key_hash=security.hash_key(key, salt),
        admin_key_salt=salt,
        admin_key_version=1,
        admin_key_setting_hash=security.hash_key(settings.admin_key, salt) if settings.admin_key else "",
        signing_secret=security.new_key("sig"),
    )
    return record, generated


async def _apply_admin_key_setting(
    repo: DeploymentRepository, record: DeploymentRecord, settings: Settings
) -> DeploymentRecord:
    """A changed ADMIN_KEY setting becomes the key; an unchanged one leaves rotations alone."""
    from azure.core.exceptions import ResourceModifiedError

    if not settings.admin_key:
        return record
    if len(settings.admin_key) < MIN_ADMIN_KEY_LENGTH and not settings.is_development:
        # The admin routes never refuse the right key, so a key must be too long to guess.
        log.error("ADMIN_KEY is shorter than %d characters and is ignored; the stored key stays", MIN_ADMIN_KEY_LENGTH)
        return record
    setting_hash = security.hash_key(settings.admin_key, record.admin_key_salt)
    if setting_hash == record.admin_key_setting_hash:
        return record
    record.admin_key_hash = setting_hash
    record.admin_key_setting_hash = setting_hash
    record.admin_key_version += 1
    try:
        await repo.replace(record)
    except ResourceModifiedError:
        # Another worker applied it (or rotated) first; theirs is current.
        return await repo.get() or record
    return record


async def _bootstrap(settings: Settings) -> DeploymentRecord:
    from azure.core.exceptions import ResourceExistsError

    repo = DeploymentRepository()
    existing = await repo.get()
    if existing is not None and existing.version == settings.app_version:
        # Already set up by this version: skip the store round trips, keep cold start short.
        return await _apply_admin_key_setting(repo, existing, settings)
    await _create_stores()
    if existing is not None:
        return await _apply_admin_key_setting(repo, existing, settings)
    record, generated = _new_record(settings)
    try:
        await repo.create(record)
    except ResourceExistsError:
        winner = await repo.get()
        assert winner is not None  # it was just created by the other worker
        return winner
    if generated:
        _announce_generated_key(generated, settings)
    log.info("bootstrapped deployment %s", record.deployment_id)
    return record


async def ensure_bootstrapped() -> DeploymentRecord:
    """Bootstrap once per worker; later calls return the cached record."""
    global _record, _lock
    if _record is not None:
        return _record
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        if _record is not None:
            return _record
        STATUS.attempted = True
        try:
            _record = await _bootstrap(get_settings())
        except Exception:
            STATUS.result = "failed"
            raise
        STATUS.result = "succeeded"
        return _record


async def current_record() -> DeploymentRecord:
    """The deployment record as stored now (not cached: rotation must take effect at once)."""
    await ensure_bootstrapped()
    record = await DeploymentRepository().get()
    assert record is not None  # bootstrap created it
    return record


def bootstrapped(handler: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
    """Make sure tables exist before a handler that uses Storage runs (cached after the first call)."""

    @functools.wraps(handler)
    async def wrapper(req: Any) -> Any:
        await ensure_bootstrapped()
        return await handler(req)

    wrapper.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    return wrapper
