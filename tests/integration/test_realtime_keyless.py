"""SignalR without keys: REST calls and client tokens with the managed identity (msal, fake endpoints)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.errors import Problem
from shared.identity import managed_identity
from shared.realtime.client import ENTRA_RESOURCE, RealtimeClient, RealtimeSettings, make_realtime, service_info
from tests.fakes.http_server import FakeServer, Recorded, Reply, json_reply
from tests.fakes.marketplace import IDENTITY_HEADER, FakeMarketplace

CLIENT_ID = "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"


@dataclass
class FakeSignalR:
    """The data plane of a service with local auth off: only Entra tokens for signalr.azure.com pass."""

    identity: FakeMarketplace
    refuse_tokens: bool = False
    sent: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def handle(self, request: Recorded) -> Reply:
        if request.path.startswith("/msi/token"):
            return self.identity.handle(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.identity.token_resources.get(token) != ENTRA_RESOURCE:
            return json_reply(401, {"code": "Unauthorized"})
        url = urlsplit(request.path)
        if url.path == "/api/hubs/supportdesk/:generateToken" and request.method == "POST":
            if self.refuse_tokens:
                return json_reply(403, {"code": "Forbidden"})
            query = parse_qs(url.query)
            return json_reply(200, {"token": f"client-{query['userId'][0]}-{query['minutesToExpire'][0]}"})
        if url.path.startswith("/api/v1/hubs/supportdesk/") and request.method == "POST":
            self.sent.append((url.path, request.json()))
            return 202, {}, b""
        return json_reply(404, {"code": "NotFound"})


@pytest.fixture()
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeSignalR, FakeServer]]:
    """A keyless SignalR Service and an identity endpoint serving one user-assigned identity."""
    fake = FakeSignalR(FakeMarketplace(client_id=CLIENT_ID))
    server = FakeServer(fake.handle).start()
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{server.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    managed_identity._client.cache_clear()
    yield fake, server
    managed_identity._client.cache_clear()
    server.stop()


def test_pushes_and_client_tokens_use_the_managed_identity(service: tuple[FakeSignalR, FakeServer]) -> None:
    fake, server = service
    client = RealtimeClient(service_info(server.url, CLIENT_ID), "SupportDesk")

    async def scenario() -> tuple[bool, dict[str, str]]:
        sent = await client.send_to_user("visitor-1", "message", [{"text": "hi"}])
        negotiated = await client.negotiate_async("visitor-1")
        await client.aclose()
        return sent, negotiated

    sent, negotiated = asyncio.run(scenario())
    pushed = {"target": "message", "arguments": [{"text": "hi"}]}
    assert sent and fake.sent == [("/api/v1/hubs/supportdesk/users/visitor-1", pushed)]
    assert negotiated == {"url": f"{server.url}/client/?hub=supportdesk", "accessToken": "client-visitor-1-60"}
    # One Entra token for the service, reused for both calls, from the user-assigned identity.
    assert fake.identity.token_requests == [{"api-version": "2019-08-01", "resource": ENTRA_RESOURCE,
                                             "client_id": CLIENT_ID}]  # fmt: skip


def test_no_client_token_is_a_503_the_widget_answers_by_polling(service: tuple[FakeSignalR, FakeServer]) -> None:
    fake, server = service
    fake.refuse_tokens = True
    client = RealtimeClient(service_info(server.url, CLIENT_ID), "supportdesk")
    with pytest.raises(Problem) as caught:
        asyncio.run(client.negotiate_async("visitor-1"))
    assert caught.value.status == 503 and caught.value.kind == "realtime-unavailable"


def test_the_service_uri_setting_makes_a_keyless_client_and_a_connection_string_wins() -> None:
    keyless = make_realtime(settings=RealtimeSettings.model_validate({
        "AzureSignalRConnectionString__serviceUri": "https://sigr-desk.service.signalr.net",
        "AZURE_CLIENT_ID": CLIENT_ID,
    }))  # fmt: skip
    assert keyless.enabled and keyless.info is not None and keyless.info.keyless
    assert keyless.info.identity_client_id == CLIENT_ID and keyless.info.client_base.endswith("signalr.net")
    keyed = make_realtime(settings=RealtimeSettings.model_validate({
        "AzureSignalRConnectionString__serviceUri": "https://sigr-desk.service.signalr.net",
        "SIGNALR_CONNECTION_STRING": "Endpoint=https://other.service.signalr.net;AccessKey=abc;Version=1.0;",
    }))  # fmt: skip
    assert keyed.info is not None and not keyed.info.keyless and keyed.info.endpoint.startswith("https://other")
