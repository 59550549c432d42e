"""Hybrid search without I/O: rank fusion in the index, the vector cache, and the build searches run on."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from shared.knowledge import Chunk, KnowledgeIndex, chunk_markdown, chunk_qa
from shared.knowledge.embeddings import embedding_text
from shared.knowledge.retrieval import FUSION_K
from shared.knowledge.searching import build_index, search_index
from shared.knowledge.vectors import MemoryVectorStore, VectorCache, text_key

CORPUS = """# Fees
The charge for a building permit is 40 euros per square metre.

# Opening hours
The office is open from nine to five on weekdays.

# Parking
Visitors park for free behind the town hall.
"""
TOPICS = ("price", "time", "car")  # the three directions of the hand-made vector space


def unit(*values: float) -> Any:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def chunks() -> list[Chunk]:
    return chunk_markdown(CORPUS, source_id="town")


def vectors_by_topic() -> list[Any]:
    # Fees is about price, opening hours about time, parking about cars.
    return [unit(1, 0.1, 0), unit(0.1, 1, 0), unit(0, 0.1, 1)]


class TopicEmbedder:
    """An in-process embedder: a text's vector counts the topic words it has; records every call."""

    space = "test:topics:3"

    def __init__(self, *, fail: bool = False, delay: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.fail, self.delay = fail, delay

    async def embed(self, texts: Sequence[str], *, timeout: float | None = None) -> Any:
        self.calls.append(list(texts))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("embeddings service down")
        words = {"price": 0, "charge": 0, "cost": 0, "hours": 1, "open": 1, "when": 1, "park": 2, "car": 2}
        rows = []
        for text in texts:
            row = np.full(3, 0.01, np.float32)
            for word in text.lower().replace("?", " ").split():
                if word in words:
                    row[words[word]] += 1
            rows.append(row / np.linalg.norm(row))
        return np.vstack(rows)

    def understands(self, query: str) -> bool:
        return "zzz" not in query  # a question in a language it does not know

    async def aclose(self) -> None:
        return None


def test_fusion_adds_what_only_the_vectors_find() -> None:
    index = KnowledgeIndex.build(chunks(), vectors=vectors_by_topic())
    assert index.dense
    question = "How much does it cost?"  # no word of the fees chunk: BM25 alone finds nothing
    assert index.search(question) == []
    hits = index.search(question, top=3, vector=unit(1, 0, 0))
    assert [hit.chunk.anchor for hit in hits] == ["fees", "opening-hours", "parking"]
    assert hits[0].score == pytest.approx(1 / (FUSION_K + 1))  # first in one ranking, absent from the other


def test_a_chunk_high_in_both_rankings_wins() -> None:
    index = KnowledgeIndex.build(chunks(), vectors=vectors_by_topic())
    # Words find parking alone; the vector ranks fees first and parking second: parking is in both.
    assert [h.chunk.anchor for h in index.search("", top=2, vector=unit(1, 0, 0.3))] == ["fees", "parking"]
    hits = index.search("where do visitors park", top=3, vector=unit(1, 0, 0.3))
    assert [hit.chunk.anchor for hit in hits][:2] == ["parking", "fees"]
    assert hits[0].score == pytest.approx(1 / (FUSION_K + 1) + 1 / (FUSION_K + 2))
    by_vector = index.search("", top=3, vector=unit(1, 0, 0))  # no words: the vector's ranking alone
    assert [hit.chunk.anchor for hit in by_vector] == ["fees", "opening-hours", "parking"]


def test_without_a_query_vector_the_score_is_bm25() -> None:
    plain = KnowledgeIndex.build(chunks())
    dense = KnowledgeIndex.build(chunks(), vectors=vectors_by_topic())
    assert not plain.dense
    assert [(h.chunk.id, h.score) for h in plain.search("permit charge")] == [
        (h.chunk.id, h.score) for h in dense.search("permit charge")
    ]


def test_removing_a_source_removes_its_vectors() -> None:
    faq = chunk_qa([("Can I pay by card?", "Yes, at the desk.")], source_id="faq")
    index = KnowledgeIndex.build([*chunks(), *faq], vectors=[*vectors_by_topic(), unit(1, 0, 0)])
    assert index.search("", top=1, vector=unit(1, 0, 0))[0].chunk.source_id in ("faq", "town")
    index.remove("town")
    assert [hit.chunk.source_id for hit in index.search("", top=5, vector=unit(0, 0, 1))] == ["faq"]
    index.remove("faq")
    assert not index.dense and index.search("", top=5, vector=unit(0, 0, 1)) == []


def test_vectors_must_match_the_chunks() -> None:
    with pytest.raises(ValueError, match="2 vectors for 3 chunks"):
        KnowledgeIndex.build(chunks(), vectors=vectors_by_topic()[:2])
    index = KnowledgeIndex.build(chunks(), vectors=vectors_by_topic())
    with pytest.raises(ValueError, match="dimensions"):
        index.search("fees", vector=np.ones(5, np.float32))


async def test_build_embeds_once_then_reads_the_cache() -> None:
    store = MemoryVectorStore()
    embedder = TopicEmbedder()
    index, complete = await build_index(chunks(), embedder, VectorCache(store), budget=10)
    assert complete and index.dense
    assert embedder.calls == [[embedding_text(chunk) for chunk in chunks()]]
    assert {key for _, key in store.data} == {text_key(embedding_text(chunk)) for chunk in chunks()}

    # A fresh worker (empty memory) with the same store: no embedding call, every vector read back.
    again = TopicEmbedder()
    index, complete = await build_index(chunks(), again, VectorCache(store), budget=None)
    assert complete and index.dense and again.calls == []
    hits = await search_index(index, "What is the price?", 1, again, timeout=1)
    assert hits[0].chunk.anchor == "fees" and again.calls == [["What is the price?"]]

    # One paragraph edited: only its text is embedded.
    edited = chunk_markdown(CORPUS.replace("nine to five", "eight to six"), source_id="town")
    index, complete = await build_index(edited, again, VectorCache(store), budget=10)
    assert complete and again.calls[1:] == [[embedding_text(edited[1])]]


async def test_missing_vectors_leave_bm25_and_keep_what_was_done() -> None:
    store = MemoryVectorStore()
    cache = VectorCache(store)
    down = TopicEmbedder(fail=True)
    index, complete = await build_index(chunks(), down, cache, budget=None)  # nothing cached: BM25 at once
    assert not complete and not index.dense and down.calls == []
    index, complete = await build_index(chunks(), down, cache, budget=10)  # the embedder fails
    assert not complete and not index.dense and len(down.calls) == 1
    slow = TopicEmbedder(delay=5)
    index, complete = await build_index(chunks(), slow, cache, budget=0.2)  # past the budget
    assert not complete and not index.dense
    index, complete = await build_index(chunks(), TopicEmbedder(), cache, budget=10)
    assert complete and index.dense


async def test_a_question_falls_back_to_words_when_its_vector_cannot_be_had() -> None:
    index = KnowledgeIndex.build(chunks(), vectors=vectors_by_topic())
    for embedder in (TopicEmbedder(fail=True), TopicEmbedder(delay=5)):
        hits = await search_index(index, "permit charge", 3, embedder, timeout=0.2)
        assert [hit.chunk.anchor for hit in hits] == ["fees"]  # BM25's answer, in time
    foreign = TopicEmbedder()
    hits = await search_index(index, "zzz permit", 3, foreign, timeout=1)
    assert [hit.chunk.anchor for hit in hits] == ["fees"] and foreign.calls == []  # not asked at all
