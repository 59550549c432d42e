"""The handoff summary: what the visitor wants, what was tried, and the facts they gave.

Written when a conversation moves to a person, from the outbox (never inside the visitor's
request), onto the session's handoff record, so the agents' queue shows it and the claim returns
it. The extractive summary needs no model: the visitor's question that led to the handoff (their
last message that is more than "a person, please"), what the bot answered and from which sources,
and facts found in the visitor's words (email addresses, order and reference numbers, amounts,
links, product names after "my"/"the" + a known product word are not guessed). With an LLM
configured, one call within :data:`LLM_TIMEOUT_SECONDS` writes the ``text`` instead; any failure or
timeout keeps the extractive one. The call's tokens and cost are counted in the hourly rollups.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.clock import iso, utcnow
from shared.conversations.models import Message
from shared.llm import asks_for_human, cost_micro_usd, get_llm_settings, get_provider
from shared.llm.openai_provider import OpenAIProvider
from shared.storage.chats import ChatRepository
from shared.storage.handoffs import HandoffRepository
from shared.storage.rollups import RollupRepository, hour_key

log = logging.getLogger(__name__)

LLM_TIMEOUT_SECONDS = 8.0
MAX_QUESTION = 500
MAX_TRANSCRIPT_CHARS = 6000
MAX_FACTS = 12

_FACTS = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("order", re.compile(
        r"(?i)\b(?:order|invoice|ticket|case|ref(?:erence)?|booking|tracking)\s*(?:number|no\.?|#|id)?\s*[:#]?\s*"
        r"([A-Z0-9][A-Z0-9-]{3,})\b"
    )),
    ("order", re.compile(r"#([A-Za-z0-9-]{4,})\b")),
    ("amount", re.compile(r"(?:[$€£]\s?\d[\d,.]*|\b\d[\d,.]*\s?(?:USD|EUR|GBP|SEK|dollars|euros)\b)")),
    ("link", re.compile(r"https?://[^\s<>\"]+")),
    ("product", re.compile(r"(?i)\b(?:product|model|item|plan|sku)\s*[:#]?\s*([A-Z0-9][\w-]*(?:\s[A-Z0-9][\w-]*)?)")),
)  # fmt: skip


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def handoff_question(messages: Sequence[Message]) -> str:
    """The visitor's question that led to the handoff: their last message that asks more than for a person."""
    visitor = [m.text for m in messages if m.sender == "visitor" and m.text.strip()]
    asked = [text for text in visitor if not asks_for_human(text) or len(text.split()) > 12]
    return _clip((asked or visitor or [""])[-1], MAX_QUESTION)


def facts_of(texts: Sequence[str]) -> list[dict[str, str]]:
    """Facts found in the visitor's words, each once: ``[{"kind", "value"}]`` (pure)."""
    found: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for text in texts:
        for kind, pattern in _FACTS:
            for match in pattern.finditer(text):
                value = (match.group(1) if match.groups() else match.group(0)).strip(" .,;:)")
                if kind == "order" and value.isalpha():
                    continue  # "order status", not an order number
                key = (kind, value.lower())
                if value and key not in seen and not any(value in f["value"] for f in found if f["kind"] == "email"):
                    seen.add(key)
                    found.append({"kind": kind, "value": value})
    return found[:MAX_FACTS]


def extractive(messages: Sequence[Message], email: str = "") -> dict[str, Any]:
    """The summary without a model (pure): ``{"wants", "tried", "facts", "text", "provider"}``."""
    wants = handoff_question(messages)
    answers = [m for m in messages if m.sender == "bot" and m.model]
    tried: list[str] = []
    if answers:
        sources = sorted({str(c.get("title") or "") for m in answers for c in m.citations if c.get("title")})
        line = f"The assistant answered {len(answers)} time{'s' if len(answers) != 1 else ''}"
        line += f", citing {', '.join(sources)}" if sources else ", without a source that covered it"
        tried.append(line + f': "{_clip(answers[-1].text, 160)}"')
    else:
        tried.append("The assistant was not asked (the visitor went straight to a person).")
    facts = facts_of([m.text for m in messages if m.sender == "visitor"])
    if email and all(f["value"].lower() != email.lower() for f in facts):
        facts.insert(0, {"kind": "email", "value": email})
    parts = [f"Wants: {wants or 'not said yet'}.", " ".join(tried)]
    if facts:
        parts.append("Facts: " + "; ".join(f"{f['kind']} {f['value']}" for f in facts) + ".")
    return {"wants": wants, "tried": tried, "facts": facts, "text": " ".join(parts), "provider": "extractive"}


