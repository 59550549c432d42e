"""Visitor tokens: HS256 JWTs bound to one session, signed with the deployment's secret."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.web.http import Problem, bearer_credential

# PyJWT is imported by issue and verify: it pulls in cryptography (~50 ms), which a cold start
# that issues no token (health, the widget's files) should not pay for.

AUDIENCE = "supportdesk-visitor"
_ALGORITHM = "HS256"


@dataclass
class VisitorToken:
    """An issued token."""

    session_id: str
    token: str
    expires_at: datetime


def issue(session_id: str, *, secret: str, issuer: str, ttl_seconds: int, now: datetime | None = None) -> VisitorToken:
    """A token for ``session_id`` valid for ``ttl_seconds``."""
    import jwt

    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_seconds)
    claims = {
        "sub": session_id,
        "aud": AUDIENCE,
        "iss": issuer,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()) - 5,
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return VisitorToken(session_id, jwt.encode(claims, secret, algorithm=_ALGORITHM), expires)


def _refused(detail: str, kind: str) -> Problem:
    return Problem(401, detail, kind=kind, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or a 401 problem."""
    token = bearer_credential(authorization)
    if token is None:
        raise Problem(
            401,
            "Send the visitor token as 'Authorization: Bearer <token>'.",
            kind="missing-token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token


def verify(token: str, *, secret: str, issuer: str, allow_expired_days: int = 0) -> str:
    """The session id the token is bound to; 401 problem when forged, expired or malformed.

    ``allow_expired_days`` lets a renewal accept a token that expired recently: its valid
    signature still proves the caller owns that session.
    """
    import jwt

    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=AUDIENCE,
            issuer=issuer,
            leeway=timedelta(days=allow_expired_days) if allow_expired_days else timedelta(seconds=5),
            options={"require": ["exp", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _refused("The visitor token has expired; renew it.", "token-expired") from exc
    except jwt.InvalidTokenError as exc:
        raise _refused("The visitor token is not valid.", "invalid-token") from exc
    return str(claims["sub"])
