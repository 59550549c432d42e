"""Turning what an admin types into a safe FTS5 query and rendering snippets (pure).

Every term is sent to FTS5 as a double-quoted string, so nothing the user types is FTS syntax
(``AND``, ``NEAR``, ``col:``, parentheses, stray quotes are all just text). Terms with no letter or
digit (``%``, emoji, a lone ``"``) are dropped: the unicode61 tokenizer would find no token in them.
https://www.sqlite.org/fts5.html#full_text_query_syntax
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from shared.web.http import invalid_query

MAX_QUERY_CHARS = 2000
MAX_TERMS = 16
MAX_TERM_CHARS = 100
# Snippet markers: control characters that indexing strips from message text, so they can't be forged.
MARK_OPEN, MARK_CLOSE = "\x01", "\x02"
_PARTS = re.compile(r'"([^"]*)"?|([^\s"]+)')
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Term:
    """One phrase or word of a query."""

    text: str
    prefix: bool = False

    def fts(self) -> str:
        """The term as an FTS5 string (quotes doubled), with ``*`` for a prefix."""
        return '"' + self.text.replace('"', '""') + '"' + ("*" if self.prefix else "")


def _has_token(text: str) -> bool:
    """Whether unicode61 finds a token here: a letter, a number or a private-use character."""
    return any(unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "Co" for ch in text)


def parse_terms(q: str) -> list[Term]:
    """Words and "quoted phrases" of ``q`` (AND-ed); a trailing ``*`` on a word asks for a prefix."""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", q))
    terms: list[Term] = []
    for match in _PARTS.finditer(text):
        phrase, word = match.group(1), match.group(2)
        if phrase is not None:
            term = Term(phrase.strip()[:MAX_TERM_CHARS])
        else:
            prefix = word.endswith("*") and _has_token(word)
            term = Term(word.replace("*", " ").strip()[:MAX_TERM_CHARS], prefix)
        if term.text and _has_token(term.text) and term not in terms:
            terms.append(term)
        if len(terms) >= MAX_TERMS:
            break
    return terms


def build_match(q: str | None) -> str | None:
    """The FTS5 MATCH expression for ``q``; None when it has no searchable word; 422 when empty."""
    if q is None or not q.strip():
        raise invalid_query("q", "must contain a word to search for")
    if len(q) > MAX_QUERY_CHARS:
        raise invalid_query("q", f"must be at most {MAX_QUERY_CHARS} characters")
    terms = parse_terms(q)
    return " ".join(term.fts() for term in terms) if terms else None


def clean_text(text: str) -> str:
    """Message text as indexed: without the snippet markers (and other control characters)."""
    return _CONTROL.sub(" ", text)


def render_snippet(raw: str) -> str:
    """HTML-escape a snippet, then turn the markers into ``<mark>`` elements."""
    return html.escape(raw, quote=True).replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")
