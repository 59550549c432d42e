"""Test signing keys, their JWKS, and Teams-shaped tokens (good ones and forged ones)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT_ID = "0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
HOST = "desk.example.com"
APP_ID_URI = f"api://{HOST}/{CLIENT_ID}"
AGENT_OID = "a1b2c3d4-e5f6-4789-8abc-def012345678"


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair with its key id."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The verification key."""
        return self.private_key.public_key()

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK."""
        return {**RSAAlgorithm.to_jwk(self.public_key, as_dict=True), "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        """The public key as PEM (what an HS256 forgery uses as its 'secret')."""
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def new_key(kid: str | None = None) -> SigningKey:
    """A fresh 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(key, kid or f"test-{uuid.uuid4().hex[:12]}")


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """A JWKS document for these keys."""
    return {"keys": [key.jwk() for key in keys]}


def teams_claims(
    *,
    version: int = 2,
    client_id: str = CLIENT_ID,
    tenant_id: str = TENANT_ID,
    host: str = HOST,
    lifetime: int = 3600,
    **overrides: Any,
) -> dict[str, Any]:
    """Claims of a Teams SSO access token (v1 or v2); an override of ``None`` drops the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": client_id if version == 2 else f"api://{host}/{client_id}",
        "iss": (
            f"https://login.microsoftonline.com/{tenant_id}/v2.0"
            if version == 2
            else f"https://sts.windows.net/{tenant_id}/"
        ),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "ver": f"{version}.0",
        "tid": tenant_id,
        "oid": AGENT_OID,
        "sub": "pairwise-subject",
        "scp": "access_as_user",
        "name": "Ada Agent",
    }
    if version == 2:
        claims["preferred_username"] = "ada@contoso.example"
    else:
        claims["upn"] = claims["unique_name"] = "ada@contoso.example"
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(claims: dict[str, Any], key: SigningKey, *, headers: dict[str, Any] | None = None) -> str:
    """An RS256 token signed by ``key``."""
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, **(headers or {})})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """An ``alg: none`` token (no signature)."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_segment(claims)}."


def hs256_with_public_key(claims: dict[str, Any], key: SigningKey) -> str:
    """The key-confusion forgery: HS256 with the RSA public key's PEM as the HMAC secret."""
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{_segment(claims)}"
    signature = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
