"""The conversation's data: a session header and its messages (no storage, no I/O).

A session moves ``open`` (the bot answers) -> ``human_requested`` (waiting for a person) ->
``claimed`` (one agent owns it) -> ``closed``; a request nobody claims may go back to ``open``.
``seq`` numbers the messages; ``version`` numbers the commits (every committed change adds one),
and orders everything derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.clock import iso, utcnow
from shared.conversations.card import Card

OPEN, HUMAN_REQUESTED, CLAIMED, CLOSED = "open", "human_requested", "claimed", "closed"
STATUSES = (OPEN, HUMAN_REQUESTED, CLAIMED, CLOSED)
LIVE_STATUSES = (OPEN, HUMAN_REQUESTED, CLAIMED)

# The bot's short-term memory travels in the header, so a turn reads one row, not the transcript.
RECENT_MESSAGES = 20
# Stored as one Table property (64 KiB of UTF-16 at most), so the budget is in UTF-16 bytes.
RECENT_BYTES = 48_000


def seen_differently(before: Session, after: Session) -> bool:
    """True when the session itself changed as agents see it (``SessionUpdated``): its status, its
    owner or the visitor's page."""
    return (
        after.status != before.status
        or after.claimed_by != before.claimed_by
        or (after.page_url, after.page_title) != (before.page_url, before.page_title)
    )


def page_of(url: str, title: str) -> dict[str, str] | None:
    """The visitor's page as agents see it: ``{url, title}``, or None when there is none (channels)."""
    return {"url": url, "title": title} if url else None


@dataclass
class Session:
    """A conversation's header: its state, owner, counters and totals."""

    session_id: str
    status: str = OPEN
    created_at: datetime = field(default_factory=utcnow)
    last_activity_at: datetime = field(default_factory=utcnow)
    seq: int = 0
    version: int = 0
    claimed_by: str = ""
    claimed_by_name: str = ""
    claimed_at: datetime | None = None
    handoff_requested_at: datetime | None = None
    closed_at: datetime | None = None
    origin: str = ""
    channel: str = "web"  # web | sms | whatsapp | telegram | email
    address: str = ""  # the contact's phone number, chat id or email address (channels other than web)
    page_url: str = ""  # the web page the visitor was last seen on (no query string or fragment)
    page_title: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    ai_calls: int = 0
    ai_calls_day: str = ""
    ai_calls_today: int = 0
    cost_today_micro_usd: int = 0  # what the AI calls of ``ai_calls_day`` cost (the per-session USD cap)
    preview: str = ""
    visitor_preview: str = ""  # the visitor's own last message (the queue shows it, not the bot's notice)
    recent: list[tuple[str, str]] = field(default_factory=list)  # (sender, text), oldest first
    # Visitor messages stored in the current UTC minute: the chat limit every worker sees.
    rate_minute: str = ""
    rate_count: int = 0
    rating: int = 0  # the visitor's rating of the closed conversation (1 to 5; 0: none)
    rating_comment: str = ""
    card: Card | None = None  # the bot's drafted reply waiting for an agent (see ``card``)
    instructions: list[str] = field(default_factory=list)  # agents' "tell the AI", in every later prompt
    etag: str = ""

    def copy(self) -> Session:
        """A detached copy (for before/after comparisons)."""
        return replace(self, recent=list(self.recent), instructions=list(self.instructions))

    def public(self) -> dict[str, Any]:
        """The camelCase form agents and the dashboard see."""
        return {
            "sessionId": self.session_id,
            "status": self.status,
            "createdAt": iso(self.created_at),
            "lastActivityAt": iso(self.last_activity_at),
            "claimedBy": self.claimed_by or None,
            "claimedByName": self.claimed_by_name or None,
            "claimedAt": iso(self.claimed_at) or None,
            "handoffRequestedAt": iso(self.handoff_requested_at) or None,
            "closedAt": iso(self.closed_at) or None,
            "messageCount": self.seq,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "costUsd": round(self.cost_micro_usd / 1_000_000, 6),
            "preview": self.preview,
            "visitorPreview": self.visitor_preview or None,
            "channel": self.channel,
            "address": self.address or None,
            "page": page_of(self.page_url, self.page_title),
            "pendingApproval": self.card.card_id if self.card else None,
            "rating": self.rating or None,
        }

    def messages_this_minute(self, now: datetime) -> int:
        """Visitor messages stored in ``now``'s minute."""
        return self.rate_count if self.rate_minute == minute_of(now) else 0

    def remember(self, sender: str, text: str) -> None:
        """Keep ``text`` in the recent history the bot reads (bounded in count and size)."""
        self.recent.append((sender, text))
        del self.recent[:-RECENT_MESSAGES]
        while len(self.recent) > 1 and sum(len(t.encode("utf-16-le")) for _, t in self.recent) > RECENT_BYTES:
            del self.recent[0]


def minute_of(moment: datetime) -> str:
    """The UTC minute of ``moment``, e.g. '2026-11-30T14:05' (the chat limit's window)."""
    return moment.strftime("%Y-%m-%dT%H:%M")


@dataclass
class Message:
    """One message of a conversation."""

    session_id: str
    seq: int
    sender: str  # visitor | bot | agent | system
    text: str
    created_at: datetime = field(default_factory=utcnow)
    message_id: str = ""
    agent_oid: str = ""
    agent_name: str = ""
    model: str = ""
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    latency_ms: int = 0
    # A bot answer's sources: {"sourceId", "title", "url"} (url http(s) or None), in order of use.
    citations: list[dict[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.message_id:
            self.message_id = f"{self.session_id}:{self.seq}"

    def public(self) -> dict[str, Any]:
        """What the widget and the agent console see."""
        body: dict[str, Any] = {
            "id": self.message_id,
            "seq": self.seq,
            "sender": self.sender,
            "text": self.text,
            "createdAt": iso(self.created_at),
        }
        if self.agent_name:
            body["agentName"] = self.agent_name
        if self.sender == "bot":
            body["citations"] = [dict(citation) for citation in self.citations]
        return body

    def transcript(self) -> dict[str, Any]:
        """The admin's view: with tokens, cost and model."""
        return {
            **self.public(),
            "agentOid": self.agent_oid or None,
            "model": self.model or None,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "costUsd": round(self.cost_micro_usd / 1_000_000, 6),
            "latencyMs": self.latency_ms,
        }
