"""Trying a question on the bot from the dashboard: the excerpts it reads, and the answer it gives.

The same path as a visitor's first message (:func:`shared.llm.ground`, then the configured
provider's ``reply``), without a conversation: nothing of it is stored and no session is opened.
With an LLM provider it is a real call that costs what a visitor's turn costs, so it is held to the
deployment's cost caps (a reached cap is 409 ``cost-cap-reached``, before any call) and counted in
the hourly rollups (``/api/cost``, the caps) like a visitor's; the answer says what it cost.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.conversations import guards
from shared.conversations.texts import DEPLOYMENT_CAP, MONTHLY_CAP
from shared.errors import Problem
from shared.llm import BotReply, Excerpt, Grounding, cost_micro_usd, get_llm_settings, get_provider, ground

log = logging.getLogger(__name__)


def _page(source_id: str, url: str | None) -> tuple[str, str | None]:
    """What a citation stands for: a source, and the page of it when it has pages."""
    return source_id, url.split("#", 1)[0] if url else None


def excerpt_view(number: int, excerpt: Excerpt, cited: set[tuple[str, str | None]]) -> dict[str, Any]:
    """One excerpt as the dashboard shows it (``number``: its marker in the prompt; ``cited``: the answer
    cites its source, or its page of a source with pages)."""
    return {
        "number": number,
        "sourceId": excerpt.source_id,
        "sourceTitle": excerpt.title,
        "url": excerpt.url,
        "headingPath": list(excerpt.headings),
        "text": excerpt.text,
        "score": excerpt.score,
        "cited": _page(excerpt.source_id, excerpt.url) in cited,
    }


def answer_view(reply: BotReply, cost: int) -> dict[str, Any]:
    """The bot's reply with what it cost (nothing of it is stored)."""
    return {
        "text": reply.text,
        "citations": [citation.public() for citation in reply.citations],
        "grounded": bool(reply.citations),
        "gap": reply.gap or None,
        "wantsPerson": reply.wants_human,
        "failed": reply.failed,
        "provider": reply.provider,
        "model": reply.model,
        "promptTokens": reply.prompt_tokens,
        "completionTokens": reply.completion_tokens,
        "usageEstimated": reply.usage_estimated,
        "costUsd": cost / 1_000_000,
        "latencyMs": reply.latency_ms,
    }


def preview_view(question: str, grounding: Grounding, reply: BotReply, cost: int) -> dict[str, Any]:
    """The whole answer of ``POST /api/knowledge/test`` (pure)."""
    cited = {_page(citation.source_id, citation.url) for citation in reply.citations}
    return {
        "question": question,
        "minScore": grounding.min_score,
        "results": [excerpt_view(n, e, cited) for n, e in enumerate(grounding.excerpts, start=1)],
        "answer": answer_view(reply, cost),
    }


_CAP_WORDS = {MONTHLY_CAP: "this month's", DEPLOYMENT_CAP: "today's"}


async def preview_answer(question: str) -> dict[str, Any]:
    """Ground ``question`` and ask the bot, as a visitor's first message would, without a conversation."""
    reached = await guards.deployment_refusal()
    if reached is not None:
        raise Problem(
            409,
            f"The deployment has reached {_CAP_WORDS.get(reached, 'its')} AI cost cap, so the question was not "
            "asked. Raise the cap in Settings (costCaps) or try again when it resets.",
            kind="cost-cap-reached",
            cap=reached,
        )
    grounding = await ground([], question)
    reply = await get_provider().reply([], question, grounding)
    cost = cost_micro_usd(reply.model, reply.prompt_tokens, reply.completion_tokens, get_llm_settings().prices)
    await guards.count_call_outside_turn(reply.prompt_tokens, reply.completion_tokens, cost, failed=reply.failed)
    return preview_view(question, grounding, reply, cost)
