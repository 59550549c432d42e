"""Approval cards over real HTTP on Azurite, with the SignalR emulator and a fake OpenAI server:
held replies, send (as drafted and edited), dismiss, rephrase, tell-AI, auto-send after the delay,
two agents racing, idempotent retries, and the events every console receives."""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from websockets.sync.client import connect

from devhost.azurite import Azurite
from devhost.signalr import Emulator
from tests.conftest import Host
from tests.fakes.openai_server import FakeOpenAI, ok
from tests.support import ADMIN_KEY, eventually, history, host_env, new_visitor, say

RS = "\x1e"
QUESTION = "How long does shipping take?"
DRAFT = "Standard shipping takes 3 to 5 business days [1]."
SHOWN = "Standard shipping takes 3 to 5 business days."  # the draft as cited: markers become citations


@pytest.fixture(scope="module")
def host(
    module_azurite: Azurite, module_openai: FakeOpenAI, signalr: Emulator, start_host: Callable[..., Host]
) -> Host:
    """The product holding every bot reply for approval, with pushes through the emulator."""
    return start_host(
        host_env(
            module_azurite, AUTONOMY="approve", LLM_PROVIDER="openai", OPENAI_BASE_URL=module_openai.base_url,
            OPENAI_API_KEY="sk-test-key", LLM_MAX_RETRIES="0", SIGNALR_CONNECTION_STRING=signalr.connection_string,
        )
    )  # fmt: skip


@pytest.fixture()
def api(host: Host) -> Iterator[httpx.Client]:
    with host.client() as client:
        yield client


def agent_token(api: httpx.Client, name: str) -> dict[str, str]:
    """Sign in through the development sign-in and return the Authorization header."""
    email = f"{name.lower().replace(' ', '.')}@contoso.example"
    response = api.post("/dev/token", json={"name": name, "email": email})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


