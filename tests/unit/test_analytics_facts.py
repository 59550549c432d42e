"""The analytics' pure parts: what a commit tells them, how facts fold, percentiles, buckets, ranges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.analytics.facts import (
    LATENCY_EDGES_MS,
    REPLY_EDGES_MS,
    Event,
    Facts,
    contribution,
    event_of,
    fold,
    percentile,
)
from shared.analytics.report import bucket_starts, parse_range, summarise
from shared.analytics.typical import MIN_REPLIES, median_of, reply_words
from shared.conversations.machine import Rate, decide
from shared.conversations.models import CLOSED, OPEN, Message, Session
from shared.errors import Problem
from shared.storage.analytics import DayRows

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _day(events: list[Event]) -> dict[str, int]:
    facts, total = Facts(), dict[str, int]()
    for version, event in enumerate(events, 1):
        before = contribution(facts)[0]
        facts = fold(facts, event, version)
        for name, value in contribution(facts)[0].items():
            total[name] = total.get(name, 0) + value - before.get(name, 0)
        for name in set(before) - set(contribution(facts)[0]):
            total[name] = total.get(name, 0) - before[name]
    return {k: v for k, v in total.items() if v}


def test_a_bot_only_conversation_is_resolved_at_close_and_taken_back_on_a_reopen_within_24_hours() -> None:
    wrote = Event("20260310", visitor_wrote=True)
    closed = Event("20260310", closed=True, at="2026-03-10T12:00:00.000Z")
    assert _day([wrote, closed])["botResolved"] == 1
    soon = Event("20260310", reopened=True, at="2026-03-11T11:59:00.000Z")
    assert "botResolved" not in _day([wrote, closed, soon]) and "closed" not in _day([wrote, closed, soon])
    late = Event("20260310", reopened=True, at="2026-03-11T12:01:00.000Z")
    assert _day([wrote, closed, late])["botResolved"] == 1
    rated = Event("20260310", rating=4)
    assert _day([wrote, closed, rated, soon])["botResolved"] == 1  # a good rating counts it whatever follows


def test_a_widget_never_written_in_counts_nothing_and_a_person_means_not_the_bot() -> None:
    assert _day([Event("20260310", closed=True, at="2026-03-10T12:00:00.000Z")]) == {}
    person = [
        Event("20260310", visitor_wrote=True, handed_off=True),
        Event("20260310", agent="a1", agent_name="Ada"),
        Event("20260310", agent="a1", first_reply_ms=4_000),
        Event("20260310", agent="a1", closed=True, at="x"),
    ]
    day = _day(person)
    assert (day["conversations"], day["handoffs"], day["withPerson"], day["resolved"]) == (1, 1, 1, 1)
    assert "botResolved" not in day and day["reply2"] == 1  # 4 s sits in the (2 s, 5 s] bucket


def test_event_of_a_commit() -> None:
    before = Session("s1", status=CLOSED, created_at=NOW - timedelta(days=1))
    decision = decide(before, Rate(5), NOW)
    event = event_of(before, decision.after, [], cost_micro_usd=0, now=NOW)
    assert event is not None and (event.day, event.rating) == ("20260309", 5)
    quiet = Session("s2", status=OPEN, created_at=NOW)
    assert event_of(quiet, quiet.copy(), [], cost_micro_usd=0, now=NOW) is None
    reply = Message("s2", 2, "bot", "hi", created_at=NOW, provider="offline", latency_ms=120)
    assert event_of(quiet, quiet.copy(), [reply], cost_micro_usd=7, now=NOW).latencies_ms == [120]  # type: ignore[union-attr]
    assert Event.from_payload(event.payload()) == event


@pytest.mark.parametrize(
    ("counts", "fraction", "expected"),
    [([0] * (len(LATENCY_EDGES_MS) + 1), 0.5, None), ([1, 1] + [0] * (len(LATENCY_EDGES_MS) - 1), 0.5, 50),
     ([1, 1] + [0] * (len(LATENCY_EDGES_MS) - 1), 0.95, 100), ([0] * len(LATENCY_EDGES_MS) + [3], 0.5, 60_000)],
)  # fmt: skip
def test_percentiles_come_from_bucket_counts(counts: list[int], fraction: float, expected: int | None) -> None:
    assert percentile(counts, LATENCY_EDGES_MS, fraction) == expected


def test_buckets_and_ranges() -> None:
    assert bucket_starts(date(2026, 1, 30), date(2026, 2, 2), "day")[0] == (date(2026, 1, 30), date(2026, 1, 30))
    assert bucket_starts(date(2026, 1, 30), date(2026, 3, 2), "month") == [
        (date(2026, 1, 30), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 2)),
    ]
    assert [s for s, _ in bucket_starts(date(2026, 3, 4), date(2026, 3, 20), "week")] == [
        date(2026, 3, 4), date(2026, 3, 9), date(2026, 3, 16),
    ]  # fmt: skip
    for args, field in ((("2026-01-02", "2026-01-01", None), "from"), (("x", None, None), "from"),
                        ((None, "2026-13-01", None), "to"), (("2024-01-01", "2025-01-02", None), "from"),
                        ((None, None, "year"), "bucket")):  # fmt: skip
        with pytest.raises(Problem) as refused:
            parse_range(*args)
        assert refused.value.status == 422 and field in refused.value.detail


def test_summary_of_days() -> None:
    rows = DayRows()
    rows.totals.update(
        conversations=4, botResolved=1, costMicroUsd=2_000_000, rated=2, ratingSum=9, rating4=1, rating5=1
    )
    rows.agents["a1"] = {"name": "Ada", "claimed": 2, "resolved": 1, "rated": 1, "ratingSum": 5, "firstReplies": 1,
                         **{f"reply{i}": 0 for i in range(len(REPLY_EDGES_MS) + 1)}, "reply0": 1}  # fmt: skip
    body = summarise(date(2026, 3, 9), date(2026, 3, 10), "day", {"20260310": rows})
    totals = body["totals"]
    assert (totals["conversations"], totals["botResolutionRate"], totals["costPerConversationUsd"]) == (4, 0.25, 0.5)
    assert totals["costPerResolutionUsd"] == 2.0 and totals["csat"]["average"] == 4.5
    assert [b["conversations"] for b in body["buckets"]] == [0, 4]
    assert body["agents"][0]["firstReplyP50Ms"] == 1_000 and body["agents"][0]["csat"] == {"count": 1, "average": 5.0}


@pytest.mark.parametrize(
    ("p50_ms", "words"),
    [
        (None, None),
        (1_000, "under a minute"),
        (60_000, "under a minute"),
        (90_000, "under 2 minutes"),
        (300_000, "under 5 minutes"),
        (1_800_000, "under 30 minutes"),
        (3_600_000, "under an hour"),
        (7_200_000, "under 2 hours"),
        (14_400_000, "under 4 hours"),
        (28_800_000, "a day"),
        (86_400_000, "a day"),
        (86_400_001, "more than a day"),
    ],
)
def test_the_usual_reply_in_words(p50_ms: int | None, words: str | None) -> None:
    assert reply_words(p50_ms) == words


def test_the_usual_reply_needs_enough_replies_to_judge_by() -> None:
    histogram = [0] * (len(REPLY_EDGES_MS) + 1)
    histogram[REPLY_EDGES_MS.index(120_000)] = MIN_REPLIES - 1
    assert median_of(histogram) is None
    histogram[REPLY_EDGES_MS.index(1_000)] = 1  # the median of 1 s, 2 min, 2 min
    assert median_of(histogram) == 120_000
    histogram[REPLY_EDGES_MS.index(1_000)] = MIN_REPLIES
    assert median_of(histogram) == 1_000
