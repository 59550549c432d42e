"""What one commit tells the analytics, and the counters a conversation adds to its day (pure).

A conversation belongs to the UTC day it started. Its **facts** (did the visitor write, was a person
asked for, who claimed it, the first human reply's delay, closed, reopened, its rating) live in one
row beside that day's counters; the counters are a pure function of the facts (:func:`contribution`),
so applying a commit adds the difference between the contribution after and before it. A reopened
conversation corrects its day by the same difference: nothing needs a timer to finalise it.

Delays (first human reply, the bot's latency) are counted in fixed histogram buckets, so
percentiles come from counts (:func:`percentile`), never from the messages.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from shared.clock import iso, parse_iso
from shared.conversations.models import CLAIMED, CLOSED, HUMAN_REQUESTED, Message, Session

# Upper edges (ms) of the histogram buckets; one more bucket holds everything above the last edge.
REPLY_EDGES_MS = (
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000, 600_000,
    900_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000, 86_400_000,
)  # fmt: skip
LATENCY_EDGES_MS = (
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 60_000,
)  # fmt: skip
REOPEN_WINDOW = timedelta(hours=24)
GOOD_RATING = 4  # a rating at or above this counts the conversation as resolved
SCORES = range(1, 6)

# Day counters: conversations, how they went, ratings, cost, and the two histograms.
DAY_COUNTERS = (
    "conversations", "handoffs", "withPerson", "closed", "resolved", "botResolved",
    "rated", "ratingSum", *(f"rating{s}" for s in SCORES),
    "costMicroUsd", "botReplies", "firstReplies",
    *(f"reply{i}" for i in range(len(REPLY_EDGES_MS) + 1)),
    *(f"latency{i}" for i in range(len(LATENCY_EDGES_MS) + 1)),
)  # fmt: skip
AGENT_COUNTERS = (
    "claimed", "resolved", "rated", "ratingSum", "firstReplies",
    *(f"reply{i}" for i in range(len(REPLY_EDGES_MS) + 1)),
)  # fmt: skip


def bucket_of(value_ms: int, edges: Sequence[int]) -> int:
    """The histogram bucket of ``value_ms`` (a value equal to an edge falls in that edge's bucket)."""
    return bisect_left(edges, value_ms)


def percentile(counts: Sequence[int], edges: Sequence[int], fraction: float) -> int | None:
    """The upper edge of the bucket holding the nearest-rank percentile (None: no values; past the
    last edge: that edge, said as "more than" by the caller)."""
    total = sum(counts)
    if not total:
        return None
    rank = max(1, -(-int(fraction * total * 1_000_000) // 1_000_000))  # ceil without float surprises
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return edges[min(index, len(edges) - 1)]
    return edges[-1]


@dataclass
class Event:
    """What one commit changed that the analytics count (the outbox row's payload)."""

    day: str  # the conversation's UTC start day, YYYYMMDD
    visitor_wrote: bool = False
    handed_off: bool = False
    agent: str = ""  # the owner after the commit
    agent_name: str = ""
    first_reply_ms: int = -1  # an agent's first message in this commit: the delay since a person was asked
    closed: bool = False
    reopened: bool = False
    at: str = ""
    rating: int = 0  # a rating given in this commit
    cost_micro_usd: int = 0
    latencies_ms: list[int] | None = None  # the bot's answers in this commit

    def payload(self) -> dict[str, Any]:
        """The outbox row's payload."""
        return {k: v for k, v in asdict(self).items() if v not in (False, "", 0, -1, None, [])} | {"day": self.day}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Event:
        """Inverse of :meth:`payload`."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in known})


def day_of(moment: datetime) -> str:
    """The UTC day key of ``moment``."""
    return iso(moment)[:10].replace("-", "")


def event_of(
    before: Session | None, after: Session, messages: Sequence[Message], *, cost_micro_usd: int, now: datetime
) -> Event | None:
    """The analytics event of a commit, or None when it changes nothing the analytics count."""
    event = Event(day_of(after.created_at), at=iso(now), agent=after.claimed_by, agent_name=after.claimed_by_name)
    event.visitor_wrote = any(m.sender == "visitor" for m in messages)
    previous = before.status if before else ""
    event.handed_off = after.status == HUMAN_REQUESTED and previous != HUMAN_REQUESTED
    event.closed = after.status == CLOSED and previous != CLOSED
    event.reopened = previous == CLOSED and after.status != CLOSED
    event.rating = after.rating if before is not None and after.rating != before.rating else 0
    event.cost_micro_usd = cost_micro_usd
    latencies = [m.latency_ms for m in messages if m.sender == "bot" and m.provider]
    event.latencies_ms = latencies or None
    first_agent = next((m for m in messages if m.sender == "agent"), None)
    if first_agent is not None:
        asked = after.handoff_requested_at or after.claimed_at or first_agent.created_at
        event.first_reply_ms = max(0, int((first_agent.created_at - asked).total_seconds() * 1000))
    owner_changed = before is None or before.claimed_by != after.claimed_by
    if not (
        event.visitor_wrote or event.handed_off or event.closed or event.reopened or event.rating
        or event.cost_micro_usd or latencies or first_agent or (owner_changed and after.status == CLAIMED)
    ):  # fmt: skip
        return None
    return event


@dataclass
class Facts:
    """What the analytics know of one conversation so far."""

    version: int = 0  # the last commit applied
    counted: bool = False  # the visitor wrote at least once
    handed_off: bool = False
    agent: str = ""
    agent_name: str = ""
    person_joined: bool = False  # an agent claimed it at some point
    first_reply_ms: int = -1
    closed: bool = False
    closed_at: str = ""
    rating: int = 0

    def stored(self) -> dict[str, Any]:
        """Table properties."""
        return asdict(self)

    @classmethod
    def from_stored(cls, entity: dict[str, Any]) -> Facts:
        """Inverse of :meth:`stored` (unknown properties ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entity.items() if k in known})

    @property
    def resolved(self) -> bool:
        """Closed and not reopened within 24 h (a reopen un-closes it), or rated 4 or 5."""
        return self.closed or self.rating >= GOOD_RATING


def fold(facts: Facts, event: Event, version: int) -> Facts:
    """The facts after ``event`` (commit ``version``)."""
    after = Facts(**facts.stored())
    after.version = version
    after.counted = facts.counted or event.visitor_wrote
    after.handed_off = facts.handed_off or event.handed_off
    if event.agent:
        after.agent, after.agent_name, after.person_joined = event.agent, event.agent_name, True
    if event.first_reply_ms >= 0 and facts.first_reply_ms < 0:
        after.first_reply_ms = event.first_reply_ms
    if event.closed:
        after.closed, after.closed_at = True, event.at
    if event.reopened:
        closed_at, at = parse_iso(facts.closed_at), parse_iso(event.at)
        if closed_at is None or at is None or at - closed_at < REOPEN_WINDOW:
            after.closed = False  # reopened within the window: this close resolved nothing
    if event.rating:
        after.rating = event.rating
    return after


def contribution(facts: Facts) -> tuple[dict[str, int], dict[str, int]]:
    """What a conversation adds to its day's counters and to its agent's (the facts' pure image)."""
    day: dict[str, int] = {}
    agent: dict[str, int] = {}
    if not facts.counted:
        return day, agent
    day["conversations"] = 1
    day["handoffs"] = int(facts.handed_off)
    day["withPerson"] = int(facts.person_joined)
    day["closed"] = int(facts.closed)
    day["resolved"] = int(facts.resolved)
    day["botResolved"] = int(facts.resolved and not facts.person_joined)
    if facts.rating:
        day["rated"], day["ratingSum"], day[f"rating{facts.rating}"] = 1, facts.rating, 1
    if facts.first_reply_ms >= 0:
        day["firstReplies"] = 1
        day[f"reply{bucket_of(facts.first_reply_ms, REPLY_EDGES_MS)}"] = 1
    if facts.agent:
        agent["claimed"] = 1
        agent["resolved"] = int(facts.resolved)
        if facts.rating:
            agent["rated"], agent["ratingSum"] = 1, facts.rating
        if facts.first_reply_ms >= 0:
            agent["firstReplies"] = 1
            agent[f"reply{bucket_of(facts.first_reply_ms, REPLY_EDGES_MS)}"] = 1
    return day, agent


def difference(new: dict[str, int], old: dict[str, int]) -> dict[str, int]:
    """``new - old`` by counter, without the zeros."""
    names = set(new) | set(old)
    return {name: new.get(name, 0) - old.get(name, 0) for name in names if new.get(name, 0) != old.get(name, 0)}


def additive(event: Event) -> dict[str, int]:
    """What the commit adds to its day regardless of the facts: cost and the bot's latencies."""
    counters: dict[str, int] = {}
    if event.cost_micro_usd:
        counters["costMicroUsd"] = event.cost_micro_usd
    for latency in event.latencies_ms or []:
        counters["botReplies"] = counters.get("botReplies", 0) + 1
        name = f"latency{bucket_of(latency, LATENCY_EDGES_MS)}"
        counters[name] = counters.get(name, 0) + 1
    return counters
