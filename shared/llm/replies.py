"""The bot's fixed sentences: handing off, not knowing, and being unavailable."""

from __future__ import annotations

from shared.llm.types import BotReply

HANDOFF = "Of course. I'm bringing in a person from our team; they'll reply right here."
DONT_KNOW = (
    "I'm sorry, I don't know the answer to that. Would you like to talk to a person from our team? "
    'Just say "talk to a person".'
)
UNAVAILABLE = (
    "Sorry, I can't answer right now. Your message has been received; would you like to talk to a "
    'person from our team instead? Just say "talk to a person".'
)
# Appended after a reply that broke off mid-way, so the visitor knows it is incomplete.
CUT_SHORT = "\n\n(Sorry, my answer was cut short. Would you like to talk to a person from our team?)"
EMPTY = "I'm not able to answer that here. Would you like to talk to a person from our team?"
GREETING = (
    "Hello! I'm the virtual assistant. Ask me anything about our products and services, "
    'or say "talk to a person" to reach our team.'
)
THANKS = "You're welcome! Is there anything else I can help you with?"


def handoff_reply(provider: str, model: str) -> BotReply:
    """The reply to an explicit request for a human: no LLM call, no tokens."""
    return BotReply(HANDOFF, model=model, provider=provider, wants_human=True)


def unavailable_reply(provider: str, model: str, latency_ms: int) -> BotReply:
    """The graceful reply when the LLM can't be reached: failed, no tokens, offers a human."""
    return BotReply(UNAVAILABLE, model=model, latency_ms=latency_ms, provider=provider, failed=True)
