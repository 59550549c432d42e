"""Real-time over the SignalR emulator: the real @microsoft/signalr client and shared.realtime.client pushes."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devhost.processes import ROOT
from devhost.signalr import Emulator
from shared.realtime.client import ConnectionInfo, RealtimeClient, negotiate, parse_connection_string, rest_token
from tests.fakes.http_server import FakeServer, Recorded, Reply, json_reply

HUB = "supportdesk"
RS = "\x1e"
DRIVER = ROOT / "tests" / "node" / "signalr_client.mjs"
FORGED_KEY = "not-the-access-key-not-the-access-key-0000"


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


class NodeClient:
    """The node driver as a subprocess; its JSON lines are collected by a reader thread."""

    def __init__(self, negotiate_base: str, targets: list[str], *, reconnect_ms: int | None = None) -> None:
        command = ["node", str(DRIVER), "--url", negotiate_base, "--targets", ",".join(targets)]
        if reconnect_ms is not None:
            command += ["--reconnect-ms", str(reconnect_ms)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.events.put(json.loads(line))

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """The first new event matching ``predicate``, polling until the deadline."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(event)
            if event.get("event") == "error":
                pytest.fail(f"client error: {event}")
            if predicate(event):
                return event
        pytest.fail(f"no matching event within {timeout}s; seen {self.seen}; stderr {self._stderr()}")

    def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next hub invocation the client received."""
        return self.wait_for(lambda e: e["event"] == "message", timeout)

    def command(self, **command: Any) -> None:
        """Send one JSON command to the driver."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def _stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "(running)"
        return self.process.stderr.read()

    def close(self) -> None:
        """Stop the client and reap the process."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.close()
                self.process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(5)


def _negotiate_route(info: Callable[[], ConnectionInfo]) -> Callable[[Recorded], Reply]:
    """The Functions negotiate stand-in: ``POST /api/negotiate?user=U`` -> ``{url, accessToken}``."""

    def route(request: Recorded) -> Reply:
        parts = urlsplit(request.path)
        if request.method != "POST" or parts.path != "/api/negotiate":
            return json_reply(404, {"title": "Not Found"})
        user = parse_qs(parts.query)["user"][0]
        return json_reply(200, negotiate(user, HUB, info=info()))

    return route


@pytest.fixture(scope="module")
def info(signalr: Emulator) -> ConnectionInfo:
    """The shared emulator's parsed connection string."""
    return parse_connection_string(signalr.connection_string)


@pytest.fixture(scope="module")
def negotiate_server(info: ConnectionInfo) -> Iterator[FakeServer]:
    """A negotiate endpoint for the shared emulator."""
    server = FakeServer(_negotiate_route(lambda: info)).start()
    yield server
    server.stop()


@pytest.fixture()
async def realtime(info: ConnectionInfo) -> AsyncIterator[RealtimeClient]:
    """A REST client for the shared emulator."""
    client = RealtimeClient(info, HUB)
    yield client
    await client.aclose()


@pytest.fixture()
def node_client(negotiate_server: FakeServer) -> Iterator[Callable[..., NodeClient]]:
    """Start connected @microsoft/signalr clients for a user; all are stopped after the test."""
    clients: list[NodeClient] = []

    def start(user: str, targets: list[str], **kwargs: Any) -> NodeClient:
        client = NodeClient(f"{negotiate_server.url}/api?user={user}", targets, **kwargs)
        clients.append(client)
        client.wait_for(lambda e: e["event"] == "connected")
        return client

    yield start
    for client in clients:
        client.close()


async def _raw_socket(emulator: Emulator, info: ConnectionInfo, user: str) -> tuple[ClientConnection, str]:
    """A handshaken raw WebSocket connection and its connection id."""
    grant = negotiate(user, HUB, info=info)
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{emulator.endpoint}/client/negotiate",
            params={"hub": HUB, "negotiateVersion": "1"},
            headers={"Authorization": f"Bearer {grant['accessToken']}"},
        )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    # Browsers can't set headers on a WebSocket, so the token rides in the query, as here.
    token = quote(grant["accessToken"], safe="")
    ws = await connect(
        f"ws://127.0.0.1:{emulator.port}/client/?hub={HUB}&id={body['connectionToken']}&access_token={token}"
    )
    await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
    assert await ws.recv(decode=True) == "{}" + RS
    return ws, body["connectionId"]


