"""Content gaps: the visitor questions the bot could not answer from the knowledge, grouped by similarity.

A question is recorded (from the outbox, see :mod:`shared.projections`) when the offline bot found
no excerpt covering it (``no-match``), when the model said the excerpts don't answer it
(``unanswered``), or when the visitor asked for a person next (``handoff``: the question before the
request). Requests for a person, greetings and thanks themselves are not questions and are skipped.
Records are kept ``KNOWLEDGE_GAPS_RETENTION_DAYS`` (a daily timer deletes older days) and the
listing reads at most :data:`MAX_RECORDS` of the newest.

**Grouping.** A question's words are its content words as the bot reads them (lower case, accents
folded, stop words dropped, light stemming: "Shipping to Canada?" -> {ship, canada}). Questions are
taken oldest first; each joins the first group whose *first* question it resembles -- Jaccard
similarity (words in both / words in either) of at least :data:`SIMILARITY` -- or starts a group.
A group's id is a hash of its first question's words, so it stays put as questions join. It shows
its most frequent wording (the latest of equals), how many times it was asked, when it was last
asked, its reasons and a few session ids. Dismissing a group hides the questions in it now; a
similar question asked later starts a new group (the gap is back).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.clock import utcnow
from shared.errors import Problem
from shared.llm._text import terms
from shared.llm.handoff import asks_for_human
from shared.llm.offline import small_talk
from shared.storage.gaps import GapRecord, GapRepository

SIMILARITY = 0.5
MAX_RECORDS = 5000
SAMPLE_SESSIONS = 5
MAX_VARIANTS = 5
_GROUP_ID = re.compile(r"[0-9a-f]{16}")


def is_question(text: str) -> bool:
    """Whether ``text`` is worth recording: it asks about something (not "agent", "hi" or "thanks")."""
    return bool(terms(text)) and not asks_for_human(text) and small_talk(text) is None


async def record_gap(session_id: str, question: str, reason: str, at: datetime) -> bool:
    """Record a question the knowledge did not answer; False when it is not a question worth keeping."""
    if not is_question(question):
        return False
    await GapRepository().record(session_id, question.strip(), reason, at)
    return True


def words_of(question: str) -> frozenset[str]:
    """The content words similarity is measured on."""
    return frozenset(terms(question))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two word sets (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


@dataclass
class GapGroup:
    """Similar questions, and what the dashboard shows of them."""

    id: str
    words: frozenset[str]
    order: int = 0  # when it was started, among the groups of one listing
    records: list[GapRecord] = field(default_factory=list)

    @property
    def last_seen(self) -> str:
        """When a question of the group was last asked."""
        return max(record.last_seen for record in self.records)

    def public(self) -> dict[str, Any]:
        """The group as the API shows it."""
        newest_first = sorted(self.records, key=lambda r: r.last_seen, reverse=True)
        wordings = Counter(" ".join(record.question.split()) for record in newest_first)
        # Counter keeps first-seen order among equals, and the records are newest first.
        ranked = [text for text, _ in wordings.most_common()]
        reasons = Counter(reason for record in self.records for reason in record.reasons)
        sessions = list(dict.fromkeys(record.session_id for record in newest_first))
        return {
            "id": self.id,
            "question": ranked[0],
            "variants": ranked[1 : 1 + MAX_VARIANTS],
            "count": len(self.records),
            "sessions": len(sessions),
            "firstSeen": min(record.last_seen for record in self.records),
            "lastSeen": self.last_seen,
            "reasons": dict(sorted(reasons.items())),
            "sampleSessionIds": sessions[:SAMPLE_SESSIONS],
        }


def group_id(words: frozenset[str], question: str) -> str:
    """A group's id: a hash of its first question's words (its wording when it has none)."""
    key = "|".join(sorted(words)) if words else "text:" + " ".join(question.casefold().split())
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def group_gaps(records: Sequence[GapRecord]) -> list[GapGroup]:
    """Group ``records`` by similarity (pure), the most asked first, then the most recent."""
    groups: list[GapGroup] = []
    by_word: dict[str, list[GapGroup]] = {}
    by_text: dict[str, GapGroup] = {}
    for record in sorted(records, key=lambda r: (r.last_seen, r.partition, r.row)):
        words = words_of(record.question)
        found: GapGroup | None = None
        if words:
            # Groups sharing a word, the oldest first, so which one a question joins never depends on set order.
            candidates = sorted(
                {id(g): g for word in words for g in by_word.get(word, ())}.values(), key=lambda g: g.order
            )
            found = next((group for group in candidates if similarity(words, group.words) >= SIMILARITY), None)
        else:
            found = by_text.get(" ".join(record.question.casefold().split()))
        if found is None:
            found = GapGroup(group_id(words, record.question), words, len(groups))
            groups.append(found)
            for word in words:
                by_word.setdefault(word, []).append(found)
            if not words:
                by_text[" ".join(record.question.casefold().split())] = found
        found.records.append(record)
    groups.sort(key=lambda g: g.id)
    groups.sort(key=lambda g: g.last_seen, reverse=True)  # stable sorts: count, then recency, then id
    groups.sort(key=lambda g: len(g.records), reverse=True)
    return groups


async def _records(now: datetime) -> list[GapRecord]:
    from shared.llm.settings import get_llm_settings

    since = (now - timedelta(days=get_llm_settings().gaps_retention_days - 1)).date()
    return await GapRepository().recent(since, MAX_RECORDS)


async def list_gaps(limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int, int | None]:
    """A page of the groups not dismissed: (groups, total, the next page's offset or None)."""
    active = [record for record in await _records(utcnow()) if not record.dismissed_group]
    groups = group_gaps(active)
    page = [group.public() for group in groups[offset : offset + limit]]
    after = offset + limit
    return page, len(groups), after if after < len(groups) else None


def not_found(group: str) -> Problem:
    """The 404 for an unknown group."""
    return Problem(
        404, f"No content gap group {group[:64]!r}; the list may have changed, reload it.", kind="gap-not-found"
    )


async def dismiss_group(group: str) -> dict[str, Any]:
    """Hide the questions of ``group`` (again: nothing more to hide, still 200); 404 for an unknown one."""
    if not _GROUP_ID.fullmatch(group):
        raise not_found(group)
    records = await _records(utcnow())
    active = [record for record in records if not record.dismissed_group]
    match = next((g for g in group_gaps(active) if g.id == group), None)
    if match is None:
        if any(record.dismissed_group == group for record in records):
            return {"id": group, "dismissed": True, "questions": 0}
        raise not_found(group)
    await GapRepository().dismiss(match.records, group)
    return {"id": group, "dismissed": True, "questions": len(match.records)}


async def forget_old_gaps(now: datetime | None = None) -> int:
    """Delete records older than the retention; how many went."""
    from shared.llm.settings import get_llm_settings

    keep_from = ((now or utcnow()) - timedelta(days=get_llm_settings().gaps_retention_days - 1)).date()
    return await GapRepository().forget_before(keep_from)
