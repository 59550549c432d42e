"""Admin authentication: the admin key (``?code=`` or Bearer) or a signed dashboard cookie.

The key is checked in constant time against the stored hash, read fresh on every request so a
rotation takes effect at once in every worker. The cookie is stateless: an HMAC (under the
deployment's signing secret) over the admin-key version and an expiry, so bumping the version on
rotation voids every cookie. Cookie-authenticated POSTs must echo a CSRF token derived from the
cookie (double submit). Wrong keys are counted per client in Table storage; past the limit the
client gets 429 before its key is even looked at.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import azure.functions as func

from shared.config import get_settings
from shared.control import audit
from shared.identity import secrets as security
from shared.ops.bootstrap import current_record
from shared.storage.deployment import DeploymentRecord, DeploymentRepository
from shared.storage.errors import ConcurrentUpdate
from shared.web.http import Problem, bearer_credential
from shared.web.idempotency import RequestKey, check_fingerprint
from shared.web.ratelimit import WINDOW_SECONDS, StorageRateLimiter, client_address

log = logging.getLogger(__name__)

COOKIE_NAME = "sd_admin"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_SECONDS = 8 * 3600
FAILURES_PER_MINUTE = 10
FAIL_BUCKET = "admin-fail"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
REPLAY_TTL = timedelta(hours=24)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="admin", charset="UTF-8"'}


@dataclass
class AdminContext:
    """Who passed the admin check, and how."""

    method: str  # "key" | "cookie"
    key_version: int
    csrf_token: str = ""
    expires_at: int = 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: str, *parts: str) -> str:
    return _b64(hmac.new(secret.encode(), "|".join(parts).encode(), hashlib.sha256).digest())


def make_cookie_value(record: DeploymentRecord, now: float | None = None) -> tuple[str, int]:
    """A signed cookie value for the current key version, and its expiry (epoch seconds)."""
    expires = int(now if now is not None else time.time()) + COOKIE_SECONDS
    body = f"v1.{record.admin_key_version}.{expires}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(record.signing_secret, 'admin-cookie', body)}", expires


def csrf_token(record: DeploymentRecord, cookie_value: str) -> str:
    """The double-submit token that goes with ``cookie_value``."""
    return _mac(record.signing_secret, "csrf", cookie_value)


def verify_cookie(record: DeploymentRecord, value: str, now: float | None = None) -> int | None:
    """The cookie's expiry when it is authentic, unexpired and for the current key version."""
    body, _, signature = value.rpartition(".")
    parts = body.split(".")
    if len(parts) != 4 or parts[0] != "v1" or not signature:
        return None
    if not hmac.compare_digest(signature, _mac(record.signing_secret, "admin-cookie", body)):
        return None
    try:
        version, expires = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    current = now if now is not None else time.time()
    if version != record.admin_key_version or expires <= current:
        return None
    return expires


