"""Analytics and ratings over real HTTP on an Azurite of this module's own.

Conversations are seeded through the product's API (the bot, agents, the idle timer, ratings); the
test works out the right figures from what it did and from the transcripts' timestamps, then checks
``GET /api/analytics``. Rating refusals: validation, tokens, an open conversation, a second rating.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.integration.test_agents import _reindex, agent_token
from tests.support import (
    ADMIN_KEY,
    WEBSITE,
    Visitor,
    eventually,
    host_env,
    new_visitor,
    run_timer,
    say,
    session_header,
    set_session,
    settled,
)

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
REPLY_EDGES = [1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000]
LATENCY_EDGES = [50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000]


@pytest.fixture(scope="module")
def host(module_azurite: Azurite, start_host: Callable[..., Host]) -> Host:
    """The product on that Azurite, closing conversations idle for an hour."""
    return start_host(host_env(module_azurite, IDLE_CLOSE_MINUTES="60"))


@pytest.fixture()
def api(host: Host) -> Iterator[httpx.Client]:
    """A client for /api."""
    with host.client() as client:
        yield client


def _rate(api: httpx.Client, visitor: Visitor, score: Any, **extra: Any) -> httpx.Response:
    return api.post(
        "/chat/rating", json={"score": score, "sessionId": visitor.session_id, **extra}, headers=visitor.auth
    )


def _close_idle(api: httpx.Client, azurite: Azurite, host: Host, *visitors: Visitor) -> None:
    settled(azurite, *(v.session_id for v in visitors))
    stale = (datetime.now(UTC) - timedelta(minutes=61)).isoformat()
    for visitor in visitors:
        set_session(azurite, visitor.session_id, lastActivityAt=stale)
        _reindex(azurite, visitor.session_id, stale)
    run_timer(host, "listener_timeouts")
    for visitor in visitors:
        assert session_header(azurite, visitor.session_id)["status"] == "closed"


def _handed_to(api: httpx.Client, agent: dict[str, str], reply: str, *, close: bool) -> Visitor:
    visitor = new_visitor(api)
    assert say(api, visitor, "I want to talk to a person").json()["status"] == "human_requested"
    assert api.post(f"/agent/sessions/{visitor.session_id}/claim", headers=agent).status_code == 200
    sent = api.post(f"/agent/sessions/{visitor.session_id}/message", json={"content": reply}, headers=agent)
    assert sent.status_code == 200, sent.text
    if close:
        assert api.post(f"/agent/sessions/{visitor.session_id}/close", headers=agent).status_code == 200
    return visitor


def _transcript(api: httpx.Client, session_id: str) -> dict[str, Any]:
    response = api.get(f"/sessions/{session_id}/transcript", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def _nearest_rank(values: list[int], fraction: float, edges: list[int]) -> int:
    """The nearest-rank percentile of ``values``, said as the histogram bucket edge that holds it."""
    value = sorted(values)[max(1, math.ceil(fraction * len(values))) - 1]
    return next(edge for edge in edges if value <= edge)


def _ms(start: str, end: str) -> int:
    moment = datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
    return int(moment.total_seconds() * 1000)


def test_figures_match_what_was_seeded(api: httpx.Client, module_azurite: Azurite, host: Host) -> None:
    empty = api.get("/analytics", headers=ADMIN)
    assert empty.status_code == 200
    assert empty.json()["totals"]["conversations"] == 0 and empty.json()["totals"]["botResolutionRate"] is None

    ada, bob = agent_token(api, "Ada Analytics"), agent_token(api, "Bob Analytics")
    new_visitor(api)  # opened, never written in: not a conversation
    bot_closed, bot_open, bot_rated = new_visitor(api), new_visitor(api), new_visitor(api)
    for visitor in (bot_closed, bot_open, bot_rated):
        assert say(api, visitor, "What are your opening hours?").status_code == 200
    waiting = new_visitor(api)
    assert say(api, waiting, "talk to a person please").json()["status"] == "human_requested"
    happy = _handed_to(api, ada, "Happy to help!", close=True)
    unhappy = _handed_to(api, bob, "Let me look.", close=True)
    _close_idle(api, module_azurite, host, bot_closed, bot_rated)
    assert _rate(api, happy, 5, comment="Great").status_code == 201
    assert _rate(api, unhappy, 2).status_code == 201
    assert _rate(api, bot_rated, 4).status_code == 201
    everyone = (bot_closed, bot_open, bot_rated, waiting, happy, unhappy)
    settled(module_azurite, *(v.session_id for v in everyone))

    # What the test did, worked out on its own: who wrote, who asked for a person, who joined, who closed.
    conversations = len(everyone)
    handoffs = 3  # waiting, happy, unhappy
    bot_resolved = 2  # bot_closed (closed, no person, not reopened) and bot_rated (also rated 4)
    ratings = {"5": 1, "2": 1, "4": 1}
    first_replies, latencies = [], []
    for visitor in everyone:
        transcript = _transcript(api, visitor.session_id)
        session = transcript["session"]
        agent_messages = [m for m in transcript["messages"] if m["sender"] == "agent"]
        if agent_messages:
            first_replies.append(_ms(session["handoffRequestedAt"], agent_messages[0]["createdAt"]))
        latencies += [m["latencyMs"] for m in transcript["messages"] if m["sender"] == "bot" and m["model"]]
    assert len(first_replies) == 2 and len(latencies) == 3

    today = datetime.now(UTC).date()
    params = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat(), "bucket": "day"}
    body = api.get("/analytics", params=params, headers=ADMIN).json()
    totals = body["totals"]
    assert totals["conversations"] == conversations
    assert totals["handoffs"] == handoffs and totals["handoffRate"] == round(handoffs / conversations, 4)
    assert totals["withPerson"] == 2 and totals["closed"] == 4 and totals["resolved"] == 4
    assert totals["botResolved"] == bot_resolved
    assert totals["botResolutionRate"] == round(bot_resolved / conversations, 4)
    assert totals["csat"]["count"] == 3 and totals["csat"]["average"] == round((5 + 2 + 4) / 3, 2)
    assert {k: v for k, v in totals["csat"]["distribution"].items() if v} == ratings
    assert totals["firstHumanReply"]["count"] == 2
    assert totals["firstHumanReply"]["p50Ms"] == _nearest_rank(first_replies, 0.5, REPLY_EDGES)
    assert totals["firstHumanReply"]["p90Ms"] == _nearest_rank(first_replies, 0.9, REPLY_EDGES)
    assert totals["botLatency"]["count"] == 3
    assert totals["botLatency"]["p50Ms"] == _nearest_rank(latencies, 0.5, LATENCY_EDGES)
    assert totals["botLatency"]["p95Ms"] == _nearest_rank(latencies, 0.95, LATENCY_EDGES)
    assert totals["costUsd"] == 0 and totals["costPerConversationUsd"] == 0  # the offline bot is free
    assert len(body["buckets"]) == 2 and sum(b["conversations"] for b in body["buckets"]) == conversations
    agents = {a["name"]: a for a in body["agents"]}
    assert set(agents) == {"Ada Analytics", "Bob Analytics"}
    assert (agents["Ada Analytics"]["claimed"], agents["Ada Analytics"]["csat"]) == (1, {"count": 1, "average": 5.0})
    assert agents["Bob Analytics"]["csat"]["average"] == 2.0 and agents["Bob Analytics"]["resolved"] == 1
    assert set(body["definitions"]) >= {"conversations", "botResolutionRate", "handoffRate", "firstHumanReply"}

    week = api.get("/analytics", params={**params, "bucket": "month"}, headers=ADMIN).json()
    assert week["totals"]["conversations"] == conversations and week["totals"]["botResolved"] == bot_resolved
    # Applying the same outbox again counts nothing twice (the facts remember the last commit).
    run_timer(host, "outbox_repair")
    assert api.get("/analytics", params=params, headers=ADMIN).json()["totals"] == totals


def test_analytics_refuses_bad_ranges_and_strangers(api: httpx.Client) -> None:
    assert api.get("/analytics").status_code == 401
    assert api.get("/analytics", headers={"Authorization": "Bearer wrong-key"}).status_code == 401
    cases = [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from"),
        ({"bucket": "hour"}, "bucket"),
    ]
    for params, field in cases:
        response = api.get("/analytics", params=params, headers=ADMIN)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in response.json()["errors"]] == [field]
    year = api.get("/analytics", params={"from": "2025-01-01", "to": "2025-12-31", "bucket": "week"}, headers=ADMIN)
    assert year.status_code == 200 and year.json()["buckets"][0] == {**year.json()["buckets"][0], "start": "2025-01-01"}
    assert year.json()["buckets"][1]["start"] == "2025-01-06"  # weeks start on Monday


def test_rating_refusals_and_once(api: httpx.Client, module_azurite: Azurite) -> None:
    agent = agent_token(api, "Rating Agent")
    visitor = new_visitor(api)
    assert say(api, visitor, "hello").status_code == 200
    refused = _rate(api, visitor, 5)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/session-open")
    stranger = new_visitor(api)
    assert (
        api.post("/chat/rating", json={"score": 5, "sessionId": visitor.session_id}, headers=stranger.auth).status_code
        == 401
    )
    assert api.post("/chat/rating", json={"score": 5}).status_code == 401
    assert api.post("/chat/rating", json={"score": 5}, headers={"Authorization": "Bearer forged"}).status_code == 401

    closed = _handed_to(api, agent, "Sorted.", close=True)
    for body, field in (({}, "score"), ({"score": 0}, "score"), ({"score": 6}, "score"), ({"score": "5"}, "score"),
                        ({"score": 4.5}, "score"), ({"score": 5, "comment": "x" * 1001}, "comment")):  # fmt: skip
        response = api.post("/chat/rating", json={**body, "sessionId": closed.session_id}, headers=closed.auth)
        assert response.status_code == 422, (body, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field]
    first = _rate(api, closed, 3, comment="  Slow but fine  ")
    assert first.status_code == 201
    assert first.json() == {"sessionId": closed.session_id, "rating": {"score": 3, "comment": "Slow but fine"}}
    again = _rate(api, closed, 5)
    assert again.status_code == 409 and again.json()["type"].endswith("/already-rated") and again.json()["score"] == 3
    assert session_header(module_azurite, closed.session_id)["rating"] == 3
    events = eventually(
        lambda: api.get("/audit", params={"sessionId": closed.session_id}, headers=ADMIN).json()["events"],
        what="the audit's events",
    )
    rated = eventually(
        lambda: [e for e in api.get("/audit", params={"sessionId": closed.session_id}, headers=ADMIN).json()["events"]
                 if e["event"] == "rating:given"],
        what="the rating in the audit log",
    )  # fmt: skip
    assert (
        events and rated[0]["details"] == {"score": "3", "comment": "Slow but fine"} and rated[0]["actor"] == "visitor"
    )


def test_the_widget_says_how_fast_the_team_usually_replies(
    api: httpx.Client, module_azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    cy = agent_token(api, "Cy Analytics")
    replied = [_handed_to(api, cy, "On it.", close=False) for _ in range(3)]
    settled(module_azurite, *(v.session_id for v in replied))
    today = datetime.now(UTC).date()
    window = {"from": (today - timedelta(days=13)).isoformat(), "to": today.isoformat()}
    totals = api.get("/analytics", params=window, headers=ADMIN).json()["totals"]["firstHumanReply"]
    assert totals["count"] >= 3
    # Replies here take well under a minute (the test's agent answers at once).
    assert totals["p50Ms"] <= 60_000
    # A worker reads the figure at most every few minutes: a host started now says it in words.
    fresh = start_host(host_env(module_azurite, IDLE_CLOSE_MINUTES="60"))
    try:
        with fresh.client() as other:
            opened = other.post("/widget/session", json={}, headers={"Origin": WEBSITE})
    finally:
        fresh.stop()
    assert opened.status_code == 201
    assert opened.json()["config"]["replyIn"] == "under a minute"
