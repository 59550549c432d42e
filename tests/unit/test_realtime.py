"""shared.realtime.client without I/O: connection strings, negotiate and REST tokens, failure handling."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import httpx
import jwt
import pytest

from devhost.signalr.hub import HubState
from shared.config import get_settings
from shared.realtime import client as realtime
from shared.realtime.client import RealtimeClient, negotiate, parse_connection_string

KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"
CONN = f"Endpoint=https://desk.service.signalr.net;AccessKey={KEY};Version=1.0;"


def _claims(token: str, audience: str) -> dict:
    return jwt.decode(token, KEY.encode("utf-8"), algorithms=["HS256"], audience=audience)


# -- connection strings ---------------------------------------------------------------------


def test_parse_defaults_the_port_from_the_scheme() -> None:
    https = parse_connection_string(CONN)
    assert (https.endpoint, https.access_key, https.port) == ("https://desk.service.signalr.net", KEY, 443)
    assert https.client_base == https.server_base == "https://desk.service.signalr.net"
    http = parse_connection_string(f"Endpoint=http://localhost;AccessKey={KEY}")
    assert http.port == 80 and http.server_base == "http://localhost"


def test_parse_keys_are_case_insensitive_and_port_overrides() -> None:
    info = parse_connection_string(f"endpoint=http://localhost/;PORT=8888;accesskey={KEY};VERSION=1.0;")
    assert info.port == 8888
    assert info.server_base == info.client_base == "http://localhost:8888"
    assert info.endpoint == "http://localhost"


def test_parse_keeps_equals_signs_in_values_and_reads_a_port_in_the_endpoint() -> None:
    info = parse_connection_string("Endpoint=http://127.0.0.1:9999;AccessKey=abc==")
    assert info.access_key == "abc==" and info.port == 9999 and info.server_base == "http://127.0.0.1:9999"


def test_parse_client_and_server_endpoint_overrides() -> None:
    info = parse_connection_string(
        f"{CONN}ClientEndpoint=https://chat.example.com/;ServerEndpoint=http://private.internal:8080"
    )
    assert info.client_base == "https://chat.example.com"
    assert info.server_base == "http://private.internal:8080"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Endpoint is missing"),
        (f"AccessKey={KEY}", "Endpoint is missing"),
        ("Endpoint=https://x.service.signalr.net;Version=1.0", "AccessKey is missing"),
        ("Endpoint=https://x.service.signalr.net;AuthType=azure.msi", "AuthType=azure.msi"),
        (f"Endpoint=ftp://x;AccessKey={KEY}", "http(s) URL"),
        (f"Endpoint=localhost;AccessKey={KEY}", "http(s) URL"),
        (f"Endpoint=http://x;AccessKey={KEY};Port=eighty", "Port must be a number"),
        (f"Endpoint=http://x;AccessKey={KEY};Port=70000", "out of range"),
        (f"Endpoint=http://x;AccessKey={KEY};Version=2.0", "Version=1.0"),
        (f"Endpoint=http://x;AccessKey={KEY};endpoint=http://y", "duplicate"),
        (f"Endpoint=http://x;AccessKey={KEY};garbage", "key=value"),
        (f"Endpoint=http://x;AccessKey={KEY};ClientEndpoint=nope", "ClientEndpoint"),
    ],
)
def test_parse_refuses_bad_strings(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_connection_string(text)
    assert fragment in str(error.value)


def test_connection_info_repr_hides_the_key() -> None:
    assert KEY not in repr(parse_connection_string(CONN))


# -- tokens ---------------------------------------------------------------------------------


def test_negotiate_token_targets_the_client_url() -> None:
    info = parse_connection_string(f"{CONN}ClientEndpoint=https://chat.example.com")
    before = int(time.time())
    grant = negotiate("visitor-1", "SupportDesk", 600, info=info)
    assert grant["url"] == "https://chat.example.com/client/?hub=supportdesk"
    claims = _claims(grant["accessToken"], grant["url"])
    assert claims["asrs.s.uid"] == claims["nameid"] == "visitor-1"
    assert claims["aud"] == grant["url"]
    assert before <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(grant["accessToken"])["alg"] == "HS256"


def test_negotiate_token_is_keyed_by_the_access_key() -> None:
    grant = negotiate("u", "hub", info=parse_connection_string(CONN))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            grant["accessToken"], b"another-key-another-key-another-key", algorithms=["HS256"], audience=grant["url"]
        )


@pytest.fixture()
def recording() -> Callable[..., tuple[RealtimeClient, list[httpx.Request]]]:
    """A client whose requests land in a list and get ``status`` back (or raise ``error``)."""

    def build(status: int = 202, error: Exception | None = None) -> tuple[RealtimeClient, list[httpx.Request]]:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            if error is not None:
                raise error
            return httpx.Response(status)

        client = RealtimeClient(parse_connection_string(CONN), "SupportDesk", transport=httpx.MockTransport(handler))
        return client, seen

    return build


async def test_rest_token_audience_is_the_url_without_query(recording) -> None:
    client, seen = recording()
    assert await client.add_user_to_group("agents", "agent 7/x", ttl=30) is True
    request = seen[0]
    assert request.method == "PUT"
    assert request.url.params["ttl"] == "30"
    base = "https://desk.service.signalr.net/api/v1/hubs/supportdesk"
    expected = f"{base}/groups/agents/users/agent%207%2Fx"
    assert str(request.url).split("?")[0] == expected
    token = request.headers["authorization"].removeprefix("Bearer ")
    claims = _claims(token, expected)
    assert claims["exp"] > time.time() and "asrs.s.uid" not in claims
    await client.aclose()


async def test_sends_use_the_rest_paths_and_body(recording) -> None:
    client, seen = recording()
    assert await client.send_to_user("visitor-1", "ChatMessageReceived", [{"text": "hi"}])
    assert await client.send_to_group("agents", "SessionUpdated", [1])
    assert await client.broadcast("Announcement", [])
    assert await client.remove_user_from_group("agents", "a1")
    base = "https://desk.service.signalr.net/api/v1/hubs/supportdesk"
    assert [(r.method, str(r.url)) for r in seen] == [
        ("POST", f"{base}/users/visitor-1"),
        ("POST", f"{base}/groups/agents"),
        ("POST", base),
        ("DELETE", f"{base}/groups/agents/users/a1"),
    ]
    assert json.loads(seen[0].content) == {"target": "ChatMessageReceived", "arguments": [{"text": "hi"}]}
    assert seen[0].headers["content-type"] == "application/json"
    for request in seen:
        _claims(request.headers["authorization"].removeprefix("Bearer "), str(request.url).split("?")[0])
    await client.aclose()


@pytest.mark.parametrize(("status", "error"), [(500, None), (401, None), (202, httpx.ConnectError("refused"))])
async def test_failed_pushes_return_false_and_log_no_token(
    recording, caplog: pytest.LogCaptureFixture, status: int, error: Exception | None
) -> None:
    client, seen = recording(status, error)
    with caplog.at_level(logging.WARNING, logger="shared.realtime.client"):
        assert await client.send_to_user("u", "T", []) is False
    token = seen[0].headers["authorization"].removeprefix("Bearer ")
    assert caplog.records and token not in caplog.text and KEY not in caplog.text
    await client.aclose()


async def test_unconfigured_client_is_a_no_op() -> None:
    client = RealtimeClient(None)
    assert client.enabled is False
    assert await client.send_to_user("u", "T", []) is False
    assert await client.broadcast("T", []) is False
    with pytest.raises(RuntimeError):
        client.negotiate("u")


def test_get_realtime_reads_settings_and_can_be_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = realtime.set_realtime(None)
    try:
        monkeypatch.setenv("SIGNALR_CONNECTION_STRING", f"Endpoint=http://localhost;Port=8888;AccessKey={KEY}")
        monkeypatch.setenv("SIGNALR_HUB", "Desk")
        get_settings.cache_clear()  # settings are read once per worker: a new worker, as it were
        built = realtime.get_realtime()
        assert built is realtime.get_realtime()
        assert built.info is not None and built.info.port == 8888 and built.hub == "desk"
        replacement = RealtimeClient(None)
        realtime.set_realtime(replacement)
        assert realtime.get_realtime() is replacement
        monkeypatch.setenv("SIGNALR_CONNECTION_STRING", "Endpoint=nonsense")
        get_settings.cache_clear()
        realtime.set_realtime(None)
        with pytest.raises(ValueError):
            realtime.get_realtime()
    finally:
        realtime.set_realtime(previous)
        get_settings.cache_clear()


# -- the emulator's group bookkeeping (pure) --------------------------------------------------


def test_group_sends_reach_user_members_and_connection_members() -> None:
    state = HubState()
    by_user = state.attach(state.negotiate("desk", "alice"))
    by_connection = state.attach(state.negotiate("desk", "bob"))
    outsider = state.attach(state.negotiate("desk", "carol"))
    state.add_user_to_group("desk", "agents", "alice", ttl=None)
    state.add_connection_to_group(by_connection, "agents")
    members = {c.connection_id for c in state.group_connections("desk", "agents")}
    assert members == {by_user.connection_id, by_connection.connection_id}
    assert outsider.connection_id not in members
    assert state.deliver(state.group_connections("desk", "agents"), "T", [], {by_user.connection_id}) == 1


def test_user_membership_with_zero_ttl_has_expired() -> None:
    state = HubState()
    state.add_user_to_group("desk", "agents", "alice", ttl=0)
    assert state.user_in_group("desk", "agents", "alice") is False
