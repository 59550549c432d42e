"""Cutting documents into retrievable chunks along their structure (pure: no I/O).

A chunk stays under one heading and carries the path of headings above it, an anchor to link
back to (the nearest heading's URL-fragment slug, or ``page=N`` for a page of a PDF) and an id
that is a hash of source, anchor and text: re-ingesting an unchanged document yields the same ids.

Sizes are in approximate tokens (words x 1.3, close enough for English and most Latin-script
languages, and needs no tokenizer). Small paragraphs and list items under one heading are merged
up to ``max_tokens``; a longer section becomes several chunks, each starting with the tail of the
one before (``overlap``, ~15%) so a fact cut at a boundary is still whole in one of them. A Q&A
pair is always one chunk of its own, never split, however long: its answer only means something
next to its question.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

TOKENS_PER_WORD = 1.3
MAX_TOKENS = 800
OVERLAP = 0.15

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\S")
_QUESTION = re.compile(r"^\s*(?:\*\*)?(?:q|question)\s*[:.)]\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE)
_ANSWER = re.compile(r"^\s*(?:\*\*)?(?:a|answer)\s*[:.)]\s*(?:\*\*)?\s*(.*)$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_SLUG_DROP = re.compile(r"[^\w\- ]")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable piece of a source document."""

    id: str  # chunk_id(source_id, anchor, text): stable across re-ingestion of the same content
    source_id: str
    text: str  # the body; a Q&A pair is "Q: ...\nA: ..."
    heading_path: tuple[str, ...] = ()  # outermost heading first
    anchor: str = ""  # URL fragment without "#": a heading slug or "page=N"; "" is the top
    question: str = ""  # the question of a Q&A pair (indexed with more weight)
    position: int = 0  # order within the source, for showing neighbours
    url: str = ""  # the page the chunk comes from (crawled and sitemap sources), without the anchor


def estimate_tokens(text: str) -> int:
    """Approximate tokens of ``text`` (words x 1.3)."""
    return math.ceil(len(text.split()) * TOKENS_PER_WORD)


def chunk_id(source_id: str, anchor: str, text: str) -> str:
    """The stable id of a chunk: a hash of where it comes from and what it says."""
    digest = hashlib.sha256("\x00".join((source_id, anchor, text)).encode("utf-8"))
    return digest.hexdigest()[:24]


def slugify(heading: str) -> str:
    """The URL fragment GitHub-style renderers give a heading: ``Opening hours!`` -> ``opening-hours``."""
    return _SLUG_DROP.sub("", heading.strip().casefold()).replace(" ", "-")


class _Slugs:
    """Unique slugs within one document: a repeated heading gets ``-1``, ``-2`` as renderers do."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, heading: str) -> str:
        slug = slugify(heading)
        count = self._seen.get(slug, 0)
        self._seen[slug] = count + 1
        return slug if count == 0 else f"{slug}-{count}"


@dataclass(frozen=True, slots=True)
class _Block:
    """A paragraph, list item or code block; or a whole Q&A pair when ``question`` is set."""

    text: str
    question: str = ""
    answer: str = ""


@dataclass(slots=True)
class _Section:
    path: tuple[str, ...]
    anchor: str
    blocks: list[_Block]


def _qa_text(question: str, answer: str) -> str:
    return f"Q: {question}\nA: {answer}"


def _sections(text: str) -> Iterator[_Section]:
    """Sections of Markdown (or plain) text: the blocks under each heading, with the heading path."""
    slugs = _Slugs()
    stack: list[tuple[int, str]] = []
    section = _Section((), "", [])
    lines: list[str] = []  # the open paragraph, list item or code block
    kind = ""  # "", "para", "item", "code", "q" (question lines), "a" (answer lines)
    question: list[str] = []
    fence = ""

    def close() -> None:
        nonlocal kind, lines, question
        if kind in ("q", "a"):
            q, a = " ".join(question).strip(), "\n".join(lines).strip()
            if q and a:
                section.blocks.append(_Block(_qa_text(q, a), q, a))
            elif q or a:  # half a pair is still knowledge: keep it as a paragraph
                section.blocks.append(_Block(q or a))
        elif lines and "\n".join(lines).strip():
            section.blocks.append(_Block("\n".join(lines).strip("\n")))
        kind, lines, question = "", [], []

    def open_heading(level: int, title: str) -> Iterator[_Section]:
        nonlocal section
        close()
        if section.blocks:
            yield section
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        section = _Section(tuple(t for _, t in stack), slugs(title), [])

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if kind == "code":
            lines.append(line)
            if line.lstrip().startswith(fence):
                close()
            continue
        if fenced := _FENCE.match(line):
            close()
            kind, fence, lines = "code", fenced.group(1)[:3], [line]
            continue
        if heading := _ATX.match(line):
            yield from open_heading(len(heading.group(1)), heading.group(2).strip())
            continue
        if (setext := _SETEXT.match(line)) and kind == "para" and len(lines) == 1:
            title = lines[0].strip()
            kind, lines = "", []
            yield from open_heading(1 if setext.group(1)[0] == "=" else 2, title)
            continue
        if asked := _QUESTION.match(line):
            close()
            kind, question = "q", [asked.group(1)]
            continue
        if kind == "q" and (answered := _ANSWER.match(line)):
            kind, lines = "a", [answered.group(1)]
            continue
        if kind == "q":
            if line.strip():
                question.append(line.strip())
            continue
        if kind == "a":  # an answer runs to the next question or heading, blank lines included
            lines.append(line)
            continue
        if not line.strip():
            close()
        elif _LIST_ITEM.match(line):
            close()
            kind, lines = "item", [line.strip()]
        else:
            if not kind:
                kind = "para"
            lines.append(line.strip() if kind == "para" else line)
    close()
    if section.blocks:
        yield section


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece small enough to pack: a whole block, a sentence of one, or a run of words."""

    text: str
    block: int  # units of one block are joined by a space, different blocks by a blank line

    @property
    def words(self) -> int:
        return len(self.text.split())


