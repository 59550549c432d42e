"""Real-time pushes through Azure SignalR Service in serverless mode: negotiate and the REST API v1.

The client gets ``{url, accessToken}`` from our negotiate function and connects to the service;
the app pushes through the data-plane REST API, each request signed with its own short JWT.
https://github.com/Azure/azure-signalr/blob/dev/docs/rest-api.md

Without a connection string, ``AzureSignalRConnectionString__serviceUri`` (the Functions
extension's identity-based setting) makes the app sign in with its managed identity instead, so
the service can keep local (key) auth off: REST calls carry a Microsoft Entra token for
``https://signalr.azure.com`` (the SignalR Service Owner role), and clients' tokens come from the
service's ``:generateToken`` API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    import httpx

# PyJWT (which pulls in cryptography) and httpx are imported where a token is minted or a request
# sent: importing this module is on every cold start, pushing is not (~50 ms each).

log = logging.getLogger(__name__)

DEFAULT_HUB = "supportdesk"
NEGOTIATE_TTL_SECONDS = 3600
# REST tokens are minted per request, so they only need to outlive the request itself.
_REST_TOKEN_SECONDS = 300
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RealtimeSettings(BaseSettings):
    """The SignalR app settings (kept with the code that reads them, like the LLM and auth settings)."""

    # Built on first use (get_realtime), not on every cold start.
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", defer_build=True)

    connection_string: str = Field(
        default="",
        validation_alias=AliasChoices("SIGNALR_CONNECTION_STRING", "AzureSignalRConnectionString"),
    )
    hub: str = Field(default=DEFAULT_HUB, validation_alias="SIGNALR_HUB")
    timeout_seconds: float = Field(default=3.0, validation_alias="SIGNALR_TIMEOUT_SECONDS")
    # Keyless: the service's URI, and the managed identity that signs in (empty: system-assigned).
    service_uri: str = Field(default="", validation_alias="AzureSignalRConnectionString__serviceUri")
    identity_client_id: str = Field(
        default="", validation_alias=AliasChoices("AzureSignalRConnectionString__clientId", "AZURE_CLIENT_ID")
    )


@dataclass(frozen=True)
class ConnectionInfo:
    """A parsed SignalR connection string; the bases have no trailing slash."""

    endpoint: str
    access_key: str
    port: int
    client_base: str
    server_base: str
    # No access key: sign in with the managed identity (this user-assigned one, or the system-assigned one).
    identity_client_id: str = ""

    @property
    def keyless(self) -> bool:
        """True when requests carry Microsoft Entra tokens instead of tokens signed with the access key."""
        return not self.access_key

    def __repr__(self) -> str:
        # The access key signs every token: keep it out of reprs, tracebacks and logs.
        return f"ConnectionInfo(endpoint={self.endpoint!r}, port={self.port}, access_key='***')"


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if _DEFAULT_PORTS.get(parts.scheme) == port else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _checked_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"SignalR connection string: {name} must be an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"SignalR connection string: {name} has a bad port") from exc
    return value.rstrip("/")


def parse_connection_string(text: str) -> ConnectionInfo:
    """Parse ``Endpoint=...;AccessKey=...;Version=1.0;[Port=...]``; ``ValueError`` when unusable.

    Keys are case-insensitive; ``Port`` defaults to the scheme's; ``ClientEndpoint`` and
    ``ServerEndpoint`` override where clients and the REST API go.
    https://learn.microsoft.com/azure/azure-signalr/concept-connection-string
    """
    values: dict[str, str] = {}
    for piece in text.split(";"):
        if not piece.strip():
            continue
        key, sep, value = piece.partition("=")  # values (base64 keys) may themselves hold '='
        key = key.strip().lower()
        if not sep or not key:
            raise ValueError("SignalR connection string: every part must be key=value")
        if key in values:
            raise ValueError(f"SignalR connection string: duplicate key {key!r}")
        values[key] = value.strip()
    if "endpoint" not in values:
        raise ValueError("SignalR connection string: Endpoint is missing")
    endpoint = _checked_url("Endpoint", values["endpoint"])
    if values.get("version", "1.0") != "1.0":
        raise ValueError("SignalR connection string: only Version=1.0 is supported")
    access_key = values.get("accesskey", "")
    if not access_key:
        # AuthType=azure* (Entra ID) needs a credential we don't carry; say so rather than fail later.
        auth = values.get("authtype")
        raise ValueError(
            f"SignalR connection string: AuthType={auth} is not supported, use an AccessKey"
            if auth
            else "SignalR connection string: AccessKey is missing"
        )
    scheme = urlsplit(endpoint).scheme
    if "port" in values:
        try:
            port = int(values["port"])
        except ValueError:
            raise ValueError("SignalR connection string: Port must be a number") from None
        if not 0 < port < 65536:
            raise ValueError("SignalR connection string: Port is out of range")
    else:
        port = urlsplit(endpoint).port or _DEFAULT_PORTS[scheme]
    base = _with_port(endpoint, port)
    client_base = _checked_url("ClientEndpoint", values["clientendpoint"]) if "clientendpoint" in values else base
    server_base = _checked_url("ServerEndpoint", values["serverendpoint"]) if "serverendpoint" in values else base
    return ConnectionInfo(endpoint, access_key, port, client_base, server_base)


def _token(info: ConnectionInfo, audience: str, ttl: float, claims: dict[str, Any] | None = None) -> str:
    import jwt

    now = int(time.time())
    payload = {"aud": audience, "iat": now, "nbf": now, "exp": now + int(ttl), **(claims or {})}
    # The service verifies HS256 keyed by the UTF-8 bytes of the AccessKey string.
    return jwt.encode(payload, info.access_key.encode("utf-8"), algorithm="HS256")


# Entra ID tokens for the service's data plane; :generateToken is in its REST API 2023-07-01.
ENTRA_RESOURCE = "https://signalr.azure.com"
GENERATE_TOKEN_API_VERSION = "2023-07-01"


def service_info(service_uri: str, identity_client_id: str = "") -> ConnectionInfo:
    """The keyless ``ConnectionInfo`` of ``AzureSignalRConnectionString__serviceUri``; ``ValueError`` when bad."""
    endpoint = _checked_url("serviceUri", service_uri.strip())
    scheme = urlsplit(endpoint).scheme
    port = urlsplit(endpoint).port or _DEFAULT_PORTS[scheme]
    base = _with_port(endpoint, port)
    return ConnectionInfo(endpoint, "", port, base, base, identity_client_id.strip())


def client_url(info: ConnectionInfo, hub: str) -> str:
    """Where a client connects for ``hub``; also the negotiate token's audience."""
    return f"{info.client_base}/client/?hub={quote(hub.lower(), safe='')}"


