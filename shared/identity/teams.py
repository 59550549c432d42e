"""Teams SSO access tokens: validated with PyJWT against Entra's JWKS (RS256) and turned into an :class:`Agent`.

Rules follow https://learn.microsoft.com/entra/identity-platform/access-tokens and the Teams tab SSO
docs: accept both the v1 and v2 audience and
issuer forms, check the issuer *pattern* against the token's own ``tid``, require the
``access_as_user`` scope. PyJWT is imported lazily: it pulls in ``cryptography`` (~0.1 s of cold start).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

import azure.functions as func
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.web.http import Problem, bearer_credential

if TYPE_CHECKING:
    from jwt import PyJWK, PyJWKClient

log = logging.getLogger(__name__)

SCOPE = "access_as_user"
LEEWAY_SECONDS = 60
REQUIRED_CLAIMS = ("exp", "iss", "aud", "tid", "oid")
# Tenant values that mean "any tenant": the issuer is then checked against the token's own tid.
MULTI_TENANT = frozenset({"", "common", "organizations"})
# A token bigger than this is not an Entra access token; refuse it before parsing.
MAX_TOKEN_CHARS = 16 * 1024

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_CHALLENGE = 'Bearer realm="agent"'


class AuthSettings(BaseSettings):
    """Agent sign-in settings (app-setting names, case-insensitive)."""

    # Built when first read (agent sign-in), not on every cold start.
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True, defer_build=True)

    environment: str = Field(
        default="Production",
        validation_alias=AliasChoices("AZURE_FUNCTIONS_ENVIRONMENT", "ENVIRONMENT"),
    )
    client_id: str = Field(default="", validation_alias="AAD_APP_CLIENT_ID")
    tenant_id: str = Field(default="", validation_alias="AAD_APP_TENANT_ID")
    app_id_uri: str = Field(default="", validation_alias="AAD_APP_ID_URI")
    jwks_url: str = Field(
        default="https://login.microsoftonline.com/common/discovery/v2.0/keys", validation_alias="AAD_JWKS_URL"
    )
    # Entra rotates keys; about a day is Microsoft's advice, and an unknown kid forces a refresh anyway.
    jwks_cache_seconds: float = Field(default=24 * 3600, gt=0, validation_alias="AAD_JWKS_CACHE_SECONDS")
    jwks_timeout_seconds: float = Field(default=5.0, gt=0, validation_alias="AAD_JWKS_TIMEOUT_SECONDS")
    dev_identity_key_file: str = Field(default="", validation_alias="DEV_IDENTITY_KEY_FILE")

    @property
    def is_development(self) -> bool:
        """True when running locally (Core Tools and devhost set Development)."""
        return self.environment.strip().lower() == "development"

    @property
    def multi_tenant(self) -> bool:
        """True when any tenant's tokens are accepted."""
        return self.tenant_id.strip().lower() in MULTI_TENANT


def get_auth_settings() -> AuthSettings:
    """The worker's agent sign-in settings: the ``auth`` section of the one Settings."""
    from shared.config import get_settings

    return get_settings().auth


@dataclass(frozen=True)
class Agent:
    """A signed-in agent; key users by (tid, oid), never by upn or email (they are mutable)."""

    oid: str
    tid: str
    upn: str
    email: str
    name: str

    def public(self) -> dict[str, str]:
        """The contract's normalised claims (``GET /api/agent/me``)."""
        return {"oid": self.oid, "upn": self.upn, "email": self.email, "tenantId": self.tid, "name": self.name}


class KeySource(Protocol):
    """Finds a public key by ``kid``; ``jwt.PyJWKClient`` is one."""

    def get_signing_key(self, kid: str) -> PyJWK:
        """The key with this id (raises ``PyJWKClientError`` when unknown)."""
        ...


def _unauthorized(detail: str, kind: str = "invalid-token") -> Problem:
    error = "" if kind == "missing-token" else ', error="invalid_token"'
    return Problem(401, detail, kind=kind, headers={"WWW-Authenticate": _CHALLENGE + error})


def _unavailable(detail: str) -> Problem:
    return Problem(503, detail, kind="identity-provider-unavailable", headers={"Retry-After": "10"})


