"""The app's managed identity through msal's real client against a fake App Service identity endpoint,
and the keyless Storage clients built on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from shared.config import Settings
from shared.identity import managed_identity
from shared.storage import clients
from tests.fakes.http_server import FakeServer
from tests.fakes.marketplace import IDENTITY_HEADER, FakeMarketplace

CLIENT_ID = "7b1d3c55-0e61-4f0e-8a8b-2f4b6c9d1e23"


@pytest.fixture()
def identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeMarketplace, FakeServer]]:
    """An App Service identity endpoint serving one user-assigned identity, as IDENTITY_ENDPOINT."""
    fake = FakeMarketplace(client_id=CLIENT_ID)
    server = fake.start()
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    managed_identity._client.cache_clear()  # msal's client (and its token cache) is per worker
    yield fake, server
    managed_identity._client.cache_clear()
    server.stop()


def test_a_token_for_an_sdk_scope_is_one_for_its_resource(identity: tuple[FakeMarketplace, FakeServer]) -> None:
    fake, _ = identity
    credential = managed_identity.ManagedIdentityCredential(CLIENT_ID)
    token = asyncio.run(credential.get_token("https://storage.azure.com/.default"))
    assert token.token.startswith("mi-token-") and token.expires_on > time.time() + 3000
    assert fake.token_requests[-1]["resource"] == "https://storage.azure.com"
    assert fake.token_requests[-1]["client_id"] == CLIENT_ID
    # msal keeps the token: the next call for the same resource does not ask the endpoint again.
    asyncio.run(credential.get_token("https://storage.azure.com/.default"))
    assert len(fake.token_requests) == 1


def test_a_wrong_identity_is_refused_without_leaking_anything(identity: tuple[FakeMarketplace, FakeServer]) -> None:
    with pytest.raises(managed_identity.ManagedIdentityUnavailable, match="refused") as caught:
        managed_identity.acquire_token("https://management.azure.com/", client_id="someone-else")
    assert "mi-token" not in str(caught.value)


def test_without_an_identity_endpoint_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token")  # nothing listens on port 9
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    managed_identity._client.cache_clear()
    with pytest.raises(managed_identity.ManagedIdentityUnavailable, match="endpoint failed"):
        managed_identity.acquire_token("https://storage.azure.com")
    managed_identity._client.cache_clear()


def test_storage_clients_are_keyless_when_only_service_uris_are_set() -> None:
    settings = Settings.model_validate({
        "AzureWebJobsStorage__tableServiceUri": "https://stdesk.table.core.windows.net/",
        "AzureWebJobsStorage__blobServiceUri": "https://stdesk.blob.core.windows.net/",
        "AzureWebJobsStorage__queueServiceUri": "https://stdesk.queue.core.windows.net/",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
    })  # fmt: skip
    assert settings.storage_connection_string == ""
    tables = clients.make_table_service(settings=settings)
    blobs = clients.make_blob_service(settings=settings)
    queue = clients.make_queue_client("outbox", settings=settings)
    assert tables.url.startswith("https://stdesk.table.core.windows.net")
    assert blobs.url.startswith("https://stdesk.blob.core.windows.net")
    assert queue.url.startswith("https://stdesk.queue.core.windows.net/outbox")
    for client in (tables, blobs, queue):
        credential = client.credential
        assert isinstance(credential, managed_identity.ManagedIdentityCredential)
        assert credential.client_id == CLIENT_ID
    with pytest.raises(ValueError, match="ServiceUri"):
        clients.make_table_service(settings=Settings.model_validate({}))
