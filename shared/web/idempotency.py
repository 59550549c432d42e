"""``Idempotency-Key`` headers: parsing, and the fingerprint that tells a retry from a new request.

A key is 1 to 100 printable ASCII characters without ``/ \\ # ?`` (Table storage keeps it in a
RowKey). The fingerprint hashes the method, the route and the parsed body, so formatting doesn't
matter; the same key with another fingerprint is refused with 422 ``idempotency-key-reused``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shared.errors import Problem
from shared.storage.values import is_safe_key

MAX_KEY = 100


@dataclass(frozen=True)
class RequestKey:
    """A request's Idempotency-Key and the fingerprint of what it asked."""

    key: str
    fingerprint: str


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


def check_fingerprint(stored: str, request: RequestKey) -> None:
    """422 when the key was first used for a different request."""
    if stored and stored != request.fingerprint:
        raise Problem(
            422,
            "This Idempotency-Key was already used for a different request; use a new key.",
            kind="idempotency-key-reused",
            errors=[{"field": "Idempotency-Key", "message": "used before with another method, route or body"}],
        )
