"""What the admin dashboard reads: cost over time from the rollups, session listings, transcripts.

Nothing here scans messages: cost comes from the hourly rollups, listings from the session
orderings, and a transcript is one session's partition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.clock import iso
from shared.storage.chats import ChatRepository
from shared.storage.orderings import SessionIndexRepository, listed
from shared.storage.rollups import COUNTERS, RollupRepository, Totals, hour_key
from shared.web.http import Problem, decode_cursor, encode_cursor, invalid_query

WINDOWS = {"24h": 24, "7d": 168}
DEFAULT_BUCKET_HOURS = {"24h": 1, "7d": 6}
SORTS = ("cost", "lastActivity")


def check_window(window: str, bucket_hours: int) -> None:
    """A 422 naming the parameter when the window or its bucket size is not one we serve."""
    if window not in WINDOWS:
        raise invalid_query("window", "must be 24h or 7d")
    if WINDOWS[window] % bucket_hours:
        raise invalid_query("bucketHours", f"must divide the window's {WINDOWS[window]} hours")


def _totals_public(totals: Totals) -> dict[str, Any]:
    counts = totals.counts
    return {**totals.tokens_public(), "sessions": counts["sessions"], "messages": counts["messages"],
            "handoffs": counts["handoffs"]}  # fmt: skip


def bucketed(window: str, bucket_hours: int, end: datetime, hours: dict[str, Totals]) -> dict[str, Any]:
    """Buckets of ``bucket_hours`` over the window ending at ``end`` (an hour boundary); zeros included."""
    span = WINDOWS[window]
    start = end - timedelta(hours=span)
    buckets = [Totals() for _ in range(span // bucket_hours)]
    total = Totals()
    for offset in range(span):
        hour = hours.get(hour_key(start + timedelta(hours=offset)))
        if hour is None:
            continue
        for target in (buckets[offset // bucket_hours], total):
            for name in COUNTERS:
                target.counts[name] += hour.counts[name]
    sessions = total.counts["sessions"]
    return {
        "window": window,
        "bucketHours": bucket_hours,
        "start": iso(start),
        "end": iso(end),
        "buckets": [
            {"start": iso(start + timedelta(hours=i * bucket_hours)), **_totals_public(bucket)}
            for i, bucket in enumerate(buckets)
        ],
        "totals": {
            **_totals_public(total),
            "handoffRate": round(total.counts["handoffs"] / sessions, 4) if sessions else 0,
        },
    }


async def cost(window: str, bucket_hours: int) -> dict[str, Any]:
    """Tokens and cost per bucket over the window that ends with the current hour."""
    check_window(window, bucket_hours)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = await RollupRepository().hours(end - timedelta(hours=WINDOWS[window]), end)
    return bucketed(window, bucket_hours, end, hours)


async def sessions(sort_by: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Sessions most expensive first, or newest activity first; paged by cursor."""
    if sort_by not in SORTS:
        raise invalid_query("sortBy", "must be cost or lastActivity")
    after = decode_cursor(cursor, sort_by)
    index = SessionIndexRepository()
    if sort_by == "cost":
        rows, next_key = await index.by_cost(limit=limit, after=after)
    else:
        rows, next_key = await index.by_activity(status=None, claimed_by=None, limit=limit, after=after)
    return {
        "sortBy": sort_by,
        "sessions": [listed(row) for row in rows],
        "nextCursor": encode_cursor(next_key, sort_by) if next_key else None,
    }


async def transcript(session_id: str, after: int, limit: int) -> dict[str, Any]:
    """One session's header and messages (with tokens and cost); ``nextAfter`` continues."""
    repo = ChatRepository()
    session = await repo.get(session_id)
    if session is None:
        raise Problem(404, f"No session {session_id}.", kind="session-not-found")
    messages = await repo.messages(session_id, after=after, limit=limit)
    return {
        "session": session.public(),
        "messages": [message.transcript() for message in messages],
        "nextAfter": messages[-1].seq if len(messages) == limit else None,
    }
