"""Outbound webhooks over real HTTP: a receiver verifies every delivery with ``standardwebhooks``' own verify.

The product runs on an Azurite of its own (other hosts of the run would also deliver to these endpoints
otherwise), with private targets allowed (the receiver is on loopback) and a retry schedule of seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from devhost.azurite import start_azurite
from tests.conftest import Host
from tests.fakes.http_server import FakeServer, Recorded, Reply
from tests.integration.test_agents import agent_token
from tests.support import ADMIN_KEY, eventually, host_env, new_visitor, say, settled

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class Receiver:
    """A webhook receiver: answers per path from a script, verifies each request with the path's secrets."""

    secrets: dict[str, list[str]] = field(default_factory=dict)
    script: dict[str, list[Reply]] = field(default_factory=dict)  # replies in turn; the last one repeats
    verified: dict[str, list[tuple[float, dict[str, str], Any]]] = field(default_factory=dict)
    unverified: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Recorded) -> Reply:
        path = request.path
        try:
            payload = Webhook(self.secrets[path][0]).verify(request.body, request.headers)
        except (KeyError, WebhookVerificationError) as exc:
            self.unverified.append(f"{path}: {exc!r}")
            return 400, {}, b"bad signature"
        with self.lock:
            self.verified.setdefault(path, []).append((time.monotonic(), dict(request.headers), payload))
            replies = self.script.get(path) or [(200, {}, b"ok")]
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def got(self, path: str) -> list[Any]:
        """The verified payloads sent to ``path``, in arrival order."""
        return [payload for _, _, payload in self.verified.get(path, [])]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, FakeServer]]:
    """The receiving HTTP server."""
    state = Receiver()
    server = FakeServer(state.handle).start()
    yield state, server
    server.stop()


@pytest.fixture(scope="module")
def hooks_host(start_host: Callable[..., Host]) -> Iterator[Host]:
    """The product on an Azurite of its own, delivering to loopback, retrying within seconds."""
    azurite = start_azurite()
    env = {"WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_RETRY_SCHEDULE": "1,2,3,4,5,6"}
    host = start_host(host_env(azurite, **env))
    host.azurite = azurite  # type: ignore[attr-defined]
    yield host
    azurite.stop()


@pytest.fixture()
def api(hooks_host: Host) -> Iterator[httpx.Client]:
    """A client of the webhooks host."""
    with hooks_host.client() as client:
        yield client