def negotiate(
    user_id: str,
    hub: str | None = None,
    ttl: float = NEGOTIATE_TTL_SECONDS,
    *,
    info: ConnectionInfo | None = None,
) -> dict[str, str]:
    """The ``{url, accessToken}`` a Functions negotiate returns; ``RuntimeError`` when unconfigured."""
    if info is None or hub is None:
        client = get_realtime()
        info = info or client.info
        hub = hub or client.hub
    if info is None:
        raise RuntimeError("SignalR is not configured (SIGNALR_CONNECTION_STRING is empty)")
    if info.keyless:
        raise RuntimeError("a keyless SignalR connection negotiates through the service: use negotiate_async")
    url = client_url(info, hub)
    # Emit both user claims: the SDK and emulator read asrs.s.uid, the docs name nameid.
    token = _token(info, url, ttl, {"asrs.s.uid": user_id, "nameid": user_id})
    return {"url": url, "accessToken": token}


def rest_token(info: ConnectionInfo, url: str, ttl: float = _REST_TOKEN_SECONDS) -> str:
    """A REST API token: ``aud`` is the exact request URL without its query."""
    return _token(info, url.split("?", 1)[0].rstrip("/"), ttl)


class RealtimeClient:
    """Pushes to one hub through the REST API; failures are logged and return False, never raise."""

    def __init__(
        self,
        info: ConnectionInfo | None,
        hub: str = DEFAULT_HUB,
        *,
        timeout: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.info = info
        # The service treats hub names case-insensitively and the Functions extension lowercases them.
        self.hub = hub.lower()
        self._timeout = timeout  # seconds: the httpx.Timeout is made with the client, httpx being lazy
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def enabled(self) -> bool:
        """True when a connection string is configured."""
        return self.info is not None

    def negotiate(self, user_id: str, ttl: float = NEGOTIATE_TTL_SECONDS) -> dict[str, str]:
        """The ``{url, accessToken}`` for ``user_id`` on this client's hub."""
        return negotiate(user_id, self.hub, ttl, info=self.info)

    async def negotiate_async(self, user_id: str, ttl: float = NEGOTIATE_TTL_SECONDS) -> dict[str, str]:
        """Like :meth:`negotiate`; a keyless connection asks the service for the client's token.

        A 503 ``realtime-unavailable`` problem when the service gives none (the client polls instead).
        """
        if self.info is None or not self.info.keyless:
            return self.negotiate(user_id, ttl)
        params = {"userId": user_id, "minutesToExpire": str(max(1, int(ttl // 60))),
                  "api-version": GENERATE_TOKEN_API_VERSION}  # fmt: skip
        answer = await self._request("POST", f"{self._hub_base('/api/hubs')}/:generateToken", None, params)
        token = answer.json().get("token") if answer is not None and answer.is_success else None
        if not isinstance(token, str) or not token:
            from shared.errors import Problem

            raise Problem(503, "Real-time messaging is unreachable; poll for messages.", kind="realtime-unavailable")
        return {"url": client_url(self.info, self.hub), "accessToken": token}

    async def send_to_user(self, user: str, target: str, args: list[Any]) -> bool:
        """Invoke ``target`` on every connection of ``user``."""
        return await self._call("POST", f"users/{_segment(user)}", {"target": target, "arguments": args})

    async def send_to_group(self, group: str, target: str, args: list[Any]) -> bool:
        """Invoke ``target`` on every connection in ``group``."""
        return await self._call("POST", f"groups/{_segment(group)}", {"target": target, "arguments": args})

    async def send_to_connection(self, connection_id: str, target: str, args: list[Any]) -> bool:
        """Invoke ``target`` on one connection."""
        path = f"connections/{_segment(connection_id)}"
        return await self._call("POST", path, {"target": target, "arguments": args})

    async def broadcast(self, target: str, args: list[Any]) -> bool:
        """Invoke ``target`` on every connection of the hub."""
        return await self._call("POST", "", {"target": target, "arguments": args})

    async def add_user_to_group(self, group: str, user: str, ttl: int | None = None) -> bool:
        """Add ``user`` (all their connections, now and later) to ``group``, for ``ttl`` seconds if given."""
        params = {"ttl": str(ttl)} if ttl is not None else None
        return await self._call("PUT", f"groups/{_segment(group)}/users/{_segment(user)}", params=params)

    async def remove_user_from_group(self, group: str, user: str) -> bool:
        """Remove ``user`` from ``group``."""
        return await self._call("DELETE", f"groups/{_segment(group)}/users/{_segment(user)}")

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> bool:
        if self.info is None:
            log.debug("SignalR is not configured; %s %s skipped", method, path or "broadcast")
            return False
        url = self._hub_base("/api/v1/hubs")
        url = f"{url}/{path}" if path else url
        response = await self._request(method, url, body, params)
        if response is None:
            return False
        if not response.is_success:
            log.warning("SignalR %s %s answered %s", method, path or "broadcast", response.status_code)
            return False
        return True

    def _hub_base(self, prefix: str) -> str:
        assert self.info is not None
        return f"{self.info.server_base}{prefix}/{quote(self.hub, safe='')}"

    async def _authorization(self, url: str) -> str:
        assert self.info is not None
        if not self.info.keyless:
            return f"Bearer {rest_token(self.info, url)}"
        from shared.identity import managed_identity

        return f"Bearer {await managed_identity.get_token(ENTRA_RESOURCE, client_id=self.info.identity_client_id)}"

    async def _request(
        self, method: str, url: str, body: dict[str, Any] | None, params: dict[str, str] | None
    ) -> httpx.Response | None:
        """The service's answer, or None when it (or the identity) could not be reached."""
        import httpx

        from shared.identity.managed_identity import ManagedIdentityUnavailable

        try:
            headers = {"Authorization": await self._authorization(url)}
        except ManagedIdentityUnavailable as exc:
            log.warning("SignalR %s skipped: %s", method, exc)
            return None
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            # Pooled connections belong to one event loop: build on first use, and again if the loop changed.
            timeout = httpx.Timeout(self._timeout, connect=min(self._timeout, 1.0))
            self._http = httpx.AsyncClient(timeout=timeout, transport=self._transport)
            self._loop = loop
        try:
            return await self._http.request(method, url, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("SignalR %s %s failed: %s", method, url.rsplit("/", 1)[-1], type(exc).__name__)
            return None


def _segment(value: str) -> str:
    # Ids become path segments: encode everything, so '/', '?' or '#' can't change the route.
    return quote(value, safe="")


def make_realtime(*, settings: RealtimeSettings) -> RealtimeClient:
    """Build the client; disabled when neither a connection string nor a service URI is set, ``ValueError``
    when malformed. A connection string wins over the keyless service URI."""
    info = parse_connection_string(settings.connection_string) if settings.connection_string else None
    if info is None and settings.service_uri:
        info = service_info(settings.service_uri, settings.identity_client_id)
    return RealtimeClient(info, settings.hub, timeout=settings.timeout_seconds)


_client: RealtimeClient | None = None


def get_realtime() -> RealtimeClient:
    """The worker's client, built once from the app settings."""
    global _client
    if _client is None:
        from shared.config import get_settings

        _client = make_realtime(settings=get_settings().realtime)
    return _client


def set_realtime(client: RealtimeClient | None) -> RealtimeClient | None:
    """Swap the worker's client (tests); ``None`` rebuilds from settings on next use. Returns the old one."""
    global _client
    previous, _client = _client, client
    return previous
