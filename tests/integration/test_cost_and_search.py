"""Cost buckets, session lists, transcripts and search over HTTP, on data seeded through the repositories.

The module has an Azurite of its own, so every total and ordering is exactly what it seeds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.support import ADMIN_KEY, host_env, in_storage, new_visitor, say, seed_session, settled

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def host(module_azurite: Azurite, start_host: Callable[..., Host]) -> Host:
    """The admin app on this module's Azurite, bootstrapped."""
    started = start_host(host_env(module_azurite))
    with started.client() as api:
        assert api.get("/health").status_code == 200
    return started


@pytest.fixture()
def api(host: Host) -> Iterator[httpx.Client]:
    """An admin client (key in the Authorization header)."""
    with host.client(headers=AUTH) as client:
        yield client


# --- cost -------------------------------------------------------------------------------------------


def test_cost_buckets_match_the_seeded_rollups(module_azurite: Azurite, api: httpx.Client) -> None:
    from shared.storage.rollups import RollupRepository

    now = datetime.now(UTC)
    # One add per hour: RollupRepository.add cannot yet re-read its Int64 counters (reported).
    seeds = [  # (hours ago, counters)
        (0.1, {"calls": 2, "promptTokens": 100, "completionTokens": 50, "costMicroUsd": 1_500, "sessions": 1,
               "messages": 4, "handoffs": 1}),
        (2.5, {"calls": 1, "promptTokens": 40, "completionTokens": 10, "costMicroUsd": 250, "messages": 2}),
        (2.6, {"calls": 3, "promptTokens": 60, "completionTokens": 30, "costMicroUsd": 750, "sessions": 2,
               "messages": 6}),
        (11, {"calls": 1, "promptTokens": 7, "completionTokens": 3, "costMicroUsd": 100, "sessions": 1,
              "messages": 2, "handoffs": 1}),
        (30, {"calls": 5, "promptTokens": 500, "completionTokens": 500, "costMicroUsd": 20_000, "sessions": 4,
              "messages": 10}),
        (200, {"calls": 9, "promptTokens": 9, "completionTokens": 9, "costMicroUsd": 9, "sessions": 9}),
    ]  # fmt: skip

    async def seed() -> None:
        repo = RollupRepository()
        for hours_ago, counters in seeds:
            await repo.add(now - timedelta(hours=hours_ago), **counters)

    in_storage(module_azurite, seed)

    day = api.get("/cost", params={"window": "24h", "bucketHours": 6}).json()
    assert day["window"] == "24h" and day["bucketHours"] == 6 and len(day["buckets"]) == 4
    start = datetime.fromisoformat(day["start"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(day["end"].replace("Z", "+00:00")) - start == timedelta(hours=24)
    # By hand: the last 24 h hold the first four seeds: 2+1+3+1 calls, 150+50+90+10 tokens, ...
    assert day["totals"] == {
        "calls": 7, "promptTokens": 207, "completionTokens": 93, "totalTokens": 300, "costUsd": 0.0026,
        "sessions": 4, "messages": 14, "handoffs": 2, "handoffRate": 0.5,
    }  # fmt: skip
    expected = [{"calls": 0, "costUsd": 0.0, "totalTokens": 0} for _ in range(4)]
    for hours_ago, counters in seeds[:4]:
        moment = (now - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
        bucket = expected[int((moment - start).total_seconds() // (6 * 3600))]
        bucket["calls"] += counters["calls"]
        bucket["costUsd"] = round(bucket["costUsd"] + counters["costMicroUsd"] / 1e6, 6)
        bucket["totalTokens"] += counters["promptTokens"] + counters["completionTokens"]
    assert [{k: b[k] for k in ("calls", "costUsd", "totalTokens")} for b in day["buckets"]] == expected
    assert [b["start"] for b in day["buckets"]] == [
        (start + timedelta(hours=6 * i)).isoformat(timespec="milliseconds").replace("+00:00", "Z") for i in range(4)
    ]

    hourly = api.get("/cost", params={"window": "24h"}).json()
    assert len(hourly["buckets"]) == 24 and sum(b["calls"] for b in hourly["buckets"]) == 7
    assert sum(1 for b in hourly["buckets"] if b["calls"] == 0) >= 20  # empty hours are present, zeroed

    week = api.get("/cost", params={"window": "7d", "bucketHours": 24}).json()
    assert len(week["buckets"]) == 7
    assert week["totals"]["calls"] == 12 and week["totals"]["costUsd"] == 0.0226  # the 200 h seed is outside
    assert week["totals"]["sessions"] == 8 and week["totals"]["handoffRate"] == 0.25


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"window": "3d"}, "window"),
        ({"window": "24h", "bucketHours": "5"}, "bucketHours"),
        ({"window": "24h", "bucketHours": "0"}, "bucketHours"),
        ({"window": "7d", "bucketHours": "169"}, "bucketHours"),
        ({"window": "7d", "bucketHours": "abc"}, "bucketHours"),
    ],
)
def test_cost_validates_its_parameters(api: httpx.Client, params: dict[str, str], field: str) -> None:
    response = api.get("/cost", params=params)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


# --- sessions and transcripts -------------------------------------------------------------------------


def _all_pages(api: httpx.Client, sort_by: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        params = {"sortBy": sort_by, "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = api.get("/sessions", params=params).json()
        pages.append([s["sessionId"] for s in body["sessions"]])
        cursor = body["nextCursor"]
        if not cursor:
            return pages


def test_top_sessions_and_transcripts(module_azurite: Azurite, api: httpx.Client) -> None:
    base = datetime.now(UTC) - timedelta(hours=3)
    costs = [500, 12_000, 3_000, 7_000, 1_000]  # micro-dollars per bot reply; two replies each

    async def seed() -> list[str]:
        return [
            await seed_session(
                [("visitor", f"question {i}"), ("bot", f"answer {i}"), ("visitor", "thanks"), ("bot", "welcome")],
                at=base + timedelta(minutes=i), cost_micro=cost, tokens=(30 + i, 10),
            )
            for i, cost in enumerate(costs)
        ]  # fmt: skip

    ids = in_storage(module_azurite, seed)
    by_cost = [ids[i] for i in (1, 3, 2, 4, 0)]  # 24000, 14000, 6000, 2000, 1000 micro-dollars
    pages = _all_pages(api, "cost", 2)
    assert [s for page in pages for s in page if s in ids] == by_cost
    assert all(len(page) <= 2 for page in pages)
    top = api.get("/sessions", params={"sortBy": "cost", "limit": 1}).json()["sessions"][0]
    assert top["sessionId"] == ids[1] and top["costUsd"] == 0.024 and top["messageCount"] == 4
    recent = [s for page in _all_pages(api, "lastActivity", 3) for s in page if s in ids]
    assert recent == ids[::-1]
    assert api.get("/sessions", params={"sortBy": "price"}).status_code == 422
    assert api.get("/sessions", params={"limit": 201}).status_code == 422
    bad_cursor = api.get("/sessions", params={"sortBy": "cost", "cursor": "bm9wZQ"})
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["field"] == "cursor"

    transcript = api.get(f"/sessions/{ids[3]}/transcript").json()
    assert transcript["session"]["sessionId"] == ids[3] and transcript["session"]["costUsd"] == 0.014
    messages = transcript["messages"]
    assert [(m["seq"], m["sender"], m["text"]) for m in messages] == [
        (1, "visitor", "question 3"), (2, "bot", "answer 3"), (3, "visitor", "thanks"), (4, "bot", "welcome"),
    ]  # fmt: skip
    assert (messages[1]["promptTokens"], messages[1]["completionTokens"], messages[1]["costUsd"]) == (33, 10, 0.007)
    assert messages[0]["costUsd"] == 0 and messages[0]["createdAt"].endswith("Z")
    assert transcript["nextAfter"] is None
    paged = api.get(f"/sessions/{ids[3]}/transcript", params={"after": 2, "limit": 1}).json()
    assert [m["seq"] for m in paged["messages"]] == [3] and paged["nextAfter"] == 3
    missing = api.get("/sessions/no-such-session/transcript")
    assert missing.status_code == 404 and missing.json()["type"].endswith("session-not-found")


def test_a_session_costing_more_than_int32_micro_dollars_is_listed(module_azurite: Azurite, api: httpx.Client) -> None:
    # Past Int32 in micro-dollars ($2,147.48): the orderings must still take the session.
    at = datetime.now(UTC)
    expensive = in_storage(
        module_azurite, lambda: seed_session([("visitor", "big"), ("bot", "costly")], at=at, cost_micro=3_000_000_000)
    )
    top = api.get("/sessions", params={"sortBy": "cost", "limit": 1}).json()["sessions"]
    assert [(s["sessionId"], s["costUsd"]) for s in top] == [(expensive, 3000.0)]


def test_sessions_without_cost_sort_last(module_azurite: Azurite, api: httpx.Client) -> None:
    at = datetime.now(UTC) - timedelta(hours=2)

    async def seed() -> list[str]:
        return [
            await seed_session([("visitor", "free question")], at=at),
            await seed_session([("visitor", "paid"), ("bot", "answer")], at=at, cost_micro=1),
        ]

    free, paid = in_storage(module_azurite, seed)
    ranked = [s for page in _all_pages(api, "cost", 200) for s in page]
    assert ranked.index(paid) < ranked.index(free)


# --- search ---------------------------------------------------------------------------------------------


def _search(api: httpx.Client, q: str, **params: Any) -> dict[str, Any]:
    response = api.get("/sessions/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


def _texts(body: dict[str, Any]) -> list[str]:
    return [r["snippet"] for r in body["results"]]


@pytest.fixture(scope="module")
def corpus(module_azurite: Azurite) -> dict[str, str]:
    """Messages in a compacted segment, in a bulk segment and still pending: name -> session id."""
    from shared import search
    from shared.conversations.models import Message

    base = datetime.now(UTC) - timedelta(days=1)

    async def seed() -> dict[str, str]:
        ids = {}
        ids["cafe"] = await seed_session([("visitor", "Le CAFÉ était froid ce matin")], at=base)
        ids["express"] = await seed_session([("visitor", "Express shipping arrives tomorrow, right?")], at=base)
        await search.compact()  # those two now live in a segment
        ids["markup"] = await seed_session(
            [("visitor", 'My order <script>alert("x")</script> & <b>bold</b> tag'), ("bot", "Noted: bold order")],
            at=base + timedelta(minutes=1),
        )
        ids["latte"] = await seed_session([("bot", "A cafe latte costs 100% more on Sundays 😀")], at=base)
        ids["not-express"] = await seed_session([("visitor", "Shipping was not express at all")], at=base)
        bulk_id = str(uuid.uuid4())
        await search.bulk_index(
            Message(bulk_id, seq, "visitor", f"paging message number {seq}", created_at=base + timedelta(seconds=seq))
            for seq in range(1, 26)
        )
        ids["bulk"] = bulk_id
        return ids

    return in_storage(module_azurite, seed)


def test_search_finds_words_and_phrases_ignoring_case_and_accents(api: httpx.Client, corpus: dict[str, str]) -> None:
    cafe = _search(api, "cafe")
    assert {r["sessionId"] for r in cafe["results"]} == {corpus["cafe"], corpus["latte"]}
    snippets = {r["sessionId"]: r["snippet"] for r in cafe["results"]}
    assert "<mark>CAFÉ</mark>" in snippets[corpus["cafe"]]
    assert {r["sessionId"] for r in _search(api, "ÉTAIT Froid")["results"]} == {corpus["cafe"]}
    phrase = _search(api, '"express shipping"')
    assert [r["sessionId"] for r in phrase["results"]] == [corpus["express"]]
    assert "<mark>Express shipping</mark> arrives" in phrase["results"][0]["snippet"]
    words = {r["sessionId"] for r in _search(api, "express shipping")["results"]}
    assert words == {corpus["express"], corpus["not-express"]}  # words are AND-ed, in any order
    assert {r["sessionId"] for r in _search(api, "ship*")["results"]} == {corpus["express"], corpus["not-express"]}
    hit = phrase["results"][0]
    assert hit["sender"] == "visitor" and hit["seq"] == 1 and hit["createdAt"].endswith("Z") and hit["messageId"]
    assert _search(api, "nothing-like-this-anywhere")["results"] == []


def test_search_escapes_markup_in_snippets(api: httpx.Client, corpus: dict[str, str]) -> None:
    body = _search(api, "script alert")
    assert [r["sessionId"] for r in body["results"]] == [corpus["markup"]]
    snippet = body["results"][0]["snippet"]
    assert "<script>" not in snippet and "<b>" not in snippet
    assert "&lt;<mark>script</mark>&gt;<mark>alert</mark>(&quot;x&quot;)" in snippet and "&amp;" in snippet
    newest_first = _search(api, "bold")["results"]
    assert [r["seq"] for r in newest_first] == [2, 1]


def test_search_pages_newest_first(api: httpx.Client, corpus: dict[str, str]) -> None:
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        body = _search(api, "paging number", limit=10, **({"cursor": cursor} if cursor else {}))
        seen += [r["seq"] for r in body["results"]]
        cursor = body["nextCursor"]
        if not cursor:
            break
    assert seen == list(range(25, 0, -1))
    assert api.get("/sessions/search", params={"q": "paging", "cursor": "garbage!"}).status_code == 422


@pytest.mark.parametrize(
    "q",
    ['"', '""', '"unterminated phrase', "%", "100%", "*", "cafe*", "😀", "😀 cafe", "a" * 1000, "cafe " * 200,
     "NEAR(cafe latte)", "text:cafe OR latte", "cafe -latte", "' OR 1=1 --", "(((", "^cafe", "x\u0000y"],
)  # fmt: skip
def test_search_survives_any_query(api: httpx.Client, corpus: dict[str, str], q: str) -> None:
    response = api.get("/sessions/search", params={"q": q})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["results"], list)


def test_search_refuses_empty_and_oversized_queries(api: httpx.Client) -> None:
    for q in ("", "   "):
        response = api.get("/sessions/search", params={"q": q})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "q"
    assert api.get("/sessions/search").status_code == 422
    assert api.get("/sessions/search", params={"q": "a" * 2001}).status_code == 422


def test_a_chat_message_becomes_searchable(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> None:
    from shared import search

    # Bot off: the turn is the visitor's message and a hand-off notice; only the message has the word.
    host = start_host(host_env(fresh_azurite, BOT_ENABLED="false"))
    with host.client() as visitor_api, host.client(headers=AUTH) as api:
        assert visitor_api.get("/health").status_code == 200  # bootstrap creates the tables
        visitor = new_visitor(visitor_api)
        assert say(visitor_api, visitor, "My xylophone arrived broken").status_code == 200
        settled(fresh_azurite, visitor.session_id)  # search rows are written from the outbox
        pending = _search(api, "XYLOPHONE")
        assert [(r["sessionId"], r["sender"]) for r in pending["results"]] == [(visitor.session_id, "visitor")]
        in_storage(fresh_azurite, search.compact)
        compacted = _search(api, "xylophone")  # now from a segment, and still exactly once
        assert [r["seq"] for r in compacted["results"]] == [r["seq"] for r in pending["results"]]
        assert _search(api, "arrived broken")["results"][0]["snippet"].count("<mark>") == 2
