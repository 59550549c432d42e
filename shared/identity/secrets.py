"""Secret handling: generating keys, hashing them for storage, comparing in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_key(prefix: str = "sdk") -> str:
    """A fresh 256-bit key, URL-safe, with a recognisable prefix for secret scanners."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_salt() -> str:
    """A random salt for :func:`hash_key`."""
    return secrets.token_hex(16)


def hash_key(key: str, salt: str) -> str:
    """The stored form of a key: HMAC-SHA256 under a per-deployment salt."""
    return hmac.new(salt.encode(), key.encode(), hashlib.sha256).hexdigest()


def key_matches(candidate: str, salt: str, stored_hash: str) -> bool:
    """Compare a presented key with a stored hash in constant time."""
    if not candidate or not stored_hash:
        return False
    return hmac.compare_digest(hash_key(candidate, salt), stored_hash)