def accepted_audience(aud: str, *, client_id: str, app_id_uri: str = "") -> bool:
    """v2 tokens carry the client id; v1 tokens the App ID URI ``api://<host>/<clientId>``."""
    if not client_id:
        return False
    if aud == client_id or (app_id_uri and aud == app_id_uri):
        return True
    if not aud.startswith("api://"):
        return False
    rest = aud.removeprefix("api://")
    return rest == client_id or (rest.endswith("/" + client_id) and len(rest) > len(client_id) + 1)


def expected_issuers(tid: str) -> tuple[str, str]:
    """The v1 and v2 issuers Entra uses for tenant ``tid``."""
    return f"https://sts.windows.net/{tid}/", f"https://login.microsoftonline.com/{tid}/v2.0"


def check_claims(claims: Mapping[str, Any], *, settings: AuthSettings, client_id: str) -> Agent:
    """Audience, issuer, tenant and scope checks on already signature-verified claims (pure)."""
    for name in REQUIRED_CLAIMS:
        if not claims.get(name):
            raise _unauthorized(f"The token has no '{name}' claim.")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if not any(
        isinstance(a, str) and accepted_audience(a, client_id=client_id, app_id_uri=settings.app_id_uri)
        for a in audiences
    ):
        raise _unauthorized("The token was issued for another application (audience mismatch).", "wrong-audience")
    tid = str(claims["tid"])
    if not _GUID.match(tid):
        raise _unauthorized("The token's tenant id is not a GUID.")
    if claims["iss"] not in expected_issuers(tid):
        raise _unauthorized("The token's issuer is not Entra ID for its tenant.", "wrong-issuer")
    if not settings.multi_tenant and tid.lower() != settings.tenant_id.strip().lower():
        raise _unauthorized("The token belongs to another tenant than this deployment's.", "wrong-tenant")
    scopes = str(claims.get("scp") or "").split()
    if SCOPE not in scopes:
        detail = "App-only tokens are not accepted" if claims.get("roles") else "The token lacks the scope"
        raise _unauthorized(f"{detail}; a user token with scope '{SCOPE}' is required.", "missing-scope")
    upn = str(claims.get("preferred_username") or claims.get("upn") or claims.get("unique_name") or "")
    email = str(claims.get("email") or (upn if "@" in upn else ""))
    return Agent(oid=str(claims["oid"]), tid=tid, upn=upn, email=email, name=str(claims.get("name") or ""))


