"""Handoffs over real HTTP on Azurite with a fixed office clock: office hours in and out (the away
message, when the team is back, the away email), the visitor's choice up front, the handoff
threshold, the summary on claim and in the queue, and closing with a resolution and a learning
note that becomes a draft Q&A, searchable only once an admin approves it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from shared.conversations import texts
from tests.conftest import Host
from tests.support import ADMIN_KEY, WEBSITE, eventually, host_env, new_visitor, run_timer, say, set_session, settled

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
# A Tuesday, 21:00 in Madrid (CET, UTC+1): outside 09:00-17:00 on weekdays; the team is back on
# Wednesday at 9:00 Madrid time, 08:00 UTC.
CLOCK = "2026-03-03T20:00:00Z"
WEEKDAYS_9_TO_5 = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
CLOSED_NOW = {"timezone": "Europe/Madrid", "weekly": WEEKDAYS_9_TO_5}
OPEN_NOW = {"timezone": "Europe/Madrid", "weekly": {**WEEKDAYS_9_TO_5, "tue": ["00:00-24:00"]}}
AWAY = "We are out for the day."
RESET = {
    "botEnabled": None, "autonomy": None, "handoffThreshold": None, "handoffMode": None,
    "officeHours": None, "visitorChoice": None, "awayMessage": None,
}  # fmt: skip


@pytest.fixture(scope="module")
def host(module_azurite: Azurite, start_host: Callable[..., Host]) -> Host:
    """A worker whose office hours are judged at :data:`CLOCK`."""
    return start_host(host_env(module_azurite, DEV_OFFICE_CLOCK=CLOCK))


@pytest.fixture()
def api(host: Host) -> Iterator[httpx.Client]:
    """A client; the configuration is back to its defaults before each test."""
    with host.client() as client:
        response = client.patch("/config", json=RESET, headers={**ADMIN, "If-Match": "*"})
        assert response.status_code == 200, response.text
        yield client


def configure(api: httpx.Client, **fields: Any) -> None:
    response = api.patch("/config", json=fields, headers={**ADMIN, "If-Match": "*"})
    assert response.status_code == 200, response.text


def agent_token(api: httpx.Client, name: str) -> dict[str, str]:
    email = f"{name.lower().replace(' ', '.')}@contoso.example"
    response = api.post("/dev/token", json={"name": name, "email": email})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def ask_for_person(api: httpx.Client, visitor: Any) -> httpx.Response:
    return api.post("/chat/handoff", json={"sessionId": visitor.session_id}, headers=visitor.auth)


def leave_email(api: httpx.Client, visitor: Any, email: Any) -> httpx.Response:
    return api.post("/chat/email", json={"sessionId": visitor.session_id, "email": email}, headers=visitor.auth)


def assert_422(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [error["field"] for error in response.json()["errors"]], response.text


def queue_row(api: httpx.Client, agent: dict[str, str], session_id: str) -> dict[str, Any]:
    rows = api.get("/agent/sessions", params={"limit": 200}, headers=agent).json()["sessions"]
    return next(row for row in rows if row["sessionId"] == session_id)


# --- office hours -------------------------------------------------------------------------------------


def test_outside_hours_the_visitor_is_told_when_the_team_is_back_and_may_leave_an_email(
    api: httpx.Client, host: Host, module_azurite: Azurite
) -> None:
    configure(api, officeHours=CLOSED_NOW, awayMessage=AWAY)
    opened = api.post("/widget/session", json={}, headers={"Origin": WEBSITE})
    away = opened.json()["config"]["away"]
    assert away["open"] is False and away["backAt"] == "2026-03-04T08:00:00.000Z"
    assert away["when"] == "tomorrow at 9:00 (Europe/Madrid time)"
    assert opened.json()["config"]["awayMessage"] == AWAY

    visitor = new_visitor(api)
    asked = ask_for_person(api, visitor)
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert body["status"] == "human_requested"
    assert body["message"]["text"] == f"{AWAY} We're back tomorrow at 9:00 (Europe/Madrid time)."
    assert body["away"]["open"] is False and body["away"]["email"] is None

    waiting = say(api, visitor, "Is anyone there?")  # never a silent queued-for-agent
    assert waiting.status_code == 202
    assert waiting.json()["away"]["when"] == "tomorrow at 9:00 (Europe/Madrid time)"

    assert_422(leave_email(api, visitor, "not-an-address"), "email")
    assert_422(leave_email(api, visitor, "a@b"), "email")
    assert_422(leave_email(api, visitor, ""), "email")
    assert_422(leave_email(api, visitor, 42), "email")
    stranger = new_visitor(api)
    assert leave_email(api, stranger, "x@example.com").status_code == 200  # its own session only
    refused = api.post(
        "/chat/email", json={"sessionId": visitor.session_id, "email": "x@example.com"}, headers=stranger.auth
    )
    assert refused.status_code == 401
    left = leave_email(api, visitor, "  jane.doe@example.com ")
    assert left.status_code == 200, left.text
    assert left.json()["email"] == "jane.doe@example.com" and left.json()["away"]["email"] == "jane.doe@example.com"
    assert say(api, visitor, "Still there?").json()["away"]["email"] == "jane.doe@example.com"

    agent = agent_token(api, "Night Reader")
    settled(module_azurite, visitor.session_id)
    row = queue_row(api, agent, visitor.session_id)
    assert row["handoff"]["email"] == "jane.doe@example.com"
    assert row["waitingSeconds"] is not None
    transcript = api.get(f"/agent/sessions/{visitor.session_id}/messages", headers=agent).json()
    assert transcript["handoff"]["email"] == "jane.doe@example.com"
    audited = api.get("/audit", params={"sessionId": visitor.session_id, "event": "handoff:email"}, headers=ADMIN)
    assert [e["actor"] for e in audited.json()["events"]] == ["visitor"]

    # The wait timer doesn't hand a night request back to the bot while the team is away.
    set_session(module_azurite, visitor.session_id, handoffRequestedAt="2026-03-02T20:00:00.000Z")
    run_timer(host, "listener_timeouts")
    history = api.get(f"/chat/{visitor.session_id}/messages", headers=visitor.auth).json()
    assert history["status"] == "human_requested"
    assert texts.NOBODY_CAME not in [m["text"] for m in history["messages"]]


def test_inside_hours_a_person_is_asked_for_as_always(api: httpx.Client) -> None:
    configure(api, officeHours=OPEN_NOW, awayMessage=AWAY)
    visitor = new_visitor(api)
    body = ask_for_person(api, visitor).json()
    assert body["status"] == "human_requested" and body["message"]["text"] == texts.HANDOFF_TEXT
    assert "away" not in body
    typed = say(api, new_visitor(api), "I want to talk to a person").json()  # asking in words is the same
    assert typed["status"] == "human_requested" and "away" not in typed


def test_visitor_choice_and_the_away_state_reach_the_widget(api: httpx.Client) -> None:
    opened = api.post("/widget/session", json={}, headers={"Origin": WEBSITE}).json()
    assert opened["config"]["visitorChoice"] is False and opened["config"]["away"]["open"] is True
    configure(api, visitorChoice=True, officeHours=OPEN_NOW)
    opened = api.post("/widget/session", json={}, headers={"Origin": WEBSITE}).json()
    assert opened["config"]["visitorChoice"] is True and opened["config"]["away"]["open"] is True


def test_the_handoff_threshold_offers_a_person_or_hands_over(api: httpx.Client) -> None:
    question = "Can I pay for my llama grooming subscription with seashells?"  # nothing in the knowledge covers it
    configure(api, handoffThreshold=0.5, handoffMode="offer")
    unsure = new_visitor(api)
    offered = say(api, unsure, question, **{"Idempotency-Key": "offer-once"}).json()
    assert offered["status"] == "open" and offered["offerPerson"] is True
    replayed = say(api, unsure, question, **{"Idempotency-Key": "offer-once"}).json()  # a retry gets the same answer
    assert replayed == offered
    covered = say(api, new_visitor(api), "How long does standard shipping take?").json()
    assert covered["status"] == "open" and "offerPerson" not in covered
    assert "offerPerson" not in say(api, new_visitor(api), "hello").json()  # small talk is never judged
    configure(api, handoffMode="immediate")
    handed = say(api, new_visitor(api), question).json()
    assert handed["status"] == "human_requested" and handed["handoff"] is True


# --- the summary --------------------------------------------------------------------------------------


def test_the_claim_returns_the_summary_with_the_visitors_ask_and_facts(
    api: httpx.Client, module_azurite: Azurite
) -> None:
    visitor = new_visitor(api)
    assert say(api, visitor, "How long does standard shipping take?").status_code == 200
    ask = "My order #AB12345 never arrived, my email is jane@example.com"
    assert say(api, visitor, ask).status_code == 200
    assert say(api, visitor, "talk to a human please").json()["status"] == "human_requested"
    settled(module_azurite, visitor.session_id)
    agent = agent_token(api, "Summary Reader")
    row = queue_row(api, agent, visitor.session_id)
    summary = row["handoff"]["summary"]
    assert summary["wants"] == ask and summary["provider"] == "extractive"
    assert {"kind": "order", "value": "AB12345"} in summary["facts"]
    assert {"kind": "email", "value": "jane@example.com"} in summary["facts"]
    assert "AB12345" in summary["text"] and isinstance(row["waitingSeconds"], int)

    claimed = api.post(f"/agent/sessions/{visitor.session_id}/claim", headers=agent)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["handoff"]["summary"]["wants"] == ask
    assert claimed.json()["waitedSeconds"] >= 0


def test_a_claim_before_the_outbox_ran_still_gets_a_summary(api: httpx.Client) -> None:
    visitor = new_visitor(api)
    say(api, visitor, "Where is invoice INV-7788 for my Premium plan?")
    ask_for_person(api, visitor)
    claimed = api.post(f"/agent/sessions/{visitor.session_id}/claim", headers=agent_token(api, "Quick Agent"))
    summary = claimed.json()["handoff"]["summary"]
    assert summary["wants"] == "Where is invoice INV-7788 for my Premium plan?"
    assert {"kind": "order", "value": "INV-7788"} in summary["facts"]


# --- closing with a learning note ----------------------------------------------------------------------


def claimed_session(api: httpx.Client, question: str, agent: dict[str, str]) -> str:
    visitor = new_visitor(api)
    say(api, visitor, question)
    assert ask_for_person(api, visitor).status_code == 200
    assert api.post(f"/agent/sessions/{visitor.session_id}/claim", headers=agent).status_code == 200
    return visitor.session_id


def test_close_body_is_validated_naming_the_field(api: httpx.Client) -> None:
    agent = agent_token(api, "Strict Closer")
    session_id = claimed_session(api, "Do you ship to Iceland?", agent)
    close = f"/agent/sessions/{session_id}/close"
    assert_422(api.post(close, json={"resolution": "maybe"}, headers=agent), "resolution")
    assert_422(api.post(close, json={"note": "   "}, headers=agent), "note")
    assert_422(api.post(close, json={"note": "x" * 4001}, headers=agent), "note")
    assert_422(api.post(close, json={"note": 5}, headers=agent), "note")
    assert_422(api.post(close, json={"reason": "x"}, headers=agent), "reason")
    assert api.post(close, content=b"[", headers={**agent, "Content-Type": "application/json"}).status_code == 400
    still = api.get(f"/agent/sessions/{session_id}/messages", headers=agent).json()
    assert still["status"] == "claimed"  # nothing was closed by a refused body
    closed = api.post(close, json={"resolution": "resolved"}, headers=agent)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["resolution"] == "resolved" and "draft" not in closed.json()
    audited = api.get("/audit", params={"sessionId": session_id, "event": "session:resolution"}, headers=ADMIN)
    assert audited.json()["events"][0]["details"]["resolution"] == "resolved"
    assert (
        api.post(f"/agent/sessions/{claimed_session(api, 'Hi there', agent)}/close", headers=agent).status_code == 200
    )


def search(api: httpx.Client, words: str) -> list[dict[str, Any]]:
    response = api.get("/knowledge/search", params={"q": words}, headers=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_a_learning_note_becomes_a_draft_used_only_once_approved(api: httpx.Client) -> None:
    agent = agent_token(api, "Teaching Agent")
    question = "Can I bring my parrot to the showroom?"
    session_id = claimed_session(api, question, agent)
    note = "Yes: pets in carriers are welcome in the showroom; parrots too."
    closed = api.post(
        f"/agent/sessions/{session_id}/close",
        json={"resolution": "unresolved", "note": note},
        headers={**agent, "Idempotency-Key": "close-parrot"},
    )
    assert closed.status_code == 200, closed.text
    draft = closed.json()["draft"]
    assert draft["question"] == question and draft["answer"] == note and draft["status"] == "draft"
    again = api.post(
        f"/agent/sessions/{session_id}/close",
        json={"resolution": "unresolved", "note": note},
        headers={**agent, "Idempotency-Key": "close-parrot"},
    )
    assert again.status_code == 200 and again.json()["draft"]["id"] == draft["id"]  # a retry makes no second

    listed = api.get("/knowledge/drafts", headers=ADMIN).json()["drafts"]
    assert [d["id"] for d in listed if d["sessionId"] == session_id] == [draft["id"]]
    assert api.get("/knowledge/drafts").status_code == 401
    assert api.post(f"/knowledge/drafts/{draft['id']}/approve").status_code == 401
    assert not [r for r in search(api, "parrot showroom") if "parrot" in r["text"].lower()]  # not used yet
    asked = say(api, new_visitor(api), question).json()
    assert "parrot" not in asked["reply"]["text"].lower()

    assert_422(api.patch(f"/knowledge/drafts/{draft['id']}", json={"answer": ""}, headers=ADMIN), "answer")
    edited = api.patch(f"/knowledge/drafts/{draft['id']}", json={"answer": note + " Dogs too."}, headers=ADMIN)
    assert edited.status_code == 200 and edited.json()["answer"].endswith("Dogs too.")
    approved = api.post(f"/knowledge/drafts/{draft['id']}/approve", headers=ADMIN)
    assert approved.status_code == 200, approved.text
    assert approved.json()["draft"]["status"] == "approved" and approved.json()["source"]["type"] == "qa"
    assert api.post(f"/knowledge/drafts/{draft['id']}/approve", headers=ADMIN).status_code == 409
    eventually(lambda: any("Dogs too." in r["text"] for r in search(api, "parrot showroom")), what="the approved Q&A")
    answered = say(api, new_visitor(api), question).json()
    assert "Dogs too." in answered["reply"]["text"]
    assert answered["reply"]["citations"][0]["sourceId"] == approved.json()["source"]["id"]
    assert [d for d in api.get("/knowledge/drafts", headers=ADMIN).json()["drafts"] if d["id"] == draft["id"]] == []
    events = api.get("/audit", params={"sessionId": session_id}, headers=ADMIN).json()["events"]
    assert {"knowledge:draft-created", "knowledge:draft-edited", "knowledge:draft-approved"} <= {
        e["event"] for e in events
    }


def test_a_draft_can_be_discarded(api: httpx.Client) -> None:
    agent = agent_token(api, "Discarding Agent")
    session_id = claimed_session(api, "Do you sell gift cards?", agent)
    closed = api.post(f"/agent/sessions/{session_id}/close", json={"note": "We do not."}, headers=agent)
    draft_id = closed.json()["draft"]["id"]
    assert api.delete(f"/knowledge/drafts/{draft_id}", headers=ADMIN).status_code == 204
    assert api.delete(f"/knowledge/drafts/{draft_id}", headers=ADMIN).status_code == 404
    assert api.post("/knowledge/drafts/nope!/approve", headers=ADMIN).status_code == 404
    assert api.get("/knowledge/drafts", params={"status": "lost"}, headers=ADMIN).status_code == 422
