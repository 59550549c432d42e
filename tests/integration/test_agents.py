"""Agents over real HTTP on Azurite: the queue, every claim outcome, the race, replies, closing, timers."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.support import (
    WEBSITE,
    Visitor,
    eventually,
    history,
    host_env,
    new_visitor,
    run_timer,
    say,
    session_header,
    set_session,
    settled,
    tables,
)


def agent_token(api: httpx.Client, name: str) -> dict[str, str]:
    """Sign in through the development sign-in and return the Authorization header."""
    email = f"{name.lower().replace(' ', '.')}@contoso.example"
    response = api.post("/dev/token", json={"name": name, "email": email})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def waiting_session(api: httpx.Client) -> str:
    """A visitor who asked for a person."""
    visitor = new_visitor(api)
    assert say(api, visitor, "talk to a human please").json()["status"] == "human_requested"
    return visitor.session_id


def test_agent_me_and_refusals(api: httpx.Client) -> None:
    me = api.get("/agent/me", headers=agent_token(api, "Ada Agent"))
    assert me.status_code == 200
    assert {"oid", "upn", "email", "tenantId"} <= me.json().keys()
    assert me.json()["email"] == "ada.agent@contoso.example"
    assert api.get("/agent/me").status_code == 401
    assert api.get("/agent/sessions", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    visitor = new_visitor(api)
    assert api.get("/agent/me", headers=visitor.auth).status_code == 401  # a visitor token is no agent token


def test_queue_lists_newest_first_with_filters_and_cursor(api: httpx.Client, azurite: Azurite) -> None:
    agent = agent_token(api, "Queue Reader")
    ids = [waiting_session(api) for _ in range(3)]
    settled(azurite, *ids)  # the queue is an ordering projected from the outbox
    listed = api.get("/agent/sessions", params={"status": "human_requested", "limit": 200}, headers=agent).json()
    order = [s["sessionId"] for s in listed["sessions"] if s["sessionId"] in ids]
    assert order == list(reversed(ids))
    page = api.get("/agent/sessions", params={"status": "human_requested", "limit": 1}, headers=agent).json()
    assert len(page["sessions"]) == 1 and page["nextCursor"]
    following = api.get(
        "/agent/sessions", params={"status": "human_requested", "limit": 1, "cursor": page["nextCursor"]}, headers=agent
    ).json()
    assert following["sessions"][0]["sessionId"] != page["sessions"][0]["sessionId"]
    assert api.get("/agent/sessions", params={"limit": 0}, headers=agent).status_code == 422
    assert api.get("/agent/sessions", params={"limit": 201}, headers=agent).status_code == 422
    assert api.get("/agent/sessions", params={"status": "lost"}, headers=agent).status_code == 422


def test_claim_outcomes_under_quota(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> None:
    # A deployment of its own: seats other tests took on the shared Storage would count against the quota.
    host = start_host(host_env(fresh_azurite))
    with host.client() as api:
        _claim_outcomes(api, fresh_azurite)


def _claim_outcomes(api: httpx.Client, azurite: Azurite) -> None:
    first, second = agent_token(api, "First Agent"), agent_token(api, "Second Agent")
    session_id = waiting_session(api)
    claimed = api.post(f"/agent/sessions/{session_id}/claim", headers=first)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "claimed" and "quotaStatus" not in claimed.json()
    again = api.post(f"/agent/sessions/{session_id}/claim", headers=first)
    assert again.status_code == 200 and again.json()["alreadyClaimed"] is True
    # One shape for the first claim and its repeat: the session itself, no nested copy.
    assert "session" not in claimed.json() and "alreadyClaimed" not in claimed.json()
    assert set(again.json()) - {"alreadyClaimed"} == set(claimed.json())
    taken = api.post(f"/agent/sessions/{session_id}/claim", headers=second)
    assert taken.status_code == 409
    assert taken.json()["agentName"] == "First Agent" and "claimedBy" not in taken.json()  # a name, not an oid
    assert api.post("/agent/sessions/no-such-session/claim", headers=first).status_code == 404
    settled(azurite, session_id)
    mine = api.get("/agent/sessions", params={"claimedBy": "me", "status": "claimed"}, headers=first).json()
    assert session_id in [s["sessionId"] for s in mine["sessions"]]


def test_twenty_agents_racing_get_exactly_one_claim(api: httpx.Client) -> None:
    racers = [agent_token(api, f"Racer {i}") for i in range(20)]
    session_id = waiting_session(api)

    def claim(headers: dict[str, str]) -> int:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            return client.post(f"/agent/sessions/{session_id}/claim", headers=headers).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(claim, racers))
    assert sorted(statuses) == [200] + [409] * 19


def test_messages_close_and_ownership(api: httpx.Client, azurite: Azurite) -> None:
    owner, other = agent_token(api, "Owner Agent"), agent_token(api, "Other Agent")
    visitor = new_visitor(api)
    say(api, visitor, "I need a person")
    session_id = visitor.session_id
    assert api.post(f"/agent/sessions/{session_id}/message", json={"content": "hi"}, headers=owner).status_code == 403
    assert api.post(f"/agent/sessions/{session_id}/claim", headers=owner).status_code == 200
    sent = api.post(f"/agent/sessions/{session_id}/message", json={"content": "Hello, I'm Owner."}, headers=owner)
    assert sent.status_code == 200 and sent.json()["message"]["sender"] == "agent"
    seen = history(api, visitor)["messages"]
    assert seen[-1]["text"] == "Hello, I'm Owner." and seen[-1]["agentName"] == "Owner Agent"
    queued = say(api, visitor, "thanks!")
    assert queued.status_code == 202
    transcript = api.get(f"/agent/sessions/{session_id}/messages", params={"after": 0}, headers=owner).json()
    assert transcript["messages"][-1]["text"] == "thanks!"
    for body, status in (({"content": ""}, 422), ({"content": "x" * 4001}, 422), ({}, 422)):
        assert api.post(f"/agent/sessions/{session_id}/message", json=body, headers=owner).status_code == status
    assert (
        api.post(f"/agent/sessions/{session_id}/message", json={"content": "me too"}, headers=other).status_code == 403
    )
    assert api.post(f"/agent/sessions/{session_id}/close", headers=other).status_code == 403
    closed = api.post(f"/agent/sessions/{session_id}/close", headers=owner)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = api.post(f"/agent/sessions/{session_id}/message", json={"content": "one more"}, headers=owner)
    assert late.status_code == 409
    assert session_header(azurite, session_id)["status"] == "closed"


def test_seats_grace_and_block(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> None:
    host = start_host(
        {"AzureWebJobsStorage": fresh_azurite.connection_string, "ALLOWED_ORIGINS": WEBSITE, "PLAN_ID": "start"}
    )  # two seats, seven days of grace
    with host.client() as api:
        agents = [agent_token(api, f"Seat {i}") for i in range(4)]
        for agent in agents[:2]:
            assert api.post(f"/agent/sessions/{waiting_session(api)}/claim", headers=agent).status_code == 200
        # Seats are taken by the outbox right after each claim.
        eventually(lambda: api.get("/plan").json()["seatsUsed"] == 2, what="two seats taken")
        grace = api.post(f"/agent/sessions/{waiting_session(api)}/claim", headers=agents[2])
        assert grace.status_code == 200
        assert grace.json()["quotaStatus"]["exceeded"] is True and grace.json()["quotaStatus"]["seatsUsed"] == 3
        plan = eventually(lambda: (p := api.get("/plan").json())["seatsUsed"] == 3 and p, what="the third seat")
        assert (plan["seatsUsed"], plan["exceeded"], plan["daysOverQuota"], plan["blocked"]) == (3, True, 0, False)
        # Eight days later the grace period is over.
        long_ago = (datetime.now(UTC) - timedelta(days=8)).isoformat()
        tables(fresh_azurite).get_table_client("meta").upsert_entity(
            {"PartitionKey": "state", "RowKey": "quota", "overQuotaSince": long_ago}
        )
        plan = api.get("/plan").json()
        assert (plan["daysOverQuota"], plan["blocked"]) == (8, True)
        refused = api.post(f"/agent/sessions/{waiting_session(api)}/claim", headers=agents[3])
        assert refused.status_code == 403
        body = refused.json()
        assert body["error"] == "seat-quota-exceeded" and body["upgradeUrl"].startswith("https://")
        existing = api.post(f"/agent/sessions/{waiting_session(api)}/claim", headers=agents[0])
        assert existing.status_code == 200  # a seat holder this month keeps working


def test_listener_timeouts_return_handoffs_to_the_bot_and_close_idle(
    azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    host = start_host(
        {
            "AzureWebJobsStorage": azurite.connection_string,
            "ALLOWED_ORIGINS": WEBSITE,
            "HUMAN_WAIT_MINUTES": "10",
            "IDLE_CLOSE_MINUTES": "60",
        }
    )
    with host.client() as api:
        waiting = new_visitor(api)
        say(api, waiting, "talk to a person")
        fresh = new_visitor(api)
        say(api, fresh, "talk to a person")
        idle = new_visitor(api)
        say(api, idle, "hello")
        settled(azurite, waiting.session_id, fresh.session_id, idle.session_id)  # the timers read the orderings
        old = (datetime.now(UTC) - timedelta(minutes=11)).isoformat()
        set_session(azurite, waiting.session_id, handoffRequestedAt=old)
        run_timer(host, "listener_timeouts")
        assert session_header(azurite, waiting.session_id)["status"] == "open"
        assert "nobody" in history(api, waiting)["messages"][-1]["text"].lower()
        assert session_header(azurite, fresh.session_id)["status"] == "human_requested"
        assert say(api, waiting, "shipping?").status_code == 200  # the bot answers again
        # Idle: move the session's last activity back and re-index it through a real change.
        stale = (datetime.now(UTC) - timedelta(minutes=61)).isoformat()
        set_session(azurite, idle.session_id, lastActivityAt=stale)
        _reindex(azurite, idle.session_id, stale)
        run_timer(host, "listener_timeouts")
        run_timer(host, "listener_timeouts")  # a second run (another instance) changes nothing more
        assert session_header(azurite, idle.session_id)["status"] == "closed"
        closing = [m for m in history(api, idle)["messages"] if m["sender"] == "system"]
        assert len(closing) == 1


def _reindex(azurite: Azurite, session_id: str, last_activity: str) -> None:
    """Put the activity ordering and status rows where a session idle since ``last_activity`` would be."""
    from shared.storage.orderings import activity_key

    index = tables(azurite).get_table_client("sessionindex")
    rows = list(index.query_entities("PartitionKey eq 'byactivity' and sessionId eq @s", parameters={"s": session_id}))
    for row in rows:
        index.delete_entity(row["PartitionKey"], row["RowKey"])
    moved = {
        **dict(rows[0]),
        "RowKey": activity_key(datetime.fromisoformat(last_activity), session_id),
        "lastActivityAt": last_activity,
    }
    index.create_entity(moved)
    for row in index.query_entities("RowKey eq @s", parameters={"s": session_id}):
        if row["PartitionKey"].startswith("status-"):
            index.update_entity({**dict(row), "lastActivityAt": last_activity})


def test_agents_see_the_page_the_visitor_is_on(api: httpx.Client, azurite: Azurite) -> None:
    agent = agent_token(api, "Page Watcher")
    first = {"url": f"{WEBSITE}/pricing?reset=s3cret#plans", "title": "  Pricing\n   plans "}
    opened = api.post("/widget/session", json={"page": first}, headers={"Origin": WEBSITE})
    assert opened.status_code == 201, opened.text
    visitor = Visitor(opened.json()["sessionId"], opened.json()["token"])
    stored = session_header(azurite, visitor.session_id)
    # Only the address up to its path is kept: the query string and fragment never reach Storage.
    assert (stored["pageUrl"], stored["pageTitle"]) == (f"{WEBSITE}/pricing", "Pricing plans")
    assert say(api, visitor, "talk to a person please").json()["status"] == "human_requested"
    before = session_header(azurite, visitor.session_id)

    # The visitor moves on: the widget loads on the next page and renews its session there.
    def renew(url: str, title: str) -> httpx.Response:
        body = {"sessionId": visitor.session_id, "page": {"url": url, "title": title}}
        return api.post("/widget/session", json=body, headers={"Origin": WEBSITE, **visitor.auth})

    assert renew(f"https://someone:secret@{WEBSITE.removeprefix('https://')}/checkout", "Checkout").status_code == 201
    moved = session_header(azurite, visitor.session_id)
    assert (moved["pageUrl"], moved["pageTitle"]) == (f"{WEBSITE}/checkout", "Checkout")
    assert moved["lastActivityAt"] == before["lastActivityAt"]  # browsing is not chat activity
    assert renew(f"{WEBSITE}/checkout", "Checkout").status_code == 201
    assert session_header(azurite, visitor.session_id)["version"] == moved["version"]  # same page: no write

    settled(azurite, visitor.session_id)
    page = {"url": f"{WEBSITE}/checkout", "title": "Checkout"}
    queue = api.get("/agent/sessions", params={"status": "human_requested", "limit": 200}, headers=agent).json()
    row = next(s for s in queue["sessions"] if s["sessionId"] == visitor.session_id)
    assert row["page"] == page
    # The row quotes the visitor, not the bot's handoff notice (the alert for a new visitor shows it).
    assert row["visitorPreview"] == "talk to a person please" and row["preview"] != row["visitorPreview"]
    assert api.get(f"/agent/sessions/{visitor.session_id}/messages", headers=agent).json()["session"]["page"] == page

    for bad, field in [
        ({"url": "javascript:alert(1)"}, "page.url"),
        ({"url": "ftp://example.com/file"}, "page.url"),
        ({"url": "https://"}, "page.url"),
        ({"url": WEBSITE + "/" + "a" * 2048}, "page.url"),
        ({"url": WEBSITE, "title": "t" * 201}, "page.title"),
        ({"title": "No address"}, "page.url"),
    ]:
        refused = api.post("/widget/session", json={"page": bad}, headers={"Origin": WEBSITE})
        assert refused.status_code == 422, (bad, refused.text)
        assert field in [error["field"] for error in refused.json()["errors"]], refused.json()
