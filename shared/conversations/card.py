"""An approval card: a reply the bot drafted that waits for an agent (no storage, no I/O).

With the runtime configuration's ``autonomy`` at ``approve`` or ``auto-after``, the bot's answer
is not sent: it is kept on the session header as its pending card until an agent sends it (as it
is or edited), dismisses it, or has the bot draft it again. A session holds at most one pending
card; a card's id names its session (``<session id>.<12 hex>``), so a route needs no lookup.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.clock import iso, parse_iso

# What happened to a card (``pending`` until then).
PENDING = "pending"
SENT, EDITED, AUTO_SENT = "sent", "edited", "auto-sent"
DISMISSED, REPHRASED, TOLD, SUPERSEDED = "dismissed", "rephrased", "told", "superseded"
RESOLUTIONS = (SENT, EDITED, AUTO_SENT, DISMISSED, REPHRASED, TOLD, SUPERSEDED)
CONTEXT_MESSAGES, CONTEXT_CHARS = 10, 1000


def new_card_id(session_id: str) -> str:
    """A fresh card id of ``session_id``."""
    return f"{session_id}.{secrets.token_hex(6)}"


def session_of(card_id: str) -> str:
    """The session a card id belongs to ("" when it can't be a card id)."""
    session_id, dot, tail = card_id.rpartition(".")
    return session_id if dot and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail) else ""


@dataclass
class Card:
    """A drafted reply waiting for an agent, with what it answers and what it cost."""

    card_id: str
    created_at: datetime
    question: str  # the visitor's message it answers
    text: str
    citations: list[dict[str, str | None]] = field(default_factory=list)
    model: str = ""
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    latency_ms: int = 0
    auto_send_at: datetime | None = None  # autonomy ``auto-after``: sent by itself at this moment
    instruction: str = ""  # the agent's instruction this draft followed (rephrase or tell-AI)
    replaces: str = ""  # the card this one was drafted again from

    @property
    def session_id(self) -> str:
        """The session the card belongs to."""
        return session_of(self.card_id)

    def stored(self) -> dict[str, Any]:
        """The JSON form kept on the session header and in outbox rows."""
        return {
            "id": self.card_id,
            "createdAt": iso(self.created_at),
            "question": self.question,
            "text": self.text,
            "citations": [dict(c) for c in self.citations],
            "model": self.model,
            "provider": self.provider,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "costMicroUsd": self.cost_micro_usd,
            "latencyMs": self.latency_ms,
            "autoSendAt": iso(self.auto_send_at) or None,
            "instruction": self.instruction,
            "replaces": self.replaces,
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Card:
        """Read :meth:`stored`'s form."""
        return cls(
            card_id=str(data["id"]),
            created_at=parse_iso(str(data.get("createdAt") or "")) or datetime.fromtimestamp(0).astimezone(),
            question=str(data.get("question", "")),
            text=str(data.get("text", "")),
            citations=[dict(c) for c in data.get("citations") or [] if isinstance(c, dict)],
            model=str(data.get("model", "")),
            provider=str(data.get("provider", "")),
            prompt_tokens=int(data.get("promptTokens") or 0),
            completion_tokens=int(data.get("completionTokens") or 0),
            cost_micro_usd=int(data.get("costMicroUsd") or 0),
            latency_ms=int(data.get("latencyMs") or 0),
            auto_send_at=parse_iso(str(data.get("autoSendAt") or "")),
            instruction=str(data.get("instruction", "")),
            replaces=str(data.get("replaces", "")),
        )

    def public(self) -> dict[str, Any]:
        """What agents see of a pending card (the listing adds the conversation around it)."""
        return {
            "id": self.card_id,
            "sessionId": self.session_id,
            "status": PENDING,
            "createdAt": iso(self.created_at),
            "question": self.question,
            "text": self.text,
            "citations": [dict(c) for c in self.citations],
            "model": self.model or None,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "costUsd": round(self.cost_micro_usd / 1_000_000, 6),
            "autoSendAt": iso(self.auto_send_at) or None,
            "instruction": self.instruction or None,
            "replaces": self.replaces or None,
        }


def context_of(recent: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The conversation around a card, as agents see it (the last few messages, clipped)."""
    return [{"sender": sender, "text": text[:CONTEXT_CHARS]} for sender, text in recent[-CONTEXT_MESSAGES:]]
