"""How fast the team usually replies, measured: the widget's "The team usually replies in under 2 minutes".

The figure is the median first human reply (``firstHumanReply`` p50, the upper edge of its histogram
bucket) over the last :data:`WINDOW_DAYS` days, said only once there are :data:`MIN_REPLIES` replies
to judge by; before that, and when Storage can't be read, the widget keeps its general wording. Each
worker reads it at most once per :data:`CACHE_SECONDS`: every widget that opens asks for it, and a
team's pace doesn't change by the minute.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from shared.analytics.facts import REPLY_EDGES_MS, percentile
from shared.clock import utcnow
from shared.storage.analytics import AnalyticsRepository

log = logging.getLogger(__name__)

WINDOW_DAYS = 14
MIN_REPLIES = 3
CACHE_SECONDS = 300.0
_MINUTE, _HOUR = 60_000, 3_600_000


def reply_words(p50_ms: int | None) -> str | None:
    """A median first reply in the widget's words: "under a minute", "under 5 minutes", "a few hours" (pure)."""
    if p50_ms is None:
        return None
    if p50_ms <= _MINUTE:
        return "under a minute"
    if p50_ms < _HOUR:
        return f"under {math.ceil(p50_ms / _MINUTE)} minutes"
    if p50_ms == _HOUR:
        return "under an hour"
    if p50_ms <= 4 * _HOUR:
        return f"under {math.ceil(p50_ms / _HOUR)} hours"
    return "a day" if p50_ms <= REPLY_EDGES_MS[-1] else "more than a day"


def median_of(histogram: list[int]) -> int | None:
    """The median first reply (ms) of a histogram, or None with fewer than MIN_REPLIES replies (pure)."""
    if sum(histogram) < MIN_REPLIES:
        return None
    return percentile(histogram, REPLY_EDGES_MS, 0.5)


@dataclass
class _Cached:
    words: str | None = None
    read_at: float = -math.inf


_cache = _Cached()


async def usual_reply() -> str | None:
    """How fast the team usually replies, in words (None: not enough replies yet, or unreadable)."""
    if time.monotonic() - _cache.read_at < CACHE_SECONDS:
        return _cache.words
    today = utcnow().date()
    try:
        days = await AnalyticsRepository().days(today - timedelta(days=WINDOW_DAYS - 1), today)
    except Exception:  # the widget opens without the figure rather than not at all
        log.warning("could not read the team's reply times", exc_info=True)
        _cache.read_at = time.monotonic() - CACHE_SECONDS + 30  # try again in half a minute, not per widget
        return _cache.words
    histogram = [0] * (len(REPLY_EDGES_MS) + 1)
    for rows in days.values():
        for index in range(len(histogram)):
            histogram[index] += rows.totals[f"reply{index}"]
    _cache.words, _cache.read_at = reply_words(median_of(histogram)), time.monotonic()
    return _cache.words
