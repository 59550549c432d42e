"""Grounding: the knowledge excerpts a bot answer may use, numbered for the prompt, and what they cite.

For each visitor question the bot gathers candidates from two places:

* the knowledge sources (:func:`shared.knowledge.searching.search`, enabled sources only), searched
  for the question and, when the visitor asked something before, for both questions together (a
  follow-up such as "and to Canada?" says little alone);
* the ``KNOWLEDGE_TEXT`` / ``KNOWLEDGE_FILE`` setting, still read as one more source so a deployment
  configured that way keeps its knowledge; it is cited as the pseudo source
  :data:`SETTING_SOURCE_ID` with no URL.

Every candidate gets a **coverage** score in [0, 1]: the share of the question's topic words found
in the excerpt (its headings included). Topic words are the question's content words as the bot
reads them (lower case, accents folded, stop words dropped, light stemming) less the few that only
frame a question (:data:`FRAMING`: "how *long*", "return *policy*"); a word sharing a 5+ letter
prefix with an excerpt word ("refund" / "refundable") counts 0.8. Unweighted on purpose: weighting
by rarity among the candidates would discount the very words retrieval picked them for. Retrieval
scores (BM25) can't be compared across questions or sources; coverage can, which is what lets the
bot decide when it honestly doesn't know: the offline bot answers only from an excerpt whose
coverage reaches ``KNOWLEDGE_MIN_SCORE``.

The excerpts are the question's candidates by coverage, taking turns with the follow-up query's,
at most ``KNOWLEDGE_TOP_CHUNKS`` of them, numbered from 1 in the prompt.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

from shared.llm._text import stem, terms
from shared.llm.knowledge import KnowledgeBase, Passage
from shared.llm.types import ChatTurn, Citation

log = logging.getLogger(__name__)

SETTING_SOURCE_ID = "knowledge-setting"  # the KNOWLEDGE_TEXT / KNOWLEDGE_FILE setting as a source
SETTING_SOURCE_TITLE = "Knowledge base"
# Words that frame a question rather than name its topic ("how long", "return policy", "what are
# my options"); as stems, so they meet the question's terms.
FRAMING = frozenset(
    stem(word)
    for word in """long much many often soon far policy policies possible way ways option options info information
    detail details anything something thing things kind type question questions help work works exactly""".split()
)
MAX_QUERY_CHARS = 1000  # what the knowledge search accepts
MAX_TITLE_CHARS = 200
MAX_URL_CHARS = 2048
_PREFIX_WEIGHT = 0.8
_MIN_PREFIX = 5
_SPACE = re.compile(r"\s+")
_UNSAFE_URL = re.compile(r"[\x00-\x20\x7f<>\"'`\\]")


@dataclass(frozen=True, slots=True)
class Excerpt:
    """One piece of knowledge the bot may answer from."""

    key: str  # the chunk id (or the setting passage), to count a candidate once
    source_id: str
    title: str  # the source's title
    text: str  # what the model reads (a Q&A pair as "Q: ...\nA: ...")
    answer: str  # what the offline bot says (a Q&A pair's answer alone)
    headings: tuple[str, ...] = ()
    url: str | None = None  # http(s) only, with the chunk's #anchor
    score: float = 0.0  # coverage of the question, 0-1

    def citation(self) -> Citation:
        """The source to cite for this excerpt."""
        return Citation(self.source_id, self.title, self.url)


@dataclass
class Grounding:
    """The excerpts for one question, in prompt order (number ``n`` is ``excerpts[n - 1]``)."""

    excerpts: list[Excerpt] = field(default_factory=list)
    min_score: float = 0.6
    # Agents' instructions for this conversation (approval cards' "tell the AI" and "rephrase").
    guidance: list[str] = field(default_factory=list)

    @property
    def best(self) -> Excerpt | None:
        """The excerpt covering the question best (the earliest of equals)."""
        return max(self.excerpts, key=lambda e: e.score, default=None)

    @property
    def grounded(self) -> bool:
        """True when some excerpt covers the question well enough to answer from it alone."""
        best = self.best
        return best is not None and best.score >= self.min_score

    def cited(self, numbers: Sequence[int]) -> list[Citation]:
        """The citations of the numbered excerpts (numbers out of range are ignored)."""
        return citations([self.excerpts[n - 1] for n in numbers if 1 <= n <= len(self.excerpts)])


def citations(excerpts: Sequence[Excerpt]) -> list[Citation]:
    """One citation per source page, in order of first use.

    A source with several pages (a crawled site) is cited once per page; those citations add the
    page's heading to the title so they can be told apart.
    """
    unique: dict[tuple[str, str | None], Excerpt] = {}
    for excerpt in excerpts:
        page = excerpt.url.split("#", 1)[0] if excerpt.url else None
        unique.setdefault((excerpt.source_id, page), excerpt)
    per_source: dict[str, int] = {}
    for source_id, _ in unique:
        per_source[source_id] = per_source.get(source_id, 0) + 1
    found: list[Citation] = []
    for (source_id, _), excerpt in unique.items():
        title = excerpt.title
        if per_source[source_id] > 1 and excerpt.headings:
            title = f"{title} \u2013 {excerpt.headings[-1]}"
        found.append(Citation(source_id, _clip(title, MAX_TITLE_CHARS) or SETTING_SOURCE_TITLE, excerpt.url))
    return found


def _clip(text: str, limit: int) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def safe_url(url: Any, anchor: Any = "") -> str | None:
    """``url`` (with ``#anchor``) when it is an absolute http(s) URL a visitor may open; else None."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS or _UNSAFE_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if isinstance(anchor, str) and anchor and not parts.fragment:
        url = f"{url.split('#', 1)[0]}#{quote(anchor, safe='=-_.~')}"
    return url if len(url) <= MAX_URL_CHARS else None


# --- coverage ---------------------------------------------------------------------------------------


def _match(term: str, words: set[str]) -> float:
    if term in words:
        return 1.0
    if len(term) >= _MIN_PREFIX and any(
        len(word) >= _MIN_PREFIX and (word.startswith(term) or term.startswith(word)) for word in words
    ):
        return _PREFIX_WEIGHT
    return 0.0


def question_terms(question: str) -> list[str]:
    """The words of ``question`` that name its topic: content words without the ones framing a question."""
    found = list(dict.fromkeys(terms(question)))
    topical = [term for term in found if term not in FRAMING]
    return topical or found


def coverage(question: str, documents: Sequence[str]) -> list[float]:
    """The share of ``question``'s topic words each document contains, 0-1 (see the module docstring)."""
    query = question_terms(question)
    if not query:
        return [0.0] * len(documents)
    scores: list[float] = []
    for document in documents:
        words = set(terms(document))
        scores.append(round(sum(_match(term, words) for term in query) / len(query), 4))
    return scores


# --- candidates -------------------------------------------------------------------------------------


def _from_hit(hit: Mapping[str, Any]) -> Excerpt:
    text = str(hit.get("text") or "")
    answer = text.split("\nA: ", 1)[1] if text.startswith("Q: ") and "\nA: " in text else text
    headings = tuple(str(h) for h in hit.get("headingPath") or () if str(h).strip())
    return Excerpt(
        key=str(hit.get("chunkId") or text),
        source_id=str(hit.get("sourceId") or ""),
        title=str(hit.get("sourceTitle") or ""),
        text=text,
        answer=answer.strip(),
        headings=headings,
        url=safe_url(hit.get("url"), hit.get("anchor")),
    )


def _from_passage(passage: Passage) -> Excerpt:
    return Excerpt(
        key="setting:" + passage.render(),
        source_id=SETTING_SOURCE_ID,
        title=SETTING_SOURCE_TITLE,
        text=passage.render(),
        answer=passage.text.strip(),
        headings=(passage.section,) if passage.section else (),
    )


def _document(excerpt: Excerpt) -> str:
    return "\n".join([*excerpt.headings, excerpt.text])


def previous_question(history: Sequence[ChatTurn]) -> str:
    """The visitor's last earlier message (empty when this is their first)."""
    return next((turn.content for turn in reversed(history) if turn.role == "user" and turn.content.strip()), "")


def queries(history: Sequence[ChatTurn], question: str) -> list[str]:
    """What to search for: the question, then (for a follow-up) the previous question with it."""
    found = [question[:MAX_QUERY_CHARS]]
    previous = previous_question(history)
    if previous:
        found.append(f"{previous[: MAX_QUERY_CHARS // 2]}\n{question}"[:MAX_QUERY_CHARS])
    return found


def _by_coverage(keys: list[str], scores: Mapping[str, float]) -> list[str]:
    """``keys`` best covered first; equals keep their retrieval order (the sort is stable)."""
    return sorted(dict.fromkeys(keys), key=lambda key: -scores[key])


def build_grounding(
    question: str,
    history: Sequence[ChatTurn] = (),
    *,
    hits: Sequence[Sequence[Mapping[str, Any]]] = (),
    knowledge: KnowledgeBase | None = None,
    top: int = 5,
    min_score: float = 0.6,
) -> Grounding:
    """The excerpts for ``question`` (pure): ``hits[i]`` are the sources' results for ``queries()[i]``."""
    asked = queries(history, question)
    rankings: list[list[Excerpt]] = []
    for i, query in enumerate(asked):
        candidates = [_from_hit(hit) for hit in (hits[i] if i < len(hits) else ())]
        if knowledge is not None:
            candidates += [_from_passage(s.passage) for s in knowledge.top_passages(query, top)]
        rankings.append(candidates)
    pool: dict[str, Excerpt] = {}
    for excerpt in (excerpt for ranking in rankings for excerpt in ranking):
        pool.setdefault(excerpt.key, excerpt)
    keys = list(pool)
    scores = dict(zip(keys, coverage(question, [_document(pool[key]) for key in keys]), strict=True))
    ordered = [_by_coverage([e.key for e in rankings[0]], scores)]
    for query, ranking in zip(asked[1:], rankings[1:], strict=True):
        # The follow-up's candidates are ordered by how well they cover both questions together.
        mine = list(dict.fromkeys(excerpt.key for excerpt in ranking))
        ordered.append(
            _by_coverage(mine, dict(zip(mine, coverage(query, [_document(pool[k]) for k in mine]), strict=True)))
        )
    chosen: list[str] = []
    for position in range(max(len(keys) for keys in ordered)):
        for ranking_keys in ordered:  # the question's and the follow-up's best take turns
            if position < len(ranking_keys) and ranking_keys[position] not in chosen and len(chosen) < top:
                chosen.append(ranking_keys[position])
    excerpts = [replace(pool[key], score=scores[key]) for key in chosen]
    return Grounding(excerpts, min_score)


async def _search(query: str, top: int) -> list[dict[str, Any]]:
    """The sources' best chunks for ``query``; [] when the search can't run (answers go on without it)."""
    from shared.knowledge import searching  # the Storage SDK loads with the first chat turn, not at import

    try:
        return await searching.search(query, top)
    except Exception as exc:
        log.warning("knowledge search failed (%s); answering without the knowledge sources", type(exc).__name__)
        return []


async def ground(history: Sequence[ChatTurn], question: str) -> Grounding:
    """The excerpts for a visitor's question from the knowledge sources and the knowledge setting."""
    from shared.llm.knowledge import get_knowledge
    from shared.llm.settings import get_llm_settings

    settings = get_llm_settings()
    top = settings.knowledge_top_chunks
    hits = await asyncio.gather(*(_search(query, top) for query in queries(history, question)))
    knowledge = get_knowledge()
    return build_grounding(
        question, history, hits=hits, knowledge=knowledge if len(knowledge) else None,
        top=top, min_score=settings.knowledge_min_score,
    )  # fmt: skip
