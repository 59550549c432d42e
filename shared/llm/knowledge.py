"""The company's knowledge as passages, and keyword relevance to find the ones a question is about.

Knowledge is plain text or markdown: ``Q:``/``A:`` pairs, ``#`` headings over paragraphs, or
just paragraphs. A question is scored against each passage by the share of its content words
(lower-cased, accent-folded, stop words dropped, lightly stemmed, prefixes matched) that the
passage contains, each word weighted by how rare it is in the knowledge (IDF), so "shipping"
in a shop's FAQ counts less than "refund". The score is in [0, 1], comparable across questions,
which is what lets the offline bot decide when it honestly doesn't know.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

from shared.llm._text import terms
from shared.llm.settings import LlmSettings, get_llm_settings

log = logging.getLogger(__name__)

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_QUESTION = re.compile(r"^\s*(?:\*\*)?(?:q|question)\s*[:.)]\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE)
_ANSWER = re.compile(r"^\s*(?:\*\*)?(?:a|answer)\s*[:.)]\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE)
_PREFIX_WEIGHT = 0.8  # "refund" in the question, "refundable" in the passage: close, not exact
_SECTION_WEIGHT = 0.5  # the heading above a Q/A pair is context, not the pair's topic
_MIN_PREFIX = 4


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable piece of knowledge: a Q/A pair, or a paragraph under its heading."""

    title: str  # the question of a Q/A pair, or the heading over a paragraph
    text: str  # the answer, or the paragraph
    section: str = ""  # the heading above a Q/A pair

    def render(self, max_chars: int = 1500) -> str:
        """The passage as prompt text."""
        text = self.text if len(self.text) <= max_chars else self.text[:max_chars].rsplit(" ", 1)[0] + " ..."
        if self.section and self.title:
            return f"[{self.section}] Q: {self.title}\nA: {text}"
        return f"{self.title}\n{text}" if self.title else text


@dataclass(frozen=True, slots=True)
class ScoredPassage:
    """A passage and how well it covers a question (0 to 1)."""

    passage: Passage
    score: float


class _Splitter:
    """Line-by-line state machine turning knowledge text into passages."""

    def __init__(self) -> None:
        self.passages: list[Passage] = []
        self.heading = ""
        self.question: list[str] | None = None  # inside a Q/A pair
        self.answer: list[str] | None = None
        self.paragraph: list[str] = []

    def flush(self) -> None:
        if self.question is not None:
            question, answer = _join(self.question), _join(self.answer or [])
            if answer:
                self.passages.append(Passage(question, answer, self.heading))
            elif question:
                self.passages.append(Passage(self.heading, question))
        elif self.paragraph and _join(self.paragraph):
            self.passages.append(Passage(self.heading, _join(self.paragraph)))
        self.question, self.answer, self.paragraph = None, None, []

    def feed(self, line: str) -> None:
        if heading := _HEADING.match(line):
            self.flush()
            self.heading = heading.group(1).strip()
        elif question := _QUESTION.match(line):
            self.flush()
            self.question = [question.group(1)]
        elif self.question is not None and self.answer is None and (answer := _ANSWER.match(line)):
            self.answer = [answer.group(1)]
        elif self.question is not None:
            # An answer runs over blank lines until the next question or heading.
            (self.answer if self.answer is not None else self.question).append(line)
        elif not line.strip():
            # Under a heading that is itself a question, every paragraph is the one answer.
            if not self.heading.endswith("?"):
                self.flush()
            else:
                self.paragraph.append("")
        else:
            self.paragraph.append(line)


def _join(lines: list[str]) -> str:
    paragraphs = "\n".join(line.rstrip() for line in lines).strip()
    return re.sub(r"\n{3,}", "\n\n", paragraphs)


def split_passages(text: str) -> list[Passage]:
    """Split knowledge text into passages (Q/A pairs, paragraphs under headings)."""
    splitter = _Splitter()
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        splitter.feed(line)
    splitter.flush()
    return splitter.passages


class KnowledgeBase:
    """Passages with an inverted index over their stemmed terms."""

    def __init__(self, text: str) -> None:
        self.passages = split_passages(text)
        self._index: dict[str, dict[int, float]] = {}
        self._title_terms: list[set[str]] = []
        for i, passage in enumerate(self.passages):
            weights: dict[str, float] = {}
            for term in terms(passage.section):
                weights[term] = _SECTION_WEIGHT
            for term in terms(passage.title) + terms(passage.text):
                weights[term] = 1.0
            for term, weight in weights.items():
                self._index.setdefault(term, {})[i] = weight
            self._title_terms.append(set(terms(passage.title)))

    def __len__(self) -> int:
        return len(self.passages)

    def _matches(self, term: str) -> dict[int, float]:
        found = dict(self._index.get(term, {}))
        if len(term) >= _MIN_PREFIX:
            for other, postings in self._index.items():
                if other != term and len(other) >= _MIN_PREFIX and (other.startswith(term) or term.startswith(other)):
                    for i, weight in postings.items():
                        found[i] = max(found.get(i, 0.0), weight * _PREFIX_WEIGHT)
        return found

    def top_passages(self, question: str, k: int = 3, *, min_score: float = 0.0) -> list[ScoredPassage]:
        """The ``k`` passages that best cover ``question``, best first, each scoring above ``min_score``."""
        query = list(dict.fromkeys(terms(question)))
        if not query or not self.passages:
            return []
        n = len(self.passages)
        covered = [0.0] * n
        total_idf = 0.0
        for term in query:
            matches = self._matches(term)
            # BM25's IDF: a word in every passage says little; one the knowledge lacks says a lot.
            idf = math.log(1 + (n - len(matches) + 0.5) / (len(matches) + 0.5))
            total_idf += idf
            for i, weight in matches.items():
                covered[i] += idf * weight
        ranked = sorted(
            range(n),
            key=lambda i: (-covered[i], -len(self._title_terms[i].intersection(query)), i),
        )
        scored = [ScoredPassage(self.passages[i], round(covered[i] / total_idf, 4)) for i in ranked[:k]]
        return [s for s in scored if s.score > min_score]


def read_knowledge_text(settings: LlmSettings) -> str:
    """``KNOWLEDGE_TEXT`` plus the contents of ``KNOWLEDGE_FILE``; ValueError if the file can't be read."""
    text = settings.knowledge_text
    # A one-line app setting often carries literal "\n"s; treat them as the line breaks meant.
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    if settings.knowledge_file:
        path = Path(settings.knowledge_file)
        try:
            text = f"{text}\n\n{path.read_text(encoding='utf-8')}" if text else path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"KNOWLEDGE_FILE {settings.knowledge_file!r} cannot be read: {exc}") from exc
    return text


def load_knowledge(settings: LlmSettings) -> KnowledgeBase:
    """The knowledge base the settings describe; ValueError if ``KNOWLEDGE_FILE`` can't be read."""
    return KnowledgeBase(read_knowledge_text(settings))


@functools.lru_cache(maxsize=1)
def get_knowledge() -> KnowledgeBase:
    """The worker's knowledge base, built once (an unreadable file is logged and skipped)."""
    settings = get_llm_settings()
    try:
        knowledge = load_knowledge(settings)
    except ValueError as exc:
        log.error("%s; answering from KNOWLEDGE_TEXT only", exc)
        knowledge = KnowledgeBase(settings.knowledge_text)
    log.info("knowledge base: %d passages", len(knowledge))
    return knowledge


def top_passages(question: str, k: int = 3) -> list[ScoredPassage]:
    """The worker's knowledge passages most relevant to ``question``."""
    return get_knowledge().top_passages(question, k)
