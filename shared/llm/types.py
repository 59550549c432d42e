"""The bot's value types: conversation turns, replies with usage and citations, a reply stream, and cost."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

log = logging.getLogger(__name__)

Role = Literal["user", "assistant"]
_warned_models: set[str] = set()


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One earlier message: the visitor is ``user``; the bot or an agent is ``assistant``."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Citation:
    """A source an answer used, as the visitor sees it under the message (``url``: http(s) or None)."""

    source_id: str
    title: str
    url: str | None = None

    def public(self) -> dict[str, str | None]:
        """``{"sourceId", "title", "url"}``."""
        return {"sourceId": self.source_id, "title": self.title, "url": self.url}


# Why a question counts as a content gap (the bot could not answer it from the knowledge).
NO_MATCH = "no-match"  # no excerpt covered the question well enough (the offline bot)
UNANSWERED = "unanswered"  # the model said the excerpts don't answer it


@dataclass(slots=True)
class BotReply:
    """The bot's answer to one visitor message, with what it cost to produce."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    latency_ms: int = 0
    provider: str = ""
    wants_human: bool = False
    failed: bool = False
    # True when the endpoint sent no usage and the token counts are a rough estimate.
    usage_estimated: bool = False
    citations: list[Citation] = field(default_factory=list)  # the sources the answer used
    gap: str = ""  # NO_MATCH or UNANSWERED when the knowledge did not answer the question


class ReplyStream:
    """Text deltas of a reply, as an async iterator; ``reply`` is set once it is exhausted.

    The deltas always concatenate to ``reply.text`` (an apology appended after a failure is sent
    as a delta too), so what the visitor saw is what gets stored.
    """

    def __init__(self, source: AsyncGenerator[str | BotReply, None]) -> None:
        self._source = source
        self.reply: BotReply | None = None

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        if self.reply is not None:
            raise StopAsyncIteration
        item = await self._source.__anext__()
        if isinstance(item, BotReply):
            self.reply = item
            await self._source.aclose()
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        """Stop early (the caller went away); releases the underlying HTTP response."""
        await self._source.aclose()


def _price_for(model: str, prices: Mapping[str, Mapping[str, float]]) -> Mapping[str, float] | None:
    # Endpoints report dated names (gpt-4o-mini-2024-07-18), so the longest listed prefix wins.
    name = model.strip().lower()
    if name in prices:
        return prices[name]
    matches = [key for key in prices if name.startswith(key + "-")]
    return prices[max(matches, key=len)] if matches else None


def cost_micro_usd(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    prices: Mapping[str, Mapping[str, float]],
) -> int:
    """Cost of one call in integer micro-dollars, from USD-per-1K-token prices (unknown model: 0)."""
    if prompt_tokens <= 0 and completion_tokens <= 0:
        return 0
    price = _price_for(model, prices)
    if price is None:
        if model not in _warned_models:  # once per model, or every turn would log it
            _warned_models.add(model)
            log.warning("no price for model %r in LLM_PRICES; its calls are counted as free", model)
        return 0
    # Decimal, so 0.00015 $/1K is exact: tokens * usd_per_1k / 1000 * 1e6 micro-dollars.
    total = Decimal(max(prompt_tokens, 0)) * Decimal(str(price.get("prompt", 0))) + Decimal(
        max(completion_tokens, 0)
    ) * Decimal(str(price.get("completion", 0)))
    return int((total * 1000).to_integral_value(rounding=ROUND_HALF_UP))