def _units(blocks: Sequence[_Block], max_words: int, overlap_words: int) -> Iterator[_Unit]:
    for index, block in enumerate(blocks):
        if len(block.text.split()) <= max_words:
            yield _Unit(block.text, index)
            continue
        for sentence in _SENTENCE_END.split(block.text):
            words = sentence.split()
            if len(words) <= max_words:
                yield _Unit(sentence, index)
                continue
            # One enormous "sentence" (a table, a log): windows of words, overlapping like chunks do.
            step = max(1, max_words - overlap_words)
            for start in range(0, len(words), step):
                yield _Unit(" ".join(words[start : start + max_words]), index)
                if start + max_words >= len(words):
                    break


def _join(units: Sequence[_Unit]) -> str:
    parts: list[str] = []
    for i, unit in enumerate(units):
        if i:
            parts.append(" " if unit.block == units[i - 1].block else "\n\n")
        parts.append(unit.text)
    return "".join(parts)


def _tail(units: Sequence[_Unit], budget: int) -> list[_Unit]:
    """The end of a chunk to repeat at the start of the next: whole units if they fit, else words."""
    if budget <= 0 or not units:
        return []
    kept: list[_Unit] = []
    used = 0
    for unit in reversed(units):
        if used + unit.words > budget:
            break
        kept.insert(0, unit)
        used += unit.words
    if kept:
        return kept
    last = units[-1]
    return [_Unit(" ".join(last.text.split()[-budget:]), last.block)]


def _pack(blocks: Sequence[_Block], max_words: int, overlap_words: int) -> Iterator[str]:
    """Texts of the chunks of one section's prose: merged up to the limit, overlapping when cut."""
    current: list[_Unit] = []
    fresh = False  # whether ``current`` holds more than the overlap carried over
    for unit in _units(blocks, max_words, overlap_words):
        if fresh and sum(u.words for u in current) + unit.words > max_words:
            yield _join(current)
            current = _tail(current, min(overlap_words, max_words - unit.words))
        current.append(unit)
        fresh = True
    if fresh:
        yield _join(current)


def _words_for(tokens: int) -> int:
    return max(1, int(tokens / TOKENS_PER_WORD))


def chunk_markdown(
    text: str,
    *,
    source_id: str,
    page: int | None = None,
    max_tokens: int = MAX_TOKENS,
    overlap: float = OVERLAP,
) -> list[Chunk]:
    """Chunks of Markdown or plain text: ``#`` headings, paragraphs, list items and ``Q:``/``A:`` pairs.

    ``page`` (for the text of one page of a PDF) makes every chunk's anchor ``page=N`` instead of
    the heading's slug.
    """
    max_words = _words_for(max_tokens)
    overlap_words = int(max_words * overlap)
    chunks: list[Chunk] = []

    def emit(section: _Section, body: str, question: str = "") -> None:
        anchor = f"page={page}" if page is not None else section.anchor
        chunks.append(
            Chunk(chunk_id(source_id, anchor, body), source_id, body, section.path, anchor, question, len(chunks))
        )

    for section in _sections(text):
        prose: list[_Block] = []
        for block in section.blocks:
            if not block.question:
                prose.append(block)
                continue
            for body in _pack(prose, max_words, overlap_words):
                emit(section, body)
            prose = []
            emit(section, block.text, block.question)
        for body in _pack(prose, max_words, overlap_words):
            emit(section, body)
    return chunks


def chunk_qa(
    pairs: Iterable[tuple[str, str]], *, source_id: str, heading_path: Sequence[str] = (), page: int | None = None
) -> list[Chunk]:
    """One chunk per (question, answer) pair, whole; the anchor is the question's slug (or ``page=N``)."""
    slugs = _Slugs()
    chunks: list[Chunk] = []
    for question, answer in pairs:
        q, a = " ".join(question.split()), answer.strip()
        if not q or not a:
            continue
        anchor = f"page={page}" if page is not None else slugs(q)
        body = _qa_text(q, a)
        chunks.append(
            Chunk(chunk_id(source_id, anchor, body), source_id, body, tuple(heading_path), anchor, q, len(chunks))
        )
    return chunks
