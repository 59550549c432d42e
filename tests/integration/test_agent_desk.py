"""The agent desk's error paths over real HTTP on Azurite: transfer refusals (not the owner, closed,
unknown agent, yourself, no seat), notes' validation and their absence from every visitor route,
saved replies' changes and refusals, and search limited to the agent's own and waiting conversations."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.integration.test_agents import agent_token, waiting_session
from tests.support import ADMIN_KEY, WEBSITE, eventually, new_visitor, say, tables

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def opened_console(api: httpx.Client, name: str) -> tuple[dict[str, str], str]:
    """An agent who opened the console (so a colleague can pick them): their header and agent id."""
    auth = agent_token(api, name)
    me = api.get("/agent/me", headers=auth)
    assert me.status_code == 200, me.text
    assert api.get("/agent/colleagues", headers=auth).status_code == 200
    return auth, me.json()["oid"]


def claimed(api: httpx.Client, auth: dict[str, str]) -> str:
    session_id = waiting_session(api)
    assert api.post(f"/agent/sessions/{session_id}/claim", headers=auth).status_code == 200
    return session_id


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


def test_transfer_refusals(api: httpx.Client) -> None:
    owner, me = opened_console(api, "Desk Owner")
    other, other_id = opened_console(api, "Desk Other")
    session_id = claimed(api, owner)
    url = f"/agent/sessions/{session_id}/transfer"
    # Not the owner (handing it to the owner, or to a third agent): 403, and the session stays the owner's.
    _, third_id = opened_console(api, "Desk Third")
    refused = api.post(url, json={"agentId": third_id}, headers=other)
    assert refused.status_code == 403 and problem_type(refused) == "not-session-owner"
    # Unknown agent, and yourself: 422 naming the field.
    unknown = api.post(url, json={"agentId": str(uuid.uuid4())}, headers=owner)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "agentId"
    nobody = api.post(url, json={"email": "nobody@contoso.example"}, headers=owner)
    assert nobody.status_code == 422 and nobody.json()["errors"][0]["field"] == "email"
    yourself = api.post(url, json={"agentId": me}, headers=owner)
    assert yourself.status_code == 422 and yourself.json()["errors"][0]["message"] == "is you"
    both = api.post(url, json={"agentId": other_id, "email": "x@contoso.example"}, headers=owner)
    assert both.status_code == 422
    # Nothing moved: the owner still replies, the other agent still can't.
    reply = {"content": "Still with you."}
    assert api.post(f"/agent/sessions/{session_id}/message", json=reply, headers=owner).status_code == 200
    assert api.post(f"/agent/sessions/{session_id}/message", json=reply, headers=other).status_code == 403
    # Closed: 409.
    assert api.post(f"/agent/sessions/{session_id}/close", headers=owner).status_code == 200
    closed = api.post(url, json={"agentId": other_id}, headers=owner)
    assert closed.status_code == 409 and problem_type(closed) == "session-closed"
    # A transfer that works, for contrast: the colleague owns it after.
    moving = claimed(api, owner)
    moved = api.post(f"/agent/sessions/{moving}/transfer", json={"agentId": other_id}, headers=owner)
    assert moved.status_code == 200 and moved.json()["claimedBy"] == other_id
    again = api.post(f"/agent/sessions/{moving}/transfer", json={"agentId": other_id}, headers=owner)
    assert again.status_code == 403  # no longer the owner


def test_transfer_to_an_agent_without_a_seat_is_refused_once_grace_is_over(
    fresh_azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    host = start_host(
        {"AzureWebJobsStorage": fresh_azurite.connection_string, "ALLOWED_ORIGINS": WEBSITE, "PLAN_ID": "start"}
    )  # two seats
    with host.client() as api:
        first, _ = opened_console(api, "Seat One")
        second, _ = opened_console(api, "Seat Two")
        third, _ = opened_console(api, "Seat Three")
        _, seatless_id = opened_console(api, "Seat Less")
        session_id = claimed(api, first)
        claimed(api, second)
        claimed(api, third)  # over the quota: a grace seat
        eventually(lambda: api.get("/plan").json()["seatsUsed"] == 3, what="three seats taken")
        # Over quota for eight days: the grace period is over.
        long_ago = (datetime.now(UTC) - timedelta(days=8)).isoformat()
        tables(fresh_azurite).get_table_client("meta").upsert_entity(
            {"PartitionKey": "state", "RowKey": "quota", "overQuotaSince": long_ago}
        )
        refused = api.post(f"/agent/sessions/{session_id}/transfer", json={"agentId": seatless_id}, headers=first)
        assert refused.status_code == 403 and problem_type(refused) == "seat-quota-exceeded"
        assert refused.json()["seatQuota"] == 2
        still = api.post(f"/agent/sessions/{session_id}/message", json={"content": "Still here."}, headers=first)
        assert still.status_code == 200  # the conversation stayed with its owner


def test_notes_are_validated_and_never_reach_the_visitor(api: httpx.Client) -> None:
    agent, _ = opened_console(api, "Note Taker")
    visitor = new_visitor(api)
    assert say(api, visitor, "talk to a human please").json()["status"] == "human_requested"
    url = f"/agent/sessions/{visitor.session_id}/notes"
    for body in ({}, {"text": ""}, {"text": "   "}, {"text": "x" * 4001}, {"text": 5}, {"text": "a", "extra": 1}):
        refused = api.post(url, json=body, headers=agent)
        assert refused.status_code == 422, (body, refused.text)
    assert api.post("/agent/sessions/no-such-session/notes", json={"text": "hi"}, headers=agent).status_code == 404
    secret = f"private note {uuid.uuid4().hex}"
    added = api.post(url, json={"text": secret}, headers=agent)
    assert added.status_code == 201 and added.json()["text"] == secret
    assert [n["text"] for n in api.get(url, headers=agent).json()["notes"]] == [secret]
    assert api.post(url, json={"text": "x"}).status_code == 401  # agents only
    assert api.get(url, headers=visitor.auth).status_code == 401  # a visitor token is not an agent's
    # The visitor's routes never carry it: history, and a new message's answer.
    seen = api.get(f"/chat/{visitor.session_id}/messages", headers=visitor.auth)
    assert seen.status_code == 200 and secret not in seen.text
    assert secret not in say(api, visitor, "hello?").text


def test_saved_replies_change_clash_and_belong_to_admins(api: httpx.Client) -> None:
    agent, _ = opened_console(api, "Reply Reader")
    word = f"t{uuid.uuid4().hex[:8]}"
    created = api.post("/replies", json={"title": "Thanks", "text": "Thank you!", "shortcut": word}, headers=ADMIN)
    assert created.status_code == 201, created.text
    reply_id = created.json()["id"]
    # A second reply with the same shortcut: 409; agents can read but not manage.
    clash = api.post("/replies", json={"title": "Other", "text": "Other", "shortcut": word}, headers=ADMIN)
    assert clash.status_code == 409, clash.text
    assert any(r["id"] == reply_id for r in api.get("/replies", headers=agent).json()["replies"])
    assert api.post("/replies", json={"title": "A", "text": "B"}, headers=agent).status_code == 401
    assert api.patch(f"/replies/{reply_id}", json={"text": "x"}, headers=agent).status_code == 401
    assert api.delete(f"/replies/{reply_id}", headers=agent).status_code == 401
    # PATCH: validated, merged; a clash with another reply's shortcut is a 409.
    other = api.post("/replies", json={"title": "Other", "text": "Other", "shortcut": word + "x"}, headers=ADMIN)
    assert other.status_code == 201
    assert api.patch(f"/replies/{reply_id}", json={}, headers=ADMIN).status_code == 422
    assert api.patch(f"/replies/{reply_id}", json={"shortcut": "no spaces"}, headers=ADMIN).status_code == 422
    taken = api.patch(f"/replies/{reply_id}", json={"shortcut": word + "x"}, headers=ADMIN)
    assert taken.status_code == 409, taken.text
    changed = api.patch(f"/replies/{reply_id}", json={"text": "Thanks a lot!"}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["text"] == "Thanks a lot!"
    assert changed.json()["shortcut"] == word and changed.json()["title"] == "Thanks"
    assert api.patch("/replies/no-such-reply", json={"text": "x"}, headers=ADMIN).status_code == 404
    # DELETE: 204, then gone (404 the second time).
    assert api.delete(f"/replies/{reply_id}", headers=ADMIN).status_code == 204
    assert all(r["id"] != reply_id for r in api.get("/replies", headers=ADMIN).json()["replies"])
    assert api.delete(f"/replies/{reply_id}", headers=ADMIN).status_code == 204  # idempotent: already gone
    # The freed shortcut can be taken again.
    assert api.patch(f"/replies/{other.json()['id']}", json={"shortcut": word}, headers=ADMIN).status_code == 200


def test_search_returns_only_the_agents_own_and_waiting_conversations(api: httpx.Client) -> None:
    mine, _ = opened_console(api, "Search Mine")
    theirs, _ = opened_console(api, "Search Theirs")
    word = f"zebra{uuid.uuid4().hex[:8]}"
    ids = {}
    for label, auth in (("mine", mine), ("theirs", theirs), ("waiting", None)):
        visitor = new_visitor(api)
        assert say(api, visitor, f"talk to a human please about {word}").json()["status"] == "human_requested"
        if auth is not None:
            assert api.post(f"/agent/sessions/{visitor.session_id}/claim", headers=auth).status_code == 200
        ids[label] = visitor.session_id

    def found() -> set[str]:
        response = api.get("/agent/search", params={"q": word}, headers=mine)
        assert response.status_code == 200, response.text
        return {s["sessionId"] for s in response.json()["sessions"]}

    eventually(lambda: found() == {ids["mine"], ids["waiting"]}, what="the agent's own and the waiting one")
    assert ids["theirs"] not in found()
    for bad in ({}, {"q": ""}, {"q": "x" * 201}, {"q": word, "limit": "0"}, {"q": word, "limit": "51"}):
        assert api.get("/agent/search", params=bad, headers=mine).status_code == 422, bad
    assert api.get("/agent/search", params={"q": word}).status_code == 401