async def _next_frame(ws: ClientConnection, wanted_type: int, timeout: float = 5.0) -> dict[str, Any]:
    """The first hub message of ``wanted_type``, polling frames until the deadline."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(left):
                text = await ws.recv(decode=True)
        except TimeoutError:
            break
        for raw in str(text).split(RS):
            if raw and (message := json.loads(raw))["type"] == wanted_type:
                return message
    pytest.fail(f"no message of type {wanted_type} within {timeout}s")


def _rest(info: ConnectionInfo, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
    url = f"{info.server_base}/api/v1/hubs/{path}".rstrip("/")
    token = rest_token(info, url) if key is None else _forged(url, key)
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return httpx.request(method, url, headers=headers, timeout=5, **kwargs)


def _forged(audience: str, key: str) -> str:
    now = int(time.time())
    return jwt.encode({"aud": audience, "exp": now + 60, "asrs.s.uid": "mallory"}, key.encode(), algorithm="HS256")


# -- the real client ------------------------------------------------------------------------


async def test_send_to_user_reaches_the_real_client(node_client, realtime: RealtimeClient) -> None:
    user = _user()
    client = node_client(user, ["ChatMessageReceived"])
    assert await realtime.send_to_user(user, "ChatMessageReceived", [{"text": "hello"}, 2]) is True
    message = client.next_message()
    assert message == {"event": "message", "target": "ChatMessageReceived", "arguments": [{"text": "hello"}, 2]}


async def test_send_to_group_reaches_members_only(node_client, realtime: RealtimeClient) -> None:
    member, outsider, group = _user(), _user(), f"agents-{uuid.uuid4().hex[:8]}"
    member_client = node_client(member, ["SessionUpdated", "Marker"])
    outsider_client = node_client(outsider, ["SessionUpdated", "Marker"])
    assert await realtime.add_user_to_group(group, member) is True
    assert await realtime.send_to_group(group, "SessionUpdated", [{"state": "claimed"}]) is True
    assert member_client.next_message()["arguments"] == [{"state": "claimed"}]
    # Per-connection order is kept, so a later marker arriving first proves the group send skipped it.
    assert await realtime.send_to_user(outsider, "Marker", ["after-group-send"]) is True
    assert outsider_client.next_message()["target"] == "Marker"

    assert await realtime.remove_user_from_group(group, member) is True
    assert await realtime.send_to_group(group, "SessionUpdated", [{"state": "closed"}]) is True
    assert await realtime.send_to_user(member, "Marker", ["after-removal"]) is True
    assert member_client.next_message()["target"] == "Marker"


async def test_broadcast_reaches_every_client(node_client, realtime: RealtimeClient) -> None:
    clients = [node_client(_user(), ["Announcement"]) for _ in range(2)]
    assert await realtime.broadcast("Announcement", ["maintenance at noon"]) is True
    for client in clients:
        assert client.next_message()["arguments"] == ["maintenance at noon"]


def test_client_invocations_get_an_error_completion(node_client) -> None:
    client = node_client(_user(), [])
    client.command(cmd="invoke", target="SendMessage", args=["hi"])
    event = client.wait_for(lambda e: e["event"] in ("invoke-error", "invoked"))
    assert event["event"] == "invoke-error"
    assert "serverless" in event["message"]


async def test_client_reconnects_after_the_emulator_restarts(start_signalr: Callable[..., Emulator]) -> None:
    emulator = start_signalr()
    info = parse_connection_string(emulator.connection_string)
    server = FakeServer(_negotiate_route(lambda: info)).start()
    realtime = RealtimeClient(info, HUB)
    user = _user()
    client = NodeClient(f"{server.url}/api?user={user}", ["ChatMessageReceived"], reconnect_ms=200)
    try:
        first = client.wait_for(lambda e: e["event"] == "connected")
        emulator.restart()  # same port, empty state: the client must negotiate again
        client.wait_for(lambda e: e["event"] == "reconnecting")
        again = client.wait_for(lambda e: e["event"] == "reconnected", timeout=15)
        assert again["connectionId"] != first["connectionId"]
        assert await realtime.send_to_user(user, "ChatMessageReceived", ["after restart"]) is True
        assert client.next_message()["arguments"] == ["after restart"]
        assert sum(1 for r in server.requests if r.path.startswith("/api/negotiate")) >= 2
    finally:
        client.close()
        server.stop()
        await realtime.aclose()
        emulator.stop()


# -- the raw protocol -----------------------------------------------------------------------


async def test_pings_arrive_on_an_idle_connection(signalr: Emulator, info: ConnectionInfo) -> None:
    ws, _ = await _raw_socket(signalr, info, _user())
    async with ws:
        # The fixture's emulator pings every second: two pings inside 2.5 s, or the test fails.
        assert await _next_frame(ws, 6, timeout=2.5) == {"type": 6}
        assert await _next_frame(ws, 6, timeout=2.5) == {"type": 6}


async def test_rest_delete_sends_close_then_closes(signalr: Emulator, info: ConnectionInfo) -> None:
    ws, connection_id = await _raw_socket(signalr, info, _user())
    async with ws:
        assert _rest(info, "GET", f"{HUB}/connections/{connection_id}").status_code == 200
        assert _rest(info, "DELETE", f"{HUB}/connections/{connection_id}").status_code == 202
        assert await _next_frame(ws, 7) == {"type": 7}
        with pytest.raises(ConnectionClosed):
            await _next_frame(ws, 1)
    deadline = time.monotonic() + 5
    while _rest(info, "GET", f"{HUB}/connections/{connection_id}").status_code != 404:
        assert time.monotonic() < deadline, "the closed connection still exists"
        await asyncio.sleep(0.05)


async def test_connection_groups_and_exists_checks(signalr: Emulator, info: ConnectionInfo) -> None:
    user, group = _user(), f"g-{uuid.uuid4().hex[:8]}"
    ws, connection_id = await _raw_socket(signalr, info, user)
    async with ws:
        assert _rest(info, "GET", f"{HUB}/users/{user}").status_code == 200
        assert _rest(info, "GET", f"{HUB}/users/{_user()}").status_code == 404
        assert _rest(info, "GET", f"{HUB}/groups/{group}").status_code == 404
        assert _rest(info, "PUT", f"{HUB}/groups/{group}/connections/{connection_id}").status_code == 200
        assert _rest(info, "PUT", f"{HUB}/groups/{group}/connections/missing").status_code == 404
        assert _rest(info, "GET", f"{HUB}/groups/{group}").status_code == 200
        sent = _rest(info, "POST", f"{HUB}/groups/{group}", json={"target": "Hello", "arguments": [1]})
        assert sent.status_code == 202
        assert await _next_frame(ws, 1) == {"type": 1, "target": "Hello", "arguments": [1]}
        assert _rest(info, "DELETE", f"{HUB}/connections/{connection_id}/groups").status_code == 200
        assert _rest(info, "GET", f"{HUB}/groups/{group}").status_code == 404


async def test_user_group_membership_expires_with_ttl(signalr: Emulator, info: ConnectionInfo) -> None:
    user, group = _user(), f"g-{uuid.uuid4().hex[:8]}"
    assert _rest(info, "PUT", f"{HUB}/groups/{group}/users/{user}", params={"ttl": "1"}).status_code == 202
    assert _rest(info, "GET", f"{HUB}/users/{user}/groups/{group}").status_code == 200
    deadline = time.monotonic() + 5
    while _rest(info, "GET", f"{HUB}/groups/{group}/users/{user}").status_code != 404:
        assert time.monotonic() < deadline, "membership outlived its ttl"
        await asyncio.sleep(0.05)


async def test_wrong_handshake_protocol_is_refused(signalr: Emulator, info: ConnectionInfo) -> None:
    grant = negotiate(_user(), HUB, info=info)
    reply = httpx.post(
        f"{signalr.endpoint}/client/negotiate?hub={HUB}", headers={"Authorization": f"Bearer {grant['accessToken']}"}
    )
    ws = await connect(
        f"ws://127.0.0.1:{signalr.port}/client/?hub={HUB}&id={reply.json()['connectionToken']}",
        additional_headers={"Authorization": f"Bearer {grant['accessToken']}"},
    )
    async with ws:
        await ws.send(json.dumps({"protocol": "messagepack", "version": 1}) + RS)
        answer = json.loads(str(await ws.recv(decode=True)).rstrip(RS))
        assert "messagepack" in answer["error"]
        with pytest.raises(ConnectionClosed):
            await ws.recv()


def test_cors_echoes_the_origin_with_credentials(signalr: Emulator) -> None:
    origin = "https://customer.example"
    preflight = httpx.options(
        f"{signalr.endpoint}/client/negotiate?hub={HUB}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-signalr-user-agent",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "x-signalr-user-agent" in preflight.headers["access-control-allow-headers"]
    unauthorized = httpx.post(f"{signalr.endpoint}/client/negotiate?hub={HUB}", headers={"Origin": origin})
    assert unauthorized.status_code == 401  # even refusals carry CORS headers, so the browser can read them
    assert unauthorized.headers["access-control-allow-origin"] == origin


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "forged", "garbage"])
def test_negotiate_without_a_valid_token_is_401(signalr: Emulator, info: ConnectionInfo, token: str | None) -> None:
    headers = {}
    if token == "forged":
        headers["Authorization"] = f"Bearer {_forged(f'{info.client_base}/client/?hub={HUB}', FORGED_KEY)}"
    elif token == "garbage":
        headers["Authorization"] = "Bearer not.a.jwt"
    reply = httpx.post(f"{signalr.endpoint}/client/negotiate", params={"hub": HUB}, headers=headers)
    assert reply.status_code == 401


def test_rest_with_a_forged_or_missing_token_is_401(info: ConnectionInfo) -> None:
    body = {"target": "Hello", "arguments": []}
    assert _rest(info, "POST", HUB, key=FORGED_KEY, json=body).status_code == 401
    url = f"{info.server_base}/api/v1/hubs/{HUB}"
    assert httpx.post(url, json=body).status_code == 401
    assert _rest(info, "POST", HUB, json=body).status_code == 202  # the same call, properly signed


def test_rest_refuses_bad_names_and_bodies(info: ConnectionInfo) -> None:
    body = {"target": "Hello", "arguments": []}
    assert _rest(info, "POST", "1badhub", json=body).status_code == 400
    assert _rest(info, "POST", f"{HUB}/groups/has%20space", json=body).status_code == 400
    assert _rest(info, "POST", HUB, content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    assert _rest(info, "POST", HUB, json={"arguments": []}).status_code == 400
    assert httpx.get(f"{info.server_base}/api/v1/health").status_code == 200


async def test_unknown_or_reused_connection_ids_are_refused(signalr: Emulator, info: ConnectionInfo) -> None:
    with pytest.raises(InvalidStatus) as unknown:
        await connect(f"ws://127.0.0.1:{signalr.port}/client/?hub={HUB}&id=no-such-token")
    assert unknown.value.response.status_code == 404

    grant = negotiate(_user(), HUB, info=info)
    headers = {"Authorization": f"Bearer {grant['accessToken']}"}
    token = httpx.post(f"{signalr.endpoint}/client/negotiate?hub={HUB}", headers=headers).json()["connectionToken"]
    url = f"ws://127.0.0.1:{signalr.port}/client/?hub={HUB}&id={token}"
    with pytest.raises(InvalidStatus) as forged:
        await connect(f"{url}&access_token={_forged('x', FORGED_KEY)}")
    assert forged.value.response.status_code == 401
    async with await connect(f"{url}&access_token={grant['accessToken']}"):
        with pytest.raises(InvalidStatus) as second:
            await connect(f"{url}&access_token={grant['accessToken']}")
        assert second.value.response.status_code == 409


async def test_pushes_to_a_stopped_emulator_return_false(
    start_signalr: Callable[..., Emulator], caplog: pytest.LogCaptureFixture
) -> None:
    emulator = start_signalr()
    info = parse_connection_string(emulator.connection_string)
    emulator.stop()
    client = RealtimeClient(info, HUB, timeout=1)
    try:
        assert await client.send_to_user("someone", "Hello", []) is False
        assert await client.send_to_group("group", "Hello", []) is False
        assert await client.broadcast("Hello", []) is False
        assert await client.add_user_to_group("group", "someone") is False
    finally:
        await client.aclose()
    assert "failed" in caplog.text
    assert "Bearer" not in caplog.text and info.access_key not in caplog.text
