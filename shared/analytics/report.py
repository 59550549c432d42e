"""``GET /api/analytics``: the figures of a range of days, per bucket, with how each is counted.

Everything comes from the per-day counters the outbox keeps (see :mod:`shared.analytics.facts`);
nothing reads a message. A conversation's figures belong to the UTC day it started.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from shared.analytics.facts import AGENT_COUNTERS, DAY_COUNTERS, LATENCY_EDGES_MS, REPLY_EDGES_MS, SCORES, percentile
from shared.clock import utcnow
from shared.storage.analytics import AnalyticsRepository, DayRows
from shared.web.http import invalid_query

BUCKETS = ("day", "week", "month")
MAX_DAYS = 366
DEFAULT_DAYS = 30
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# "How we count", published with the figures (the dashboard shows each under its card).
DEFINITIONS = {
    "conversations": "Conversations in which the visitor wrote at least one message, by the UTC day they "
    "started. A widget opened and never written in is not a conversation.",
    "botResolutionRate": "Share of conversations no person joined that were resolved: closed and not reopened "
    "within 24 hours of closing, or rated 4 or 5. Counted when the conversation closes and taken back if it is "
    "reopened within 24 hours; a rating of 4 or 5 counts it whatever happens after.",
    "handoffRate": "Share of conversations in which a person was asked for (by the visitor, by the bot, or because "
    "the bot was off or over its cost cap), whether or not an agent came.",
    "firstHumanReply": "From the moment a person was asked for (or the agent claimed the conversation, if nobody "
    "asked) to the agent's first message. p50 and p90 are read from a histogram: each is the upper edge of the "
    "bucket holding it (1 s, 2 s, 5 s, 10 s, 15 s, 30 s, 45 s, 1 min, 1.5 min, 2 min, 3 min, 5 min, ... 24 h).",
    "botLatency": "Time the AI took to answer a visitor's message (model call and knowledge search), p50 and p95 "
    "from a histogram as above (50 ms, 100 ms, 200 ms, 300 ms, 500 ms, 750 ms, 1 s, 1.5 s, 2 s, 3 s, 5 s, ...).",
    "csat": "Visitors' ratings of closed conversations (1 to 5, one per conversation): average, count and "
    "how many gave each score.",
    "costPerConversation": "AI cost of the period's conversations (what the model calls cost, in USD) divided by "
    "the conversations. The offline bot costs nothing.",
    "costPerResolution": "The same AI cost divided by the conversations the bot resolved.",
    "agents": "Per agent, for the conversations they own (the agent who claimed it last): conversations claimed, "
    "resolved (as above, a person having joined), median time to first reply, and their ratings.",
}


def _date(name: str, raw: str | None, default: date) -> date:
    if raw is None or raw == "":
        return default
    if not _DATE.fullmatch(raw):
        raise invalid_query(name, "must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise invalid_query(name, "must be a date as YYYY-MM-DD") from exc


def parse_range(raw_from: str | None, raw_to: str | None, bucket: str | None) -> tuple[date, date, str]:
    """The first and last day (inclusive) and the bucket; a 422 naming the parameter when wrong."""
    today = utcnow().date()
    last = _date("to", raw_to, today)
    first = _date("from", raw_from, last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise invalid_query("from", "must not be after 'to'")
    if (last - first).days + 1 > MAX_DAYS:
        raise invalid_query("from", f"must be at most {MAX_DAYS} days before 'to' (inclusive)")
    chosen = bucket or "day"
    if chosen not in BUCKETS:
        raise invalid_query("bucket", "must be day, week or month")
    return first, last, chosen


def bucket_starts(first: date, last: date, bucket: str) -> list[tuple[date, date]]:
    """The buckets covering ``first``..``last``: days, ISO weeks (Monday first) or calendar months, clipped."""
    spans: list[tuple[date, date]] = []
    start = first
    while start <= last:
        if bucket == "day":
            end = start
        elif bucket == "week":
            end = start + timedelta(days=6 - start.weekday())
        else:
            end = date(start.year + start.month // 12, start.month % 12 + 1, 1) - timedelta(days=1)
        end = min(end, last)
        spans.append((start, end))
        start = end + timedelta(days=1)
    return spans


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _usd(micro: int, whole: int) -> float | None:
    return round(micro / 1_000_000 / whole, 6) if whole else None


def _histogram(counts: dict[str, int], prefix: str, edges: tuple[int, ...]) -> list[int]:
    return [counts.get(f"{prefix}{i}", 0) for i in range(len(edges) + 1)]


def figures(counts: dict[str, int]) -> dict[str, Any]:
    """The published figures of summed day counters."""
    conversations = counts["conversations"]
    unattended = conversations - counts["withPerson"]
    reply = _histogram(counts, "reply", REPLY_EDGES_MS)
    latency = _histogram(counts, "latency", LATENCY_EDGES_MS)
    rated = counts["rated"]
    return {
        "conversations": conversations,
        "handoffs": counts["handoffs"],
        "handoffRate": _ratio(counts["handoffs"], conversations),
        "withPerson": counts["withPerson"],
        "closed": counts["closed"],
        "resolved": counts["resolved"],
        "botResolved": counts["botResolved"],
        "botResolutionRate": _ratio(counts["botResolved"], conversations),
        "withoutPerson": unattended,
        "firstHumanReply": {
            "count": counts["firstReplies"],
            "p50Ms": percentile(reply, REPLY_EDGES_MS, 0.5),
            "p90Ms": percentile(reply, REPLY_EDGES_MS, 0.9),
            "histogram": reply,
        },
        "botLatency": {
            "count": counts["botReplies"],
            "p50Ms": percentile(latency, LATENCY_EDGES_MS, 0.5),
            "p95Ms": percentile(latency, LATENCY_EDGES_MS, 0.95),
            "histogram": latency,
        },
        "csat": {
            "count": rated,
            "average": round(counts["ratingSum"] / rated, 2) if rated else None,
            "distribution": {str(score): counts[f"rating{score}"] for score in SCORES},
        },
        "costUsd": round(counts["costMicroUsd"] / 1_000_000, 6),
        "costPerConversationUsd": _usd(counts["costMicroUsd"], conversations),
        "costPerResolutionUsd": _usd(counts["costMicroUsd"], counts["botResolved"]),
    }


def _agent(oid: str, row: dict[str, Any]) -> dict[str, Any]:
    reply = _histogram(row, "reply", REPLY_EDGES_MS)
    rated = row["rated"]
    return {
        "oid": oid,
        "name": row.get("name") or None,
        "claimed": row["claimed"],
        "resolved": row["resolved"],
        "firstReplies": row["firstReplies"],
        "firstReplyP50Ms": percentile(reply, REPLY_EDGES_MS, 0.5),
        "csat": {"count": rated, "average": round(row["ratingSum"] / rated, 2) if rated else None},
    }


def summarise(first: date, last: date, bucket: str, days: dict[str, DayRows]) -> dict[str, Any]:
    """The response body for the days read (pure)."""
    total = dict.fromkeys(DAY_COUNTERS, 0)
    agents: dict[str, dict[str, Any]] = {}
    buckets = []
    for start, end in bucket_starts(first, last, bucket):
        counts = dict.fromkeys(DAY_COUNTERS, 0)
        day = start
        while day <= end:
            rows = days.get(day.strftime("%Y%m%d"))
            day += timedelta(days=1)
            if rows is None:
                continue
            for name in DAY_COUNTERS:
                counts[name] += rows.totals[name]
            for oid, row in rows.agents.items():
                into = agents.setdefault(oid, {"name": "", **dict.fromkeys(AGENT_COUNTERS, 0)})
                into["name"] = row.get("name") or into["name"]
                for name in AGENT_COUNTERS:
                    into[name] += row[name]
        for name in DAY_COUNTERS:
            total[name] += counts[name]
        buckets.append({"start": start.isoformat(), "end": end.isoformat(), **figures(counts)})
    listed = sorted((_agent(oid, row) for oid, row in agents.items() if row["claimed"]),
                    key=lambda a: (-a["claimed"], a["name"] or "", a["oid"]))  # fmt: skip
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "bucket": bucket,
        "timeZone": "UTC",
        "totals": figures(total),
        "buckets": buckets,
        "agents": listed,
        "histogramEdgesMs": {"firstHumanReply": list(REPLY_EDGES_MS), "botLatency": list(LATENCY_EDGES_MS)},
        "definitions": DEFINITIONS,
    }


async def analytics(raw_from: str | None, raw_to: str | None, bucket: str | None) -> dict[str, Any]:
    """The figures of ``from``..``to`` (UTC days, inclusive) per ``bucket``, read from the day counters."""
    first, last, chosen = parse_range(raw_from, raw_to, bucket)
    return summarise(first, last, chosen, await AnalyticsRepository().days(first, last))