def _transcript(messages: Sequence[Message]) -> str:
    lines = [f"{m.sender}: {m.text}" for m in messages if m.sender in ("visitor", "bot")]
    return "\n".join(lines)[-MAX_TRANSCRIPT_CHARS:]


_INSTRUCTION = (
    "You brief a support agent who is taking over a chat from an assistant bot. In at most 3 short "
    "sentences say what the visitor wants, what the assistant already tried, and every fact the visitor "
    "gave (email addresses, order numbers, products, amounts). Plain text, no greeting."
)


async def _with_llm(summary: dict[str, Any], messages: Sequence[Message]) -> tuple[dict[str, Any], dict[str, int]]:
    """The summary's text from the configured model, and the call's usage; the extractive one on any failure."""
    provider = get_provider()
    if not isinstance(provider, OpenAIProvider):
        return summary, {}
    settings = get_llm_settings()
    params: dict[str, Any] = {
        "model": provider.deployment if provider.name == "azure" else provider.model,
        "messages": [{"role": "system", "content": _INSTRUCTION}, {"role": "user", "content": _transcript(messages)}],
        "max_tokens": 200,
    }
    try:
        async with asyncio.timeout(LLM_TIMEOUT_SECONDS):
            completion = await provider.client().chat.completions.create(**params)
    except Exception as exc:  # the extractive summary stands
        log.warning("handoff summary by the model failed (%s); keeping the extractive one", type(exc).__name__)
        return summary, {}
    choice = completion.choices[0] if completion.choices else None
    text = ((choice.message.content if choice else None) or "").strip()
    usage = completion.usage
    prompt, completion_tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    model = completion.model or provider.model
    cost = cost_micro_usd(model, prompt, completion_tokens, settings.prices)
    counted = {"calls": 1, "promptTokens": prompt, "completionTokens": completion_tokens, "costMicroUsd": cost}
    if not text:
        return summary, counted
    return {**summary, "text": _clip(text, 1000), "provider": provider.name, "model": model}, counted


async def summarise(session_id: str, version: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Write the summary of the handoff at commit ``version`` onto the session (once per version)."""
    handoffs = HandoffRepository()
    record = await handoffs.get(session_id)
    if record is not None and record.summary_version >= version and record.summary:
        return record.summary
    from shared.conversations import guards

    chats = ChatRepository()
    messages = await chats.messages(session_id, after=0)
    summary = extractive(messages, record.email if record else "")
    session = await chats.get(session_id)
    # A handoff forced by the kill switch or a cost cap must not spend what the cap refused: the
    # summary is then the extractive one.
    if session is not None and await guards.refusal(session) is None:
        summary, usage = await _with_llm(summary, messages)
    else:
        usage = {}
    summary["writtenAt"] = iso(now or utcnow())
    if usage:
        guards.count_call(usage.get("costMicroUsd", 0))
        counters = {name: value for name, value in usage.items() if value}
        await RollupRepository().add_once(hour_key(now or utcnow()), f"{session_id}-{version}-summary", counters)
    await handoffs.merge(session_id, summary=summary, summaryVersion=version, question=summary["wants"])
    return summary


async def summary_now(session_id: str) -> dict[str, Any]:
    """The summary for an agent who claims before the outbox wrote it: extractive, at once, not stored."""
    record = await HandoffRepository().get(session_id)
    if record is not None and record.summary:
        return record.summary
    messages = await ChatRepository().messages(session_id, after=0)
    return extractive(messages, record.email if record else "")
