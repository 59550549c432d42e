"""The offline provider: answers from the knowledge base by keyword relevance, with no key and no network.

It answers when one passage clearly covers the question, shares a passage with a caveat when
the match is partial, and otherwise says it doesn't know and offers a person. It never invents
text: every answer is a passage of the configured knowledge. It costs nothing (0 tokens).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Sequence

from shared.llm import replies
from shared.llm._text import words
from shared.llm.handoff import asks_for_human
from shared.llm.knowledge import KnowledgeBase, ScoredPassage
from shared.llm.types import BotReply, ChatTurn, ReplyStream

MODEL = "offline"
ANSWER_SCORE = 0.5  # at least half of the question's (IDF-weighted) words are in the passage
MAYBE_SCORE = 0.15  # some overlap: share it, but say it may not answer the question

_GREETING_WORDS = {"hi", "hello", "hey", "hiya", "howdy", "greetings", "bonjour", "salut", "hallo", "hola", "yo"}
_GREETING_FILLER = {"good", "morning", "afternoon", "evening", "there", "buenos", "dias", "guten", "tag", "all", "team"}
_THANKS_WORDS = {"thanks", "thank", "thx", "ty", "merci", "danke", "gracias", "cheers", "bye", "goodbye"}
_THANKS_FILLER = {"you", "so", "very", "much", "a", "lot", "great", "ok", "okay", "perfect", "cool", "that", "helps"}


def _only(text: str, key: set[str], filler: set[str]) -> bool:
    found = set(words(text))
    return bool(found & key) and found <= key | filler


def compose_answer(question: str, found: Sequence[ScoredPassage]) -> str:
    """The offline bot's text for ``question`` given the passages ranked for it (pure)."""
    if _only(question, _GREETING_WORDS, _GREETING_FILLER):
        return replies.GREETING
    if _only(question, _THANKS_WORDS, _THANKS_FILLER):
        return replies.THANKS
    if not found or found[0].score < MAYBE_SCORE:
        return replies.DONT_KNOW
    best = found[0]
    if best.score < ANSWER_SCORE:
        return (
            "I'm not sure this answers your question, but here is what I found:\n\n"
            f"{best.passage.text}\n\nIf that doesn't help, I can connect you with a person from our team."
        )
    # A second passage nearly as relevant (same topic, other wording) is worth adding.
    extra = [s.passage.text for s in found[1:2] if s.score >= max(ANSWER_SCORE, 0.9 * best.score)]
    return "\n\n".join([best.passage.text, *extra])


class OfflineProvider:
    """Answers from ``knowledge`` without any network call."""

    name = "offline"
    model = MODEL

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self.knowledge = knowledge

    async def reply(self, history: Sequence[ChatTurn], question: str) -> BotReply:  # noqa: ARG002
        """Answer ``question`` from the knowledge (keyword answers don't depend on earlier turns)."""
        started = time.perf_counter()
        if asks_for_human(question):
            return replies.handoff_reply(self.name, MODEL)
        text = compose_answer(question, self.knowledge.top_passages(question, k=2))
        latency_ms = int((time.perf_counter() - started) * 1000)
        return BotReply(text, model=MODEL, latency_ms=latency_ms, provider=self.name)

    def stream(self, history: Sequence[ChatTurn], question: str) -> ReplyStream:
        """The same answer as :meth:`reply`, in a few word-group deltas."""
        return ReplyStream(self._stream(history, question))

    async def _stream(self, history: Sequence[ChatTurn], question: str) -> AsyncGenerator[str | BotReply, None]:
        reply = await self.reply(history, question)
        pieces = re.findall(r"\S+\s*", reply.text)
        leading = reply.text[: len(reply.text) - len(reply.text.lstrip())]
        if leading:
            yield leading
        for start in range(0, len(pieces), 4):
            yield "".join(pieces[start : start + 4])
        yield reply

    async def aclose(self) -> None:
        """Nothing to release."""
