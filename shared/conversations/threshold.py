"""The handoff threshold: when the knowledge barely covers a question, a person is offered or called.

The grounding's best excerpt has a coverage score in [0, 1] (the share of the question's topic
words it holds, see :mod:`shared.llm.grounding`). Below the runtime configuration's
``handoffThreshold`` the bot's answer goes out with ``offerPerson: true`` (``handoffMode``
``offer``: the widget shows a "Talk to a person" button under it), or the conversation is handed
to a person at once (``immediate``, as the ``conservative`` preset sets). Greetings and thanks are
never judged, nor answers that already hand off or failed.
"""

from __future__ import annotations

from shared.control.model import RuntimeConfig
from shared.llm import BotReply, Grounding
from shared.llm.offline import small_talk

OFFER, HAND_OVER = "offer", "hand-over"


def confidence(grounding: Grounding) -> float:
    """How well the knowledge covers the question: the best excerpt's coverage (0 without one)."""
    best = grounding.best
    return best.score if best is not None else 0.0


def judge(reply: BotReply, grounding: Grounding, question: str, config: RuntimeConfig) -> str:
    """``""`` (answer as it is), :data:`OFFER` or :data:`HAND_OVER` (pure)."""
    if reply.wants_human or reply.failed or small_talk(question) is not None:
        return ""
    if confidence(grounding) >= config.handoffThreshold:
        return ""
    return HAND_OVER if config.handoffMode == "immediate" else OFFER


def apply(reply: BotReply, grounding: Grounding, question: str, config: RuntimeConfig) -> bool:
    """Judge ``reply``; a hand-over marks it as wanting a person. True when a person should be offered."""
    verdict = judge(reply, grounding, question, config)
    if verdict == HAND_OVER:
        reply.wants_human = True
    return verdict == OFFER