class TeamsTokenValidator:
    """Verifies Teams SSO access tokens; ``trusted_keys`` are checked locally, others via the JWKS."""

    def __init__(
        self,
        *,
        settings: AuthSettings,
        jwks_client: KeySource | None,
        trusted_keys: Mapping[str, Any] | None = None,
        client_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = settings.client_id if client_id is None else client_id
        self._jwks = jwks_client
        self._trusted = dict(trusted_keys or {})

    async def _key_for(self, kid: str) -> Any:
        if kid in self._trusted:
            return self._trusted[kid]
        if self._jwks is None:
            raise _unauthorized("The token was signed with an unknown key.", "unknown-key")
        from jwt import PyJWKClientConnectionError, PyJWKClientError, PyJWTError

        try:
            # PyJWKClient does blocking urllib I/O on a cache miss; keep it off the event loop.
            jwk = await asyncio.to_thread(self._jwks.get_signing_key, kid)
        except PyJWKClientConnectionError as exc:
            log.warning("JWKS fetch failed: %s", exc)
            raise _unavailable("The identity provider's signing keys could not be fetched; retry shortly.") from exc
        except PyJWKClientError as exc:
            if str(exc).startswith("Unable to find a signing key"):
                raise _unauthorized("The token was signed with an unknown key.", "unknown-key") from exc
            log.warning("JWKS unusable: %s", exc)
            raise _unavailable("The identity provider returned no usable signing keys; retry shortly.") from exc
        except PyJWTError as exc:
            log.warning("JWKS unusable: %s", exc)
            raise _unavailable("The identity provider returned no usable signing keys; retry shortly.") from exc
        return jwk.key

    async def verify(self, token: str) -> Agent:
        """The agent behind ``token``; a 401 :class:`Problem` says why not (503 when keys can't be fetched)."""
        import jwt

        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise _unauthorized("The bearer token is not a JWT.", "malformed-token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise _unauthorized("The bearer token is not a JWT.", "malformed-token") from exc
        # Refuse other algorithms before any key lookup: this stops alg:none and HS256-with-the-public-key.
        if header.get("alg") != "RS256":
            raise _unauthorized(f"Tokens must be signed with RS256, not {str(header.get('alg'))[:16]!r}.", "bad-alg")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthorized("The token header has no key id (kid).")
        if not self.client_id:
            raise _unavailable("Agent sign-in is not configured: set AAD_APP_CLIENT_ID.")
        key = await self._key_for(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                leeway=LEEWAY_SECONDS,
                # Audience and issuer have several valid forms; check_claims checks them.
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False, "verify_iss": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("The token has expired; sign in again.", "token-expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise _unauthorized("The token's signature does not verify.", "bad-signature") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"The token has no '{exc.claim}' claim.") from exc
        except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError) as exc:
            raise _unauthorized("The token is not valid yet.") from exc
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"The token is invalid: {exc}.") from exc
        return check_claims(claims, settings=self.settings, client_id=self.client_id)


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def make_jwks_client(*, settings: AuthSettings) -> PyJWKClient:
    """The JWKS client; ``ValueError`` unless the URL is https (plain http only on loopback)."""
    from jwt import PyJWKClient

    url = urlparse(settings.jwks_url)
    if not (url.scheme == "https" or (url.scheme == "http" and _is_loopback(url.hostname or ""))):
        raise ValueError("AAD_JWKS_URL must be an https URL.")
    # No per-kid LRU (cache_keys): it never expires, so a withdrawn key would stay trusted.
    return PyJWKClient(
        settings.jwks_url,
        cache_keys=False,
        cache_jwk_set=True,
        lifespan=settings.jwks_cache_seconds,
        timeout=settings.jwks_timeout_seconds,
        headers={"User-Agent": "support-desk"},
    )


def make_validator(*, settings: AuthSettings) -> TeamsTokenValidator:
    """The validator; in Development it also trusts the local dev identity key, never elsewhere."""
    tenant = settings.tenant_id.strip()
    if not settings.multi_tenant and not _GUID.match(tenant):
        raise ValueError("AAD_APP_TENANT_ID must be the tenant's GUID (or empty/common/organizations).")
    trusted: dict[str, Any] = {}
    client_id = settings.client_id
    if settings.is_development:
        from shared.identity.devidentity import DEV_CLIENT_ID, get_dev_identity

        dev = get_dev_identity()
        trusted[dev.kid] = dev.public_key
        client_id = client_id or DEV_CLIENT_ID
    return TeamsTokenValidator(
        settings=settings, jwks_client=make_jwks_client(settings=settings), trusted_keys=trusted, client_id=client_id
    )


@functools.cache
def get_validator() -> TeamsTokenValidator:
    """The worker's validator (its JWKS cache lives as long as the worker)."""
    return make_validator(settings=get_auth_settings())


def bearer_token(req: func.HttpRequest) -> str:
    """The token from ``Authorization: Bearer``; a 401 when absent or not a bearer credential."""
    header = req.headers.get("authorization")
    token = bearer_credential(header)
    if token is None and not (header or "").strip():
        raise _unauthorized("Sign in: send the Teams SSO token as 'Authorization: Bearer <token>'.", "missing-token")
    if token is None:
        raise _unauthorized("The Authorization header must be 'Bearer <token>'.", "malformed-token")
    return token


async def authenticate_agent(req: func.HttpRequest, *, validator: TeamsTokenValidator | None = None) -> Agent:
    """The agent who sent ``req``; raises a 401 (or 503) :class:`Problem` otherwise."""
    token = bearer_token(req)
    if validator is None:
        try:
            validator = get_validator()
        except ValueError as exc:
            log.error("agent sign-in misconfigured: %s", exc)
            raise _unavailable(f"Agent sign-in is misconfigured: {exc}") from exc
    return await validator.verify(token)
