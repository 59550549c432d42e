"""Tokens from this app's managed identity, through msal: for Azure Resource Manager, the Marketplace, Storage.

On Azure Functions the platform sets ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``; msal's
``ManagedIdentityClient`` asks that endpoint (the App Service protocol) and keeps each token until
five minutes before it expires. ``AZURE_CLIENT_ID`` picks a user-assigned identity (what the
template gives the app); empty means the system-assigned one.
https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import msal
    from azure.core.credentials import AccessToken


class ManagedIdentityUnavailable(RuntimeError):
    """No token: no identity endpoint here, or it refused. The message is safe to log (no token in it)."""


@functools.cache
def _client(client_id: str) -> msal.ManagedIdentityClient:
    # msal and requests are imported by the first token request, not by every cold start.
    import msal
    import requests

    identity: msal.ManagedIdentity = (
        msal.UserAssignedManagedIdentity(client_id=client_id) if client_id else msal.SystemAssignedManagedIdentity()
    )
    return msal.ManagedIdentityClient(identity, http_client=requests.Session())


def acquire_token(resource: str, *, client_id: str = "") -> tuple[str, int]:
    """``(access token, expires_on epoch seconds)`` for ``resource``; ``ManagedIdentityUnavailable`` otherwise."""
    try:
        result: dict[str, Any] = _client(client_id.strip()).acquire_token_for_client(resource=resource) or {}
    except Exception as exc:  # msal raises whatever its HTTP client raises (no endpoint, refused, bad JSON)
        raise ManagedIdentityUnavailable(f"managed identity endpoint failed: {type(exc).__name__}") from None
    token = result.get("access_token")
    if not token:
        raise ManagedIdentityUnavailable(f"managed identity refused: {result.get('error', 'no token')}")
    return str(token), int(time.time()) + int(result.get("expires_in", 0) or 0)


async def get_token(resource: str, *, client_id: str = "") -> str:
    """An access token for ``resource`` (msal is synchronous: it runs in a worker thread)."""
    token, _ = await asyncio.to_thread(acquire_token, resource, client_id=client_id)
    return token


def resource_of(scope: str) -> str:
    """The resource an Azure SDK scope names: ``https://storage.azure.com/.default`` -> ``https://storage.azure.com``."""
    return scope.removesuffix("/.default")


class ManagedIdentityCredential:
    """An async token credential for the Azure SDKs (``AsyncTokenCredential``), backed by msal."""

    def __init__(self, client_id: str = "") -> None:
        self.client_id = client_id

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        """A token for the first scope (the SDKs ask for one ``<resource>/.default`` scope)."""
        from azure.core.credentials import AccessToken

        if not scopes:
            raise ValueError("a scope is required")
        token, expires_on = await asyncio.to_thread(acquire_token, resource_of(scopes[0]), client_id=self.client_id)
        return AccessToken(token, expires_on)

    async def close(self) -> None:
        """Nothing to release: msal's client is shared by the worker."""

    async def __aenter__(self) -> ManagedIdentityCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()
