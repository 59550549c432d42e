"""``Idempotency-Key``: a retried request gets the first answer, and nothing is stored twice.

The replay record is inserted (never upserted) in the same transaction as the change it answers,
together with a fingerprint of the method, the route and the body. If another request with the
key committed first, the insert fails, the transaction with it, and the stored answer is returned;
the same key with a different request is refused with 422 ``idempotency-key-reused``. Records
expire after 24 hours, after which the key may be used again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.errors import Problem
from shared.storage.chats import Replay
from shared.storage.values import is_safe_key

MAX_KEY = 100
REPLAY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class RequestKey:
    """A request's Idempotency-Key and the fingerprint of what it asked."""

    key: str
    fingerprint: str

    def replay(self, status: int, body: dict[str, Any], now: datetime, expired: Replay | None = None) -> Replay:
        """The record to store with the change (replacing an expired one under its ETag)."""
        return Replay(self.key, self.fingerprint, status, body, created_at=now, etag=expired.etag if expired else "")


def parse_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` header, or None; a 400 naming it when it can't be a key."""
    key = (header or "").strip()
    if not key:
        return None
    # Printable ASCII only: Table storage refuses control characters (C0 and C1) in keys.
    if not is_safe_key(key, MAX_KEY) or not key.isascii() or not key.isprintable():
        raise Problem(
            400,
            f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters without / \\ # or ?.",
            kind="invalid-idempotency-key",
            errors=[{"field": "Idempotency-Key", "message": "not a usable key"}],
        )
    return key


def request_key(header: str | None, method: str, route: str, body: Any) -> RequestKey | None:
    """The key and fingerprint of a request (``body`` as parsed: formatting doesn't matter)."""
    key = parse_key(header)
    if key is None:
        return None
    canonical = json.dumps([method.upper(), route, body], sort_keys=True, separators=(",", ":"), default=str)
    return RequestKey(key, hashlib.sha256(canonical.encode()).hexdigest())


def live(replay: Replay | None, now: datetime) -> Replay | None:
    """The replay record if it has not expired."""
    return replay if replay is not None and now - replay.created_at < REPLAY_TTL else None


def replayed(replay: Replay, request: RequestKey) -> tuple[int, dict[str, Any]]:
    """The stored answer, or 422 when the key was used for a different request."""
    if replay.fingerprint and replay.fingerprint != request.fingerprint:
        raise Problem(
            422,
            "This Idempotency-Key was already used for a different request; use a new key.",
            kind="idempotency-key-reused",
            errors=[{"field": "Idempotency-Key", "message": "used before with another method, route or body"}],
        )
    return replay.status, replay.body
