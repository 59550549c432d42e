"""The offline provider: answers extractively from the best knowledge excerpt, with no key and no network.

It answers with the excerpt that covers the question best when its coverage reaches
``KNOWLEDGE_MIN_SCORE`` (see :mod:`shared.llm.grounding`), citing its source; otherwise it says it
doesn't know and offers a person (and the question counts as a content gap). It never invents
text: every answer is an excerpt of the knowledge. It costs nothing (0 tokens).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Sequence

from shared.llm import replies
from shared.llm._text import words
from shared.llm.grounding import Excerpt, Grounding, citations
from shared.llm.handoff import asks_for_human
from shared.llm.types import NO_MATCH, BotReply, ChatTurn, Citation, ReplyStream

MODEL = "offline"
SECOND_SHARE = 0.9  # a second excerpt nearly as good as the best (same topic, other wording) is added

_GREETING_WORDS = {"hi", "hello", "hey", "hiya", "howdy", "greetings", "bonjour", "salut", "hallo", "hola", "yo"}
_GREETING_FILLER = {"good", "morning", "afternoon", "evening", "there", "buenos", "dias", "guten", "tag", "all", "team"}
_THANKS_WORDS = {"thanks", "thank", "thx", "ty", "merci", "danke", "gracias", "cheers", "bye", "goodbye"}
_THANKS_FILLER = {"you", "so", "very", "much", "a", "lot", "great", "ok", "okay", "perfect", "cool", "that", "helps"}


def _only(text: str, key: set[str], filler: set[str]) -> bool:
    found = set(words(text))
    return bool(found & key) and found <= key | filler


def small_talk(question: str) -> str | None:
    """The reply to a greeting or a thank-you that asks nothing else; None for anything else."""
    if _only(question, _GREETING_WORDS, _GREETING_FILLER):
        return replies.GREETING
    if _only(question, _THANKS_WORDS, _THANKS_FILLER):
        return replies.THANKS
    return None


def compose_answer(question: str, grounding: Grounding) -> tuple[str, list[Citation], str]:
    """The offline bot's text, citations and gap reason for ``question`` (pure)."""
    chatter = small_talk(question)
    if chatter is not None:
        return chatter, [], ""
    best = grounding.best
    if best is None or not grounding.grounded:
        return replies.DONT_KNOW, [], NO_MATCH
    used: list[Excerpt] = [best]
    floor = max(grounding.min_score, SECOND_SHARE * best.score)
    used += [e for e in grounding.excerpts if e is not best and e.score >= floor and e.answer != best.answer][:1]
    return "\n\n".join(excerpt.answer for excerpt in used), citations(used), ""


class OfflineProvider:
    """Answers from the grounding excerpts without any network call."""

    name = "offline"
    model = MODEL

    async def reply(self, history: Sequence[ChatTurn], question: str, grounding: Grounding) -> BotReply:  # noqa: ARG002
        """Answer ``question`` from the best excerpt (extractive answers don't depend on earlier turns)."""
        started = time.perf_counter()
        if asks_for_human(question):
            return replies.handoff_reply(self.name, MODEL)
        text, cited, gap = compose_answer(question, grounding)
        latency_ms = int((time.perf_counter() - started) * 1000)
        return BotReply(text, model=MODEL, latency_ms=latency_ms, provider=self.name, citations=cited, gap=gap)

    def stream(self, history: Sequence[ChatTurn], question: str, grounding: Grounding) -> ReplyStream:
        """The same answer as :meth:`reply`, in a few word-group deltas."""
        return ReplyStream(self._stream(history, question, grounding))

    async def _stream(
        self, history: Sequence[ChatTurn], question: str, grounding: Grounding
    ) -> AsyncGenerator[str | BotReply, None]:
        reply = await self.reply(history, question, grounding)
        pieces = re.findall(r"\S+\s*", reply.text)
        leading = reply.text[: len(reply.text) - len(reply.text.lstrip())]
        if leading:
            yield leading
        for start in range(0, len(pieces), 4):
            yield "".join(pieces[start : start + 4])
        yield reply

    async def aclose(self) -> None:
        """Nothing to release."""
