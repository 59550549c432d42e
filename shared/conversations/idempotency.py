"""Replays of a conversation change: a retried request gets the first answer, nothing stored twice.

The replay record is inserted (never upserted) in the same transaction as the change it answers,
with the request's fingerprint (see :mod:`shared.web.idempotency`). If another request with the
key committed first, the insert fails, the transaction with it, and the stored answer is returned.
Records expire after 24 hours, after which the key may be used again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.storage.chats import Replay
from shared.web.idempotency import RequestKey, check_fingerprint

REPLAY_TTL = timedelta(hours=24)


def record(request: RequestKey, status: int, body: dict[str, Any], now: datetime, stored: Replay | None) -> Replay:
    """The record to store with the change (replacing an expired one under its ETag)."""
    return Replay(request.key, request.fingerprint, status, body, created_at=now, etag=stored.etag if stored else "")


def live(replay: Replay | None, now: datetime) -> Replay | None:
    """The replay record if it has not expired."""
    return replay if replay is not None and now - replay.created_at < REPLAY_TTL else None


def replayed(replay: Replay, request: RequestKey) -> tuple[int, dict[str, Any]]:
    """The stored answer, or 422 when the key was used for a different request."""
    check_fingerprint(replay.fingerprint, request)
    return replay.status, replay.body