def register(api: httpx.Client, receiver: tuple[Receiver, FakeServer], path: str, **fields: Any) -> dict[str, Any]:
    """Register ``path`` of the receiver as an endpoint and teach the receiver its secret."""
    state, server = receiver
    response = api.post("/webhooks", json={"url": server.url + path, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_")
    state.secrets[path] = [created["secret"]]
    return dict(created)


def test_a_conversation_is_delivered_signed_to_every_subscriber_by_its_filter(
    api: httpx.Client, hooks_host: Host, receiver: tuple[Receiver, FakeServer]
) -> None:
    state, _ = receiver
    everything = register(api, receiver, "/all", description="CRM")
    handoffs = register(api, receiver, "/handoffs", events=["session.handoff_requested", "session.closed"])
    assert "secret" not in api.get(f"/webhooks/{everything['id']}", headers=ADMIN).json()  # shown once
    listed = api.get("/webhooks", headers=ADMIN).json()["endpoints"]
    assert {e["id"] for e in listed} >= {everything["id"], handoffs["id"]}
    assert all("secret" not in e for e in listed)

    visitor = new_visitor(api)
    assert say(api, visitor, "How long does shipping take?").status_code == 200
    assert say(api, visitor, "talk to a human please").json()["status"] == "human_requested"
    agent = agent_token(api, "Hook Agent")
    assert api.post(f"/agent/sessions/{visitor.session_id}/claim", headers=agent).status_code == 200
    sent = api.post(f"/agent/sessions/{visitor.session_id}/message", json={"content": "Hi, Ada here"}, headers=agent)
    assert sent.status_code == 200, sent.text
    assert api.post(f"/agent/sessions/{visitor.session_id}/close", headers=agent).status_code == 200
    rated = api.post("/chat/rating", json={"sessionId": visitor.session_id, "score": 4}, headers=visitor.auth)
    assert rated.status_code == 201, rated.text

    def types(path: str) -> list[str]:
        return [p["type"] for p in state.got(path) if p["data"].get("session", p["data"]).get("sessionId")
                == visitor.session_id]  # fmt: skip

    every = {"session.created", "session.handoff_requested", "session.claimed", "session.closed", "message.created",
             "rating.created"}  # fmt: skip
    # Deliveries run in parallel, so they may arrive in any order (each carries its event's timestamp).
    eventually(lambda: set(types("/all")) == every, timeout=30, what="every event at /all")
    # The question, the bot's answer, the request for a person (and its answer), the agent's reply.
    eventually(lambda: types("/all").count("message.created") >= 4)
    eventually(lambda: sorted(types("/handoffs")) == ["session.closed", "session.handoff_requested"], timeout=30)
    assert not state.unverified
    payload = next(p for p in state.got("/all") if p["type"] == "message.created" and
                   p["data"]["message"]["text"] == "Hi, Ada here")  # fmt: skip
    assert payload["data"]["sessionId"] == visitor.session_id and payload["timestamp"].endswith("Z")
    rating = next(p for p in state.got("/all") if p["type"] == "rating.created")
    assert rating["data"]["sessionId"] == visitor.session_id and rating["data"]["score"] == 4
    _, headers, _ = state.verified["/all"][0]
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-timestamp"].isdigit()

    def mine() -> list[dict[str, Any]]:
        page = api.get(f"/webhooks/{everything['id']}/deliveries", params={"limit": 200}, headers=ADMIN).json()
        return [d for d in page["deliveries"] if d["payload"]["data"].get("sessionId") == visitor.session_id
                or d["payload"]["data"].get("session", {}).get("sessionId") == visitor.session_id]  # fmt: skip

    def all_delivered() -> list[dict[str, Any]]:
        found = mine()
        return found if found and all(d["status"] == "delivered" for d in found) else []

    done = eventually(all_delivered)
    assert len(done) == len(types("/all"))
    assert all(d["responseStatus"] == 200 and d["durationMs"] >= 0 and d["nextRetryAt"] is None for d in done)
    webhook_ids = {h["webhook-id"] for _, h, _ in state.verified["/all"]}
    assert {d["messageId"] for d in done} <= webhook_ids
    settled(hooks_host.azurite, visitor.session_id)  # type: ignore[attr-defined]


def test_500_and_429_are_retried_honouring_retry_after(
    api: httpx.Client, receiver: tuple[Receiver, FakeServer]
) -> None:
    state, _ = receiver
    state.script["/flaky"] = [(500, {}, b"oops"), (200, {}, b"ok")]
    flaky = register(api, receiver, "/flaky")
    first = api.post(f"/webhooks/{flaky['id']}/test", headers=ADMIN)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "retrying" and first.json()["responseStatus"] == 500
    assert first.json()["nextRetryAt"]
    eventually(lambda: len(state.got("/flaky")) == 2, timeout=20, what="the retry after a 500")
    ids = [h["webhook-id"] for _, h, _ in state.verified["/flaky"]]
    assert ids[0] == ids[1]  # the same message, so a receiver can deduplicate

    def delivered(endpoint: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = api.get(f"/webhooks/{endpoint['id']}/deliveries", headers=ADMIN).json()["deliveries"][0]
        return found if found["status"] == "delivered" else {}

    delivery = eventually(lambda: delivered(flaky))
    assert [a["responseStatus"] for a in delivery["attempts"]] == [500, 200]

    # The schedule says 1 s; the receiver asks for 3: the retry waits for the receiver.
    state.script["/limited"] = [(429, {"Retry-After": "3"}, b"slow down"), (200, {}, b"ok")]
    limited = register(api, receiver, "/limited")
    assert api.post(f"/webhooks/{limited['id']}/test", headers=ADMIN).json()["responseStatus"] == 429
    eventually(lambda: len(state.got("/limited")) == 2, timeout=20, what="the retry after a 429")
    (t1, _, _), (t2, _, _) = state.verified["/limited"]
    assert t2 - t1 >= 2.9
    assert eventually(lambda: delivered(limited))["attempts"][0]["responseStatus"] == 429


def test_410_disables_the_endpoint(api: httpx.Client, receiver: tuple[Receiver, FakeServer], hooks_host: Host) -> None:
    state, _ = receiver
    state.script["/gone"] = [(410, {}, b"gone")]
    gone = register(api, receiver, "/gone")
    answer = api.post(f"/webhooks/{gone['id']}/test", headers=ADMIN).json()
    assert answer["status"] == "failed" and answer["responseStatus"] == 410
    stored = api.get(f"/webhooks/{gone['id']}", headers=ADMIN).json()
    assert stored["enabled"] is False and "410" in stored["disabledReason"]
    visitor = new_visitor(api)
    say(api, visitor, "hello")
    settled(hooks_host.azurite, visitor.session_id)  # type: ignore[attr-defined]
    assert len(state.got("/gone")) == 1  # nothing more is sent to it
    assert api.post(f"/webhooks/{gone['id']}/test", headers=ADMIN).status_code == 409
    again = api.patch(f"/webhooks/{gone['id']}", json={"enabled": True}, headers=ADMIN).json()
    assert again["enabled"] is True and again["disabledReason"] is None


def test_rotation_signs_with_both_secrets_during_the_grace_period(
    api: httpx.Client, receiver: tuple[Receiver, FakeServer]
) -> None:
    state, _ = receiver
    endpoint = register(api, receiver, "/rotating")
    old = endpoint["secret"]
    rotated = api.post(f"/webhooks/{endpoint['id']}/rotate-secret", json={"graceHours": 1}, headers=ADMIN)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_") and rotated.json()["previousSecretValidUntil"]
    state.secrets["/rotating"] = [new]
    assert api.post(f"/webhooks/{endpoint['id']}/test", headers=ADMIN).json()["status"] == "delivered"
    _, headers, _ = state.verified["/rotating"][-1]
    body = state_body(state, "/rotating")
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)  # a receiver still on the old secret verifies too
    Webhook(new).verify(body, headers)

    assert api.post(f"/webhooks/{endpoint['id']}/rotate-secret", json={"graceHours": 0}, headers=ADMIN).json()
    newest = api.get(f"/webhooks/{endpoint['id']}", headers=ADMIN).json()
    assert newest["previousSecretValidUntil"] is None


def state_body(state: Receiver, path: str) -> str:
    """The JSON text of the last verified delivery to ``path``, as it was signed."""
    import json

    _, _, payload = state.verified[path][-1]
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def test_retry_a_delivery_and_refusals(api: httpx.Client, receiver: tuple[Receiver, FakeServer]) -> None:
    state, _ = receiver
    endpoint = register(api, receiver, "/manual")
    test = api.post(f"/webhooks/{endpoint['id']}/test", headers=ADMIN).json()
    again = api.post(f"/webhooks/{endpoint['id']}/deliveries/{test['id']}/retry", headers=ADMIN)
    assert again.status_code == 200 and again.json()["attemptCount"] == 2
    first, second = (h["webhook-id"] for _, h, _ in state.verified["/manual"][-2:])
    assert first == second == test["messageId"]
    assert api.post(f"/webhooks/{endpoint['id']}/deliveries/nope/retry", headers=ADMIN).status_code == 404
    assert api.get("/webhooks/ep_unknown", headers=ADMIN).status_code == 404
    assert api.get("/webhooks").status_code == 401
    assert api.post("/webhooks", json={"url": "https://example.com"}).status_code == 401
    bad = api.post("/webhooks", json={"url": "ftp://example.com/x", "events": ["nope"]}, headers=ADMIN)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"events.0"}
    scheme = api.post("/webhooks", json={"url": "ftp://example.com/x"}, headers=ADMIN)
    assert scheme.status_code == 422 and scheme.json()["errors"][0]["field"] == "url"
    twice = api.post("/webhooks", json={"url": "https://example.com", "events": ["session.closed"] * 2}, headers=ADMIN)
    assert twice.status_code == 422
    assert api.delete(f"/webhooks/{endpoint['id']}", headers=ADMIN).status_code == 204
    assert api.get(f"/webhooks/{endpoint['id']}", headers=ADMIN).status_code == 404


def test_production_refuses_private_and_plain_http_targets(start_host: Callable[..., Host]) -> None:
    azurite = start_azurite()
    try:
        env = {"AZURE_FUNCTIONS_ENVIRONMENT": "Production", "WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
        host = start_host(host_env(azurite, **env))
        with host.client() as api:
            for url, words in (
                ("https://127.0.0.1:8443/hook", "loopback"),
                ("https://10.1.2.3/hook", "private"),
                ("https://169.254.169.254/latest", "metadata"),
                ("https://[::ffff:192.168.1.1]/hook", "private"),
                ("http://93.184.215.14/hook", "https"),
            ):
                refused = api.post("/webhooks", json={"url": url}, headers=ADMIN)
                assert refused.status_code == 422, (url, refused.text)
                assert refused.json()["errors"][0]["field"] == "url"
                assert words in refused.json()["errors"][0]["message"], refused.json()
            assert api.get("/webhooks", headers=ADMIN).json() == {"endpoints": []}
    finally:
        azurite.stop()
