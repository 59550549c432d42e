"""Development-only agent identity: a local RSA key, its JWKS and tokens shaped like Teams SSO tokens.

Only used when ``AZURE_FUNCTIONS_ENVIRONMENT=Development`` (see ``make_validator`` and
``blueprints/devauth.py``): lets people run the agent console without an Entra tenant. The key
lives in memory for the process, or in ``DEV_IDENTITY_KEY_FILE`` (keep that file out of git) so
tokens survive restarts.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.identity.teams import SCOPE, AuthSettings, check_claims, get_auth_settings

DEV_CLIENT_ID = "dev-client"
# A fixed, recognisable tenant for dev tokens when AAD_APP_TENANT_ID names no single tenant.
DEV_TENANT_ID = "00000000-0000-4000-8000-00000000de7e"
_OID_NAMESPACE = uuid.UUID("6f1c7a52-3d0e-4b8e-9a57-1e2d3c4b5a69")
TOKEN_LIFETIME_SECONDS = 3600


class DevSignIn(BaseModel):
    """The dev sign-in form."""

    model_config = ConfigDict(defer_build=True)  # validators built at the first sign-in, not at import

    name: str = Field(min_length=1, max_length=100)
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")


def dev_oid(email: str) -> str:
    """A stable object id for an email, so the same person is the same agent across sign-ins."""
    return str(uuid.uuid5(_OID_NAMESPACE, email.strip().lower()))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class DevIdentity:
    """The local signing key and its key id (an RFC 7638 thumbprint)."""

    private_key: Any
    kid: str

    @property
    def public_key(self) -> Any:
        """The verification key."""
        return self.private_key.public_key()

    def jwks(self) -> dict[str, Any]:
        """The JWKS document publishing the public key."""
        from jwt.algorithms import RSAAlgorithm

        jwk = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def mint(self, form: DevSignIn, *, settings: AuthSettings, now: float | None = None) -> str:
        """A v2 access token with the claims Teams SSO would carry for this person."""
        import jwt

        claims = dev_claims(form, settings=settings, now=now)
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})

    def sign_in(self, form: DevSignIn, *, settings: AuthSettings) -> dict[str, Any]:
        """The token endpoint's body: the token and the agent it stands for."""
        claims = dev_claims(form, settings=settings)
        token = self.mint(form, settings=settings, now=claims["iat"])
        agent = check_claims(claims, settings=settings, client_id=claims["aud"])
        return {
            "accessToken": token,
            "tokenType": "Bearer",
            "expiresIn": TOKEN_LIFETIME_SECONDS,
            "agent": agent.public(),
        }


def dev_claims(form: DevSignIn, *, settings: AuthSettings, now: float | None = None) -> dict[str, Any]:
    """The claims of a dev token: a v2 Teams SSO access token for this person."""
    issued = int(time.time() if now is None else now)
    tid = dev_tenant_id(settings)
    email = form.email.strip()
    oid = dev_oid(email)
    return {
        "aud": settings.client_id or DEV_CLIENT_ID,
        "iss": f"https://login.microsoftonline.com/{tid}/v2.0",
        "iat": issued,
        "nbf": issued,
        "exp": issued + TOKEN_LIFETIME_SECONDS,
        "ver": "2.0",
        "tid": tid,
        "oid": oid,
        "sub": oid,
        "scp": SCOPE,
        "name": form.name.strip(),
        "preferred_username": email,
        "upn": email,
        "email": email,
    }


def dev_tenant_id(settings: AuthSettings) -> str:
    """The tenant of dev tokens: the configured one, else the fixed dev tenant."""
    return DEV_TENANT_ID if settings.multi_tenant else settings.tenant_id.strip()


def _thumbprint(public_key: Any) -> str:
    numbers = public_key.public_numbers()

    def b64int(value: int) -> str:
        return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    canonical = json.dumps({"e": b64int(numbers.e), "kty": "RSA", "n": b64int(numbers.n)}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _load_or_create_key(path: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    file = Path(path) if path else None
    if file is not None and file.exists():
        return serialization.load_pem_private_key(file.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if file is not None:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        file.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only, created atomically with that mode, since it is a private key.
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    return key


def make_dev_identity(*, settings: AuthSettings) -> DevIdentity:
    """The dev identity; ``ValueError`` outside Development, so it can never be trusted in production."""
    if not settings.is_development:
        raise ValueError("The dev identity exists only when AZURE_FUNCTIONS_ENVIRONMENT=Development.")
    key = _load_or_create_key(settings.dev_identity_key_file)
    return DevIdentity(private_key=key, kid="dev-" + _thumbprint(key.public_key()))


@functools.cache
def get_dev_identity() -> DevIdentity:
    """The worker's dev identity, created on first use."""
    return make_dev_identity(settings=get_auth_settings())


def render_signin_page(*, client_id: str, tenant_id: str) -> str:
    """The dev sign-in page: a form that gets a token from ``POST dev/token`` and keeps it in sessionStorage."""
    audience = html.escape(client_id or DEV_CLIENT_ID)
    tenant = html.escape(tenant_id)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Dev sign-in (Development only)</title>
<style>body{{font:15px system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1.2rem}}.note{{color:#666;font-size:13px}}
textarea{{width:100%;height:7rem;font-size:11px}}</style></head>
<body><h1>Dev sign-in</h1>
<p class="note">Development only: issues a local token shaped like a Teams SSO token
(audience <code>{audience}</code>, tenant <code>{tenant}</code>). It is refused outside Development.</p>
<form id="signin" method="post" action="token">
<label for="name">Display name</label><input id="name" name="name" required maxlength="100" value="Dev Agent">
<label for="email">Email</label>
<input id="email" name="email" type="email" required maxlength="254" value="agent@example.com">
<button type="submit">Sign in</button></form>
<p id="result" hidden>Signed in as <strong id="who"></strong>. The agent console in this tab is
signed in too (sessionStorage <code>supportdesk-agent-dev-token</code>); the token:</p>
<textarea id="token" readonly hidden></textarea>
<script>
document.getElementById("signin").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const body = {{name: document.getElementById("name").value, email: document.getElementById("email").value}};
  const response = await fetch("token", {{method: "POST", headers: {{"content-type": "application/json"}},
    body: JSON.stringify(body)}});
  const data = await response.json();
  if (!response.ok) {{ alert(data.detail || "Sign-in failed"); return; }}
  // The agent console's own key and format, so returning to it finds the sign-in.
  sessionStorage.setItem("supportdesk-agent-dev-token",
    JSON.stringify({{token: data.accessToken, expires: Date.now() + data.expiresIn * 1000}}));
  const back = new URLSearchParams(location.search).get("return") || "";
  // Only same-origin paths: an open redirect would hand the token page to anyone.
  if (back.startsWith("/") && !back.startsWith("//") && !back.startsWith("/\\\\")) {{ location.assign(back); return; }}
  document.getElementById("who").textContent = data.agent.name + " <" + data.agent.email + ">";
  document.getElementById("token").value = data.accessToken;
  document.getElementById("result").hidden = false;
  document.getElementById("token").hidden = false;
}});
</script></body></html>
"""