def cookie_header(value: str, expires: int) -> str:
    """``Set-Cookie`` for a session: HttpOnly, SameSite=Strict, Path=/api, Secure outside Development."""
    stamp = datetime.fromtimestamp(expires, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    max_age = max(0, expires - int(time.time()))
    flags = f"{COOKIE_NAME}={value}; Path=/api; Max-Age={max_age}; Expires={stamp}; HttpOnly; SameSite=Strict"
    return flags if get_settings().is_development else flags + "; Secure"


def clear_cookie_header() -> str:
    """``Set-Cookie`` that removes the session cookie."""
    secure = "" if get_settings().is_development else "; Secure"
    return (
        f"{COOKIE_NAME}=; Path=/api; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict"
        + secure
    )


def _presented_key(req: func.HttpRequest) -> str | None:
    """The key from ``?code=`` or ``Authorization: Bearer``; None when neither is given."""
    code = req.params.get("code")
    if code:
        return code
    return bearer_credential(req.headers.get("authorization"))


def _presented_cookie(req: func.HttpRequest) -> str | None:
    raw = req.headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is the client's problem, not a 500
        return None
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel and morsel.value else None


def unauthorized(detail: str) -> Problem:
    """A 401 problem with the challenge header."""
    return Problem(401, detail, kind="unauthorized", headers=_CHALLENGE)


async def _recent_failures(client: str) -> int:
    """Wrong keys from ``client`` over roughly the last minute (sliding estimate)."""
    limiter, now = StorageRateLimiter(), time.time()
    current, previous = await asyncio.gather(
        limiter.count(FAIL_BUCKET, client, now), limiter.count(FAIL_BUCKET, client, now - WINDOW_SECONDS)
    )
    share = 1 - (now % WINDOW_SECONDS) / WINDOW_SECONDS
    # Rounded up: ten wrong keys straddling a minute boundary must still count as ten.
    return current + math.ceil(previous * share)


def _too_many(retry_after: int) -> Problem:
    return Problem(
        429,
        f"Too many wrong admin keys from this address; retry in {retry_after} s.",
        kind="rate-limited",
        headers={"Retry-After": str(retry_after)},
    )


async def check_key(req: func.HttpRequest, key: str) -> DeploymentRecord:
    """The current record when ``key`` is the admin key; 429 for wrong keys once throttled, else 401.

    The right key is never refused, whatever other callers behind the same address got wrong: a
    lock-out would shut the owner out from a shared NAT, while a 256-bit key (or an ``ADMIN_KEY``
    of at least 32 characters outside Development) can't be guessed at any rate. Wrong keys are
    slowed down: past ``FAILURES_PER_MINUTE`` a minute from one address they get 429.
    """
    client = client_address(req.headers)
    record = await current_record()
    if security.key_matches(key, record.admin_key_salt, record.admin_key_hash):
        return record
    if await _recent_failures(client) >= FAILURES_PER_MINUTE:
        raise _too_many(WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS + 1)
    verdict = await StorageRateLimiter().hit(FAIL_BUCKET, client, FAILURES_PER_MINUTE)
    log.warning("wrong admin key from %s", client)
    if not verdict.allowed:
        raise _too_many(verdict.retry_after)
    raise unauthorized("The admin key is wrong or was rotated.")


async def require_admin(req: func.HttpRequest) -> AdminContext:
    """Authenticate an admin request (key or cookie); CSRF-check cookie-authenticated writes."""
    key = _presented_key(req)
    if key is not None:
        record = await check_key(req, key)
        return AdminContext("key", record.admin_key_version)
    cookie = _presented_cookie(req)
    if cookie is None:
        raise unauthorized("Sign in with the admin key: ?code=, Authorization: Bearer, or the dashboard.")
    record = await current_record()
    expires = verify_cookie(record, cookie)
    if expires is None:
        raise unauthorized("The dashboard session has expired or the key was rotated; sign in again.")
    token = csrf_token(record, cookie)
    if req.method.upper() not in _SAFE_METHODS:
        sent = req.headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(sent.encode(), token.encode()):
            raise Problem(403, f"Send the {CSRF_HEADER} header from sign-in with this request.", kind="csrf-failed")
    return AdminContext("cookie", record.admin_key_version, token, expires)


async def sign_in(req: func.HttpRequest, key: str) -> tuple[dict[str, object], str]:
    """Check ``key`` and start a dashboard session: (body with csrfToken/expiresAt, Set-Cookie)."""
    record = await check_key(req, key)
    return session_for(record)


def session_for(record: DeploymentRecord) -> tuple[dict[str, object], str]:
    """A fresh cookie for ``record``'s key version: (body, Set-Cookie)."""
    value, expires = make_cookie_value(record)
    body: dict[str, object] = {"csrfToken": csrf_token(record, value), "expiresAt": _iso(expires)}
    return body, cookie_header(value, expires)


async def rotate_key(
    req: func.HttpRequest, request: RequestKey | None = None
) -> tuple[dict[str, object], DeploymentRecord, AdminContext]:
    """Replace the admin key (ETag-guarded); the old key and every cookie stop at once.

    With an Idempotency-Key, a retry of a rotation whose answer was lost gets the same new key.
    The retry still carries the credentials from *before* the rotation, so those are checked
    against the replay record; the new key is stored sealed (AES-GCM) under a key derived from that
    old credential, which is never stored, so only the caller who rotated can open it.
    """
    from azure.core.exceptions import ResourceModifiedError

    repo = DeploymentRepository()
    if request is not None:
        replayed = await _rotation_replay(req, request, repo)
        if replayed is not None:
            return replayed
    context = await require_admin(req)
    credential = _presented_key(req) or _presented_cookie(req) or ""
    for _ in range(5):
        record = await current_record()
        previous_hash, previous_version = record.admin_key_hash, record.admin_key_version
        key = security.new_key("sdk")
        # Same salt: bootstrap compares the ADMIN_KEY setting's hash under it to spot a changed setting.
        record.admin_key_hash = security.hash_key(key, record.admin_key_salt)
        record.admin_key_version += 1
        body: dict[str, object] = {
            "adminKey": key,
            "rotatedAt": _iso(int(time.time())),
            "keyVersion": record.admin_key_version,
        }
        try:
            if request is None:
                await repo.replace(record)
            else:
                await repo.replace_with_replay(record, request.key, {
                    "fingerprint": request.fingerprint, "previousKeyHash": previous_hash,
                    "previousVersion": previous_version, "createdAt": _iso(int(time.time())),
                    "sealed": _seal(body, credential, record.admin_key_salt),
                })  # fmt: skip
        except (ResourceModifiedError, ConcurrentUpdate):
            if request is not None and (replayed := await _rotation_replay(req, request, repo)) is not None:
                return replayed  # a concurrent retry with the same key rotated first
            continue
        log.info("admin key rotated to version %d", record.admin_key_version)
        await audit.record("key:rotated", actor="admin", keyVersion=record.admin_key_version, via=context.method)
        return body, record, context
    raise Problem(409, "The deployment record kept changing; retry the rotation.", kind="busy")


async def _rotation_replay(
    req: func.HttpRequest, request: RequestKey, repo: DeploymentRepository
) -> tuple[dict[str, object], DeploymentRecord, AdminContext] | None:
    """The answer of an earlier rotation with this key, for the caller who made it; None if none."""
    stored = await repo.replay(request.key)
    if stored is None:
        return None
    created = datetime.fromisoformat(str(stored.get("createdAt", "")).replace("Z", "+00:00"))
    if datetime.now(UTC) - created > REPLAY_TTL:
        await repo.forget_replay(request.key)
        return None
    check_fingerprint(str(stored.get("fingerprint", "")), request)
    record = await current_record()
    before = dataclasses.replace(record, admin_key_version=int(stored.get("previousVersion", 0)))
    key, cookie = _presented_key(req), _presented_cookie(req)
    if key is not None and security.key_matches(key, record.admin_key_salt, str(stored.get("previousKeyHash", ""))):
        credential, context = key, AdminContext("key", record.admin_key_version)
    elif key is None and cookie is not None and verify_cookie(before, cookie) is not None:
        sent = req.headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(sent.encode(), csrf_token(before, cookie).encode()):
            raise Problem(403, f"Send the {CSRF_HEADER} header from sign-in with this request.", kind="csrf-failed")
        credential, context = cookie, AdminContext("cookie", record.admin_key_version)
    else:
        await require_admin(req)  # current credentials are fine, but this key already rotated once
        raise Problem(
            409, "This Idempotency-Key already rotated the admin key; use a new key to rotate again.",
            kind="already-rotated",
        )  # fmt: skip
    return _unseal(str(stored.get("sealed", "")), credential, record.admin_key_salt), record, context


def _sealing_key(credential: str, salt: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt.encode(), info=b"rotate-replay").derive(
        credential.encode()
    )


def _seal(body: dict[str, object], credential: str, salt: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_sealing_key(credential, salt)).encrypt(nonce, json.dumps(body).encode(), None)
    return base64.b64encode(nonce + sealed).decode()


def _unseal(text: str, credential: str, salt: str) -> dict[str, object]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.b64decode(text)
    body: dict[str, object] = json.loads(AESGCM(_sealing_key(credential, salt)).decrypt(raw[:12], raw[12:], None))
    return body


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