class AgentEvents:
    """A console's live connection: the hub messages one agent receives, collected by a thread."""

    def __init__(self, api: httpx.Client, auth: dict[str, str]) -> None:
        grant = api.post("/agent/negotiate", headers=auth)
        assert grant.status_code == 200, grant.text
        url, token = grant.json()["url"], grant.json()["accessToken"]
        parts = urlsplit(url)
        negotiated = httpx.post(
            f"http://{parts.netloc}/client/negotiate?{parts.query}&negotiateVersion=1",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert negotiated.status_code == 200, negotiated.text
        self.ws = connect(
            f"ws://{parts.netloc}/client/?{parts.query}&id={negotiated.json()['connectionToken']}"
            f"&access_token={quote(token, safe='')}",
            legacy=True,  # kept open across the test, closed by close()
        )
        self.ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
        assert self.ws.recv() == "{}" + RS
        self.received: list[tuple[str, dict[str, Any]]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                for raw in str(text).split(RS):
                    if raw and (message := json.loads(raw)).get("type") == 1:
                        self.received.append((message["target"], message["arguments"][0]))
        except Exception:  # closed at the end of the test
            return

    def wait(self, target: str, **match: Any) -> dict[str, Any]:
        """The first ``target`` event whose arguments have ``match``'s values."""

        def found() -> dict[str, Any] | None:
            return next(
                (args for name, args in self.received
                 if name == target and all(args.get(k) == v for k, v in match.items())),
                None,
            )  # fmt: skip

        return eventually(found, timeout=15, what=f"{target} {match}")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture()
def console(api: httpx.Client) -> Iterator[tuple[dict[str, str], AgentEvents]]:
    """A signed-in agent with a live connection."""
    auth = agent_token(api, "Ada Approver")
    events = AgentEvents(api, auth)
    yield auth, events
    events.close()


def pending(api: httpx.Client, auth: dict[str, str]) -> list[dict[str, Any]]:
    response = api.get("/agent/approvals", params={"status": "pending", "limit": 200}, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()["approvals"]


def card_of(api: httpx.Client, auth: dict[str, str], session_id: str) -> dict[str, Any]:
    """The session's card, once the pending list shows it."""
    return eventually(
        lambda: next((c for c in pending(api, auth) if c["sessionId"] == session_id), None), what="the pending card"
    )


def audit(api: httpx.Client, session_id: str, event: str) -> list[dict[str, Any]]:
    response = api.get(
        "/audit", params={"sessionId": session_id, "event": event}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["events"]


def held_visitor(api: httpx.Client, module_openai: FakeOpenAI, text: str = DRAFT) -> tuple[Any, dict[str, Any]]:
    """A visitor whose question was answered with a held draft; the 202 body."""
    module_openai.script(ok(text))
    visitor = new_visitor(api)
    asked = say(api, visitor, QUESTION)
    assert asked.status_code == 202, asked.text
    return visitor, asked.json()


def bot_messages(api: httpx.Client, visitor: Any) -> list[dict[str, Any]]:
    return [m for m in history(api, visitor)["messages"] if m["sender"] == "bot"]


def test_a_held_reply_is_a_card_an_agent_sends(api: httpx.Client, module_openai: FakeOpenAI, console: Any) -> None:
    auth, events = console
    visitor, body = held_visitor(api, module_openai)
    assert body["status"] == "awaiting-approval" and body["reply"] is None and body["replyPending"] is True
    assert body["message"]["text"] == QUESTION
    seen = history(api, visitor)
    assert seen["replyPending"] is True and [m["sender"] for m in seen["messages"]] == ["visitor"]

    created = events.wait("ApprovalCardCreated", sessionId=visitor.session_id)
    card = card_of(api, auth, visitor.session_id)
    assert card["id"] == created["id"] and card["status"] == "pending"
    assert card["text"] == SHOWN and card["question"] == QUESTION
    assert card["citations"] and card["citations"][0]["title"]  # the source behind the draft
    assert card["context"][-1] == {"sender": "visitor", "text": QUESTION}
    assert card["costUsd"] > 0 and card["model"]

    sent = api.post(f"/agent/approvals/{card['id']}/send", json={}, headers=auth)
    assert sent.status_code == 200, sent.text
    assert sent.json()["resolution"] == "sent" and sent.json()["message"]["text"] == SHOWN
    resolved = events.wait("ApprovalCardResolved", id=card["id"])
    assert resolved["resolution"] == "sent" and resolved["message"]["text"] == SHOWN

    (reply,) = bot_messages(api, visitor)
    assert reply["text"] == SHOWN and reply["citations"] == card["citations"]
    assert history(api, visitor)["replyPending"] is False
    eventually(lambda: all(c["id"] != card["id"] for c in pending(api, auth)), what="the card leaves the list")
    (entry,) = eventually(lambda: audit(api, visitor.session_id, "approval:sent"), what="the audit entry")
    assert entry["actor"].startswith("agent:") and entry["details"]["cardId"] == card["id"]
    again = api.post(f"/agent/approvals/{card['id']}/send", json={}, headers=auth)
    assert again.status_code == 409 and again.json()["type"].endswith("/card-resolved")


def test_an_edited_reply_is_sent_and_audited_before_and_after(
    api: httpx.Client, module_openai: FakeOpenAI, console: Any
) -> None:
    auth, _ = console
    visitor, _ = held_visitor(api, module_openai)
    card = card_of(api, auth, visitor.session_id)
    edited = "Shipping takes 3 to 5 business days; express arrives tomorrow."
    sent = api.post(f"/agent/approvals/{card['id']}/send", json={"text": edited}, headers=auth)
    assert sent.status_code == 200 and sent.json()["resolution"] == "edited"
    assert [m["text"] for m in bot_messages(api, visitor)] == [edited]
    (entry,) = eventually(lambda: audit(api, visitor.session_id, "approval:edited"), what="the audit entry")
    assert entry["details"]["before"] == SHOWN and entry["details"]["after"] == edited


def test_a_dismissed_card_sends_nothing(api: httpx.Client, module_openai: FakeOpenAI, console: Any) -> None:
    auth, events = console
    visitor, _ = held_visitor(api, module_openai)
    card = card_of(api, auth, visitor.session_id)
    dismissed = api.post(f"/agent/approvals/{card['id']}/dismiss", headers=auth)
    assert dismissed.status_code == 200 and dismissed.json()["resolution"] == "dismissed"
    assert events.wait("ApprovalCardResolved", id=card["id"])["resolution"] == "dismissed"
    assert bot_messages(api, visitor) == [] and history(api, visitor)["replyPending"] is False
    assert api.post(f"/agent/approvals/{card['id']}/dismiss", headers=auth).status_code == 409
    (entry,) = eventually(lambda: audit(api, visitor.session_id, "approval:dismissed"), what="the audit entry")
    assert entry["details"] == {"cardId": card["id"], "reason": "agent"}


def test_rephrase_drafts_again_with_the_instruction(api: httpx.Client, module_openai: FakeOpenAI, console: Any) -> None:
    auth, events = console
    visitor, _ = held_visitor(api, module_openai)
    card = card_of(api, auth, visitor.session_id)
    module_openai.script(ok("3-5 business days [1]."))
    rephrased = api.post(
        f"/agent/approvals/{card['id']}/rephrase", json={"instruction": "Make it shorter"}, headers=auth
    )
    assert rephrased.status_code == 200, rephrased.text
    new = rephrased.json()["card"]
    assert rephrased.json()["resolution"] == "rephrased" and new["id"] != card["id"]
    assert (
        new["text"] == "3-5 business days."
        and new["replaces"] == card["id"]
        and new["instruction"] == "Make it shorter"
    )
    system = module_openai.requests[-1].json()["messages"][0]["content"]
    assert "Make it shorter" in system and SHOWN in system
    assert module_openai.requests[-1].json()["messages"][-1] == {"role": "user", "content": QUESTION}
    assert events.wait("ApprovalCardResolved", id=card["id"])["replacedBy"] == new["id"]
    events.wait("ApprovalCardCreated", id=new["id"])
    eventually(lambda: [c["id"] for c in pending(api, auth) if c["sessionId"] == visitor.session_id] == [new["id"]])
    assert api.post(f"/agent/approvals/{card['id']}/send", json={}, headers=auth).status_code == 409
    assert bot_messages(api, visitor) == []  # still nothing sent


def test_tell_ai_is_followed_for_the_rest_of_the_conversation(
    api: httpx.Client, module_openai: FakeOpenAI, console: Any
) -> None:
    auth, _ = console
    visitor, _ = held_visitor(api, module_openai)
    card = card_of(api, auth, visitor.session_id)
    told = "Always mention the express option."
    module_openai.script(ok("3 to 5 business days, or express tomorrow [1]."))
    answer = api.post(f"/agent/approvals/{card['id']}/tell-ai", json={"instruction": told}, headers=auth)
    assert answer.status_code == 200 and answer.json()["resolution"] == "told"
    assert told in module_openai.requests[-1].json()["messages"][0]["content"]
    new = answer.json()["card"]
    assert api.post(f"/agent/approvals/{new['id']}/send", json={}, headers=auth).status_code == 200
    module_openai.script(ok("Returns are free within 30 days [1]."))
    assert say(api, visitor, "And returns?").status_code == 202
    assert told in module_openai.requests[-1].json()["messages"][0]["content"]  # a later turn follows it too
    (entry,) = eventually(lambda: audit(api, visitor.session_id, "approval:told"), what="the audit entry")
    assert entry["details"]["instruction"] == told


def test_two_agents_race_on_one_card(api: httpx.Client, module_openai: FakeOpenAI) -> None:
    first, second = agent_token(api, "First Racer"), agent_token(api, "Second Racer")
    visitor, _ = held_visitor(api, module_openai)
    card = card_of(api, first, visitor.session_id)
    url = f"{api.base_url}agent/approvals/{card['id']}/send"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda auth: httpx.post(url, json={}, headers=auth, timeout=30), [first, second]))
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert next(a for a in answers if a.status_code == 409).json()["type"].endswith("/card-resolved")
    assert len(bot_messages(api, visitor)) == 1


def test_an_idempotency_key_replays_the_decision(api: httpx.Client, module_openai: FakeOpenAI, console: Any) -> None:
    auth, _ = console
    visitor, _ = held_visitor(api, module_openai)
    card = card_of(api, auth, visitor.session_id)
    key = {**auth, "Idempotency-Key": f"send-{card['id'][-12:]}"}
    first = api.post(f"/agent/approvals/{card['id']}/send", json={"text": "Three to five days."}, headers=key)
    again = api.post(f"/agent/approvals/{card['id']}/send", json={"text": "Three to five days."}, headers=key)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert len(bot_messages(api, visitor)) == 1
    other = api.post(f"/agent/approvals/{card['id']}/send", json={"text": "Other."}, headers=key)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


def test_the_visitor_writing_again_or_asking_for_a_person_resolves_the_card(
    api: httpx.Client, module_openai: FakeOpenAI, console: Any
) -> None:
    auth, events = console
    visitor, _ = held_visitor(api, module_openai)
    card = card_of(api, auth, visitor.session_id)
    module_openai.script(ok("Express arrives tomorrow [1]."))
    assert say(api, visitor, "And express shipping?").status_code == 202
    assert events.wait("ApprovalCardResolved", id=card["id"])["resolution"] == "superseded"
    newer = events.wait("ApprovalCardCreated", sessionId=visitor.session_id, question="And express shipping?")
    handed = api.post("/chat/handoff", json={"sessionId": visitor.session_id}, headers=visitor.auth)
    assert handed.status_code == 200 and handed.json()["status"] == "human_requested"
    assert events.wait("ApprovalCardResolved", id=newer["id"])["resolution"] == "dismissed"
    assert [m["text"] for m in bot_messages(api, visitor) if "Express" in m["text"]] == []


def test_refusals_name_what_is_wrong(api: httpx.Client, module_openai: FakeOpenAI, console: Any) -> None:
    auth, _ = console
    visitor, _ = held_visitor(api, module_openai)
    card = card_of(api, auth, visitor.session_id)
    assert api.get("/agent/approvals").status_code == 401
    assert api.post(f"/agent/approvals/{card['id']}/send", json={}, headers=visitor.auth).status_code == 401
    bad_status = api.get("/agent/approvals", params={"status": "lost"}, headers=auth)
    assert bad_status.status_code == 422 and "status" in bad_status.text
    blank = api.post(f"/agent/approvals/{card['id']}/rephrase", json={"instruction": "  "}, headers=auth)
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "instruction"
    empty = api.post(f"/agent/approvals/{card['id']}/send", json={"text": ""}, headers=auth)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "text"
    assert api.post("/agent/approvals/nonsense/send", json={}, headers=auth).status_code == 404
    assert bot_messages(api, visitor) == []  # nothing was sent by any of these


def test_auto_after_sends_a_card_nobody_handled(api: httpx.Client, module_openai: FakeOpenAI, console: Any) -> None:
    auth, events = console
    admin = {"Authorization": f"Bearer {ADMIN_KEY}", "If-Match": "*", "Content-Type": "application/merge-patch+json"}
    changed = api.patch("/config", json={"autonomy": "auto-after", "autoSendAfterSeconds": 5}, headers=admin)
    assert changed.status_code == 200, changed.text
    try:
        visitor, _ = held_visitor(api, module_openai)
        created = events.wait("ApprovalCardCreated", sessionId=visitor.session_id)
        assert created["autoSendAt"]
        resolved = events.wait("ApprovalCardResolved", id=created["id"])
        assert resolved["resolution"] == "auto-sent"
        (reply,) = bot_messages(api, visitor)
        assert reply["text"] == SHOWN
        waited = _seconds(reply["createdAt"]) - _seconds(created["createdAt"])
        assert waited >= 4.9, waited  # not before the delay
        (entry,) = eventually(lambda: audit(api, visitor.session_id, "approval:auto-sent"), what="the audit entry")
        assert entry["actor"] == "system:auto-send"
    finally:
        api.patch("/config", json={"autonomy": None, "autoSendAfterSeconds": None}, headers=admin)


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_resolved_cards_are_listed_newest_first_with_what_became_of_them(
    api: httpx.Client, module_openai: FakeOpenAI, console: Any
) -> None:
    auth, _ = console
    agent_oid = api.get("/agent/me", headers=auth).json()["oid"]
    first, _ = held_visitor(api, module_openai)
    first_card = card_of(api, auth, first.session_id)
    edited = "Shipping takes 3 to 5 business days."
    assert api.post(f"/agent/approvals/{first_card['id']}/send", json={"text": edited}, headers=auth).status_code == 200
    second, _ = held_visitor(api, module_openai)
    second_card = card_of(api, auth, second.session_id)
    assert api.post(f"/agent/approvals/{second_card['id']}/dismiss", headers=auth).status_code == 200

    def resolved() -> list[dict[str, Any]]:
        response = api.get("/agent/approvals", params={"status": "resolved", "limit": 200}, headers=auth)
        assert response.status_code == 200, response.text
        return [c for c in response.json()["approvals"] if c["id"] in (first_card["id"], second_card["id"])]

    listed = eventually(lambda: len(resolved()) == 2 and resolved(), what="both cards in the resolved list")
    assert [c["id"] for c in listed] == [second_card["id"], first_card["id"]]  # the newest first
    dismissed, sent = listed
    assert dismissed["status"] == "resolved" and dismissed["resolution"] == "dismissed"
    assert dismissed["message"] is None and dismissed["text"] == SHOWN  # the draft nobody sent
    assert sent["resolution"] == "edited" and sent["message"]["text"] == edited and sent["text"] == SHOWN
    assert sent["resolvedBy"] == f"agent:{agent_oid}" and sent["question"] == QUESTION
    assert sent["resolvedAt"] >= sent["createdAt"] and "context" not in sent
    page = api.get("/agent/approvals", params={"status": "resolved", "limit": 1}, headers=auth).json()
    assert len(page["approvals"]) == 1 and page["nextCursor"]
    following = api.get(
        "/agent/approvals", params={"status": "resolved", "limit": 1, "cursor": page["nextCursor"]}, headers=auth
    )
    assert following.status_code == 200 and following.json()["approvals"][0]["id"] != page["approvals"][0]["id"]
    # A cursor of one list is no cursor of the other.
    crossed = api.get("/agent/approvals", params={"status": "pending", "cursor": page["nextCursor"]}, headers=auth)
    assert crossed.status_code == 422
    assert api.get("/agent/approvals", params={"status": "lost"}, headers=auth).status_code == 422
