"""Storage failures as domain errors: an outage, and a write that lost an optimistic-concurrency race."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable
from typing import TypeVar

from shared.storage.calls import count_call

log = logging.getLogger(__name__)
T = TypeVar("T")


class StorageUnavailable(Exception):
    """Storage could not be reached; the caller may retry (the web layer answers 503)."""


class ConcurrentUpdate(Exception):
    """The row changed since it was read (ETag mismatch) or a row to insert exists; re-read and retry."""


def is_outage(exc: BaseException) -> bool:
    """True for network-level failures (as opposed to a 404/409 answer from Storage)."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, HttpResponseError):
        return (exc.status_code or 0) >= 500
    return False


async def storage_call(awaitable: Awaitable[T]) -> T:
    """Await a Storage operation, raising :class:`StorageUnavailable` on an outage."""
    count_call()
    try:
        return await awaitable
    except Exception as exc:
        if is_outage(exc):
            log.warning("storage unavailable: %s", type(exc).__name__)
            raise StorageUnavailable() from exc
        raise


async def collect(pages: AsyncIterable[T], limit: int | None = None) -> list[T]:
    """Drain an async query (up to ``limit`` items), raising :class:`StorageUnavailable` on an outage."""
    count_call()
    items: list[T] = []
    try:
        async for item in pages:
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
    except Exception as exc:
        if is_outage(exc):
            log.warning("storage unavailable: %s", type(exc).__name__)
            raise StorageUnavailable() from exc
        raise
    return items
