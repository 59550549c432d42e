"""Rate limits over a sliding minute.

``StorageRateLimiter`` counts in the ``ratelimits`` table so every worker shares the count
(anonymous session creation, admin sign-in failures). ``LocalRateLimiter`` counts in the worker's
memory for hot paths (chat turns per session), where a table round trip per message costs more
than the protection is worth.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from shared.errors import Problem
from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import storage_call
from shared.storage.values import safe_key

WINDOW_SECONDS = 60


@dataclass
class Verdict:
    """Whether a request may go on, with headers for the client."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (seconds), and ``Retry-After`` when refused."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(self.retry_after),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def raise_if_refused(self, what: str) -> None:
        """A 429 problem when over the limit."""
        if not self.allowed:
            raise Problem(
                429, f"Too many {what}; retry in {self.retry_after} s.", kind="rate-limited", headers=self.headers()
            )


def _window(now: float) -> tuple[int, int]:
    window = int(now // WINDOW_SECONDS)
    return window, int((window + 1) * WINDOW_SECONDS - now) + 1


class LocalRateLimiter:
    """Per-worker sliding-window log: the requests of the last minute, per key."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def hit(self, key: str, limit: int, now: float | None = None) -> Verdict:
        """Count one request for ``key`` (refused requests count too: hammering doesn't help)."""
        now = now if now is not None else time.monotonic()
        if len(self._hits) > 10_000:  # forget idle keys so memory stays bounded
            self._hits = defaultdict(deque, {k: v for k, v in self._hits.items() if v and now - v[-1] < WINDOW_SECONDS})
        hits = self._hits[key]
        while hits and now - hits[0] >= WINDOW_SECONDS:
            hits.popleft()
        hits.append(now)
        retry = int(WINDOW_SECONDS - (now - hits[0])) + 1
        return Verdict(len(hits) <= limit, limit, limit - len(hits), retry)


class StorageRateLimiter:
    """Shared counters in Table storage (ETag-guarded increments)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.RATELIMITS)

    async def count(self, bucket: str, key: str, now: float | None = None) -> int:
        """Hits so far in the current window."""
        from azure.core.exceptions import ResourceNotFoundError

        window, _ = _window(now if now is not None else time.time())
        try:
            entity = await storage_call(self._client.get_entity(bucket, f"{key}|{window}"))
        except ResourceNotFoundError:
            return 0
        return int(entity.get("count", 0))

    async def hit(self, bucket: str, key: str, limit: int, now: float | None = None) -> Verdict:
        """Count one request for ``key`` in ``bucket``, weighing in the previous window.

        The estimate ``current + previous * (unexpired share)`` approximates a sliding minute,
        so a burst straddling a window boundary is still caught.
        """
        now = now if now is not None else time.time()
        window, _ = _window(now)
        previous = await self.count(bucket, key, now - WINDOW_SECONDS)
        share = 1 - (now - window * WINDOW_SECONDS) / WINDOW_SECONDS
        current = await self._increment(bucket, key, now, limit)
        estimate = current.limit - current.remaining + int(previous * share)
        retry = current.retry_after if previous * share < 1 else WINDOW_SECONDS
        return Verdict(estimate <= limit, limit, limit - estimate, retry)

    async def _increment(self, bucket: str, key: str, now: float, limit: int) -> Verdict:
        """Add one to the current window's counter."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        window, retry = _window(now)
        row = f"{key}|{window}"
        for _ in range(10):
            try:
                entity = await storage_call(self._client.get_entity(bucket, row))
            except ResourceNotFoundError:
                try:
                    await storage_call(self._client.create_entity({"PartitionKey": bucket, "RowKey": row, "count": 1}))
                    return Verdict(1 <= limit, limit, limit - 1, retry)
                except ResourceExistsError:
                    continue
            count = int(entity.get("count", 0)) + 1
            try:
                await storage_call(
                    self._client.update_entity(
                        {"PartitionKey": bucket, "RowKey": row, "count": count},
                        mode=UpdateMode.REPLACE,
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                )
                return Verdict(count <= limit, limit, limit - count, retry)
            except ResourceModifiedError:
                continue
        return Verdict(False, limit, 0, retry)


def client_address(headers: Any) -> str:
    """The caller's address: the last ``X-Forwarded-For`` hop, the one the Azure front end appended.

    Earlier hops are whatever the client claimed, so they can't be trusted for limits.
    """
    forwarded = (headers.get("x-forwarded-for") or "").split(",")[-1].strip()
    # It becomes part of a RowKey: whatever a client sent, keep only what Storage can key, and short.
    return safe_key(forwarded or headers.get("x-client-ip") or "unknown")[:100]
