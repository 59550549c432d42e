"""Knowledge retrieval quality and speed on a real FAQ, next to plain BM25 on the same data.

The data is the English edition of ``zaragoza-construction-faq`` (503 Q&As on Swedish building
rules, CC BY 4.0), read from the installed wheel through the package's own ``load()``. Each answer
is one text source (its category as heading over the answer), chunked by :func:`chunk_markdown` as
``POST /api/knowledge/sources`` does and indexed by :func:`searching.build_index`, the build every
worker runs; searches go through :func:`searching.search_index`, as the API's do. The question is
left out of the index and asked as the query, so a hit is the answer it belongs to (or one whose
question is the same text). Plain BM25 is a bare FTS5 table of whole answers (default tokenizer)
queried with every word OR-ed.

The product is measured as configured out of the box (BM25) and with ``KNOWLEDGE_LOCAL_EMBEDDINGS``
(all-MiniLM-L6-v2 vectors fused with BM25), plus the vectors alone for reference. Speed: ingest in
pages/s (chunking, embedding, indexing), a rebuild when every vector is cached, query latency
percentiles with the question's embedding included, and query p95 with the corpus replicated and
perturbed to 10,000 chunks (copies reuse their original's vector: the search costs the same).
BLAS runs on one thread, so the numbers are one core's. Not a pass/fail test: it prints the targets.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core, before numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import asyncio  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.knowledge import Chunk, KnowledgeIndex, chunk_markdown  # noqa: E402
from shared.knowledge.embeddings import Embedder, LocalEmbedder, embedding_text  # noqa: E402
from shared.knowledge.searching import build_index, search_index  # noqa: E402
from shared.knowledge.vectors import MemoryVectorStore, VectorCache  # noqa: E402

TARGET_RECALL_5 = 0.75
TARGET_MRR_10 = 0.60
TARGET_P95_MS = 50.0
SCALE_CHUNKS = 10_000
QUERY_TIMEOUT = 5.0  # generous: the bench measures the embedding, it does not race it
_WORD = re.compile(r"[^\W_]+")

Search = Callable[[str], list[str]]


def load_faq() -> list[dict[str, str]]:
    """The English Q&As as the package ships them (``load()`` reads data/faq-en.json)."""
    import zaragoza_construction_faq

    return [
        {key: str(item[key]) for key in ("id", "category", "q", "a")}
        for item in zaragoza_construction_faq.load(lang="en")
    ]


def source_text(item: dict[str, str], answer: str | None = None) -> str:
    """One answer as the text of a source: its category (the only heading the data has) over the answer."""
    return f"# {item['category'].replace('-', ' ')}\n\n{answer or item['a']}"


def source_chunks(item: dict[str, str], source_id: str | None = None, answer: str | None = None) -> list[Chunk]:
    """The chunks of one answer as a text source (what adding the source stores)."""
    return chunk_markdown(source_text(item, answer), source_id=source_id or item["id"])


def quality(items: Sequence[dict[str, str]], search: Search) -> tuple[float, float, float]:
    """(recall@1, recall@5, MRR@10) of ``search`` (question -> source ids, best first)."""
    same_question: dict[str, set[str]] = {}
    for item in items:
        same_question.setdefault(item["q"], set()).add(item["id"])
    r1 = r5 = mrr = 0.0
    for item in items:
        wanted = same_question[item["q"]]
        found = search(item["q"])[:10]
        ranks = [rank for rank, source in enumerate(found, 1) if source in wanted]
        r1 += bool(ranks and ranks[0] == 1)
        r5 += bool(ranks and ranks[0] <= 5)
        mrr += 1 / ranks[0] if ranks else 0.0
    return r1 / len(items), r5 / len(items), mrr / len(items)


def plain_bm25(items: Sequence[dict[str, str]]) -> Search:
    """A bare FTS5 table over whole answers, default tokenizer, every query word OR-ed."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE plain USING fts5(source UNINDEXED, text)")
    conn.executemany("INSERT INTO plain VALUES (?, ?)", [(item["id"], item["a"]) for item in items])

    def search(question: str) -> list[str]:
        match = " OR ".join(f'"{word}"' for word in _WORD.findall(question))
        rows = conn.execute("SELECT source FROM plain WHERE plain MATCH ? ORDER BY rank LIMIT 10", (match,))
        return [row[0] for row in rows]

    return search


def perturbed(items: Sequence[dict[str, str]], total: int, seed: int = 7) -> list[tuple[int, Chunk]]:
    """(original item index, chunk) copied until ``total``: each copy's sentences shuffled, one word dropped."""
    rng = random.Random(seed)
    chunks: list[tuple[int, Chunk]] = []
    copy = 0
    while len(chunks) < total:
        copy += 1
        for index, item in enumerate(items):
            sentences = re.split(r"(?<=[.!?])\s+", item["a"])
            rng.shuffle(sentences)
            words = " ".join(sentences).split()
            del words[rng.randrange(len(words))]
            answer = " ".join(words) + f" copy{copy}"
            chunks += [(index, chunk) for chunk in source_chunks(item, f"{item['id']}~{copy}", answer)]
            if len(chunks) >= total:
                break
    return chunks


def percentile_ms(samples: list[float], pct: int) -> float:
    """The ``pct`` percentile of ``samples`` (seconds) in milliseconds."""
    return statistics.quantiles(samples, n=100)[pct - 1] * 1000


class Product:
    """The product's index of some chunks and its search, run on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, index: KnowledgeIndex, embedder: Embedder | None) -> None:
        self.loop, self.index, self.embedder = loop, index, embedder

    def hits(self, question: str, top: int = 10) -> list[Any]:
        """The product's search, as the API runs it."""
        search = search_index(self.index, question, top, self.embedder, timeout=QUERY_TIMEOUT)
        return self.loop.run_until_complete(search)

    def sources(self, question: str) -> list[str]:
        """Source ids of the top 10, best first."""
        return [hit.chunk.source_id for hit in self.hits(question)]

    def timed(self, questions: Sequence[str]) -> tuple[list[float], list[float]]:
        """Seconds of one top-5 search per question, wall clock and CPU (after a warm-up pass of 20).

        The CPU time (of every thread of this process) is what the search costs one core even when
        other work shares the machine; the wall clock is what a caller waits here and now.
        """
        for question in questions[:20]:
            self.hits(question, 5)
        wall, cpu = [], []
        for question in questions:
            began, began_cpu = time.perf_counter(), time.process_time()
            self.hits(question, 5)
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
        return wall, cpu


def main() -> None:
    """Index, ask, print."""
    loop = asyncio.new_event_loop()
    items = load_faq()
    questions = [item["q"] for item in items]

    def ingest(embedder: Embedder | None, cache: VectorCache) -> tuple[Product, list[Chunk], tuple[float, float]]:
        """Chunk every answer and build the index; (wall, CPU) seconds it took."""
        began, began_cpu = time.perf_counter(), time.process_time()
        chunks = [chunk for item in items for chunk in source_chunks(item)]
        index, complete = loop.run_until_complete(build_index(chunks, embedder, cache, budget=3600))
        assert complete, "every chunk has its vector"
        return Product(loop, index, embedder), chunks, (time.perf_counter() - began, time.process_time() - began_cpu)

    bm25, chunks, bm25_ingest = ingest(None, VectorCache(None))
    local = LocalEmbedder()
    store = MemoryVectorStore()
    hybrid, _, hybrid_ingest = ingest(local, VectorCache(store))
    _, _, rebuild = ingest(local, VectorCache(store))  # a fresh worker: every vector from the store

    def vectors_alone(question: str) -> list[str]:
        vector = loop.run_until_complete(local.embed([question]))[0]
        return [hit.chunk.source_id for hit in hybrid.index.search("", 10, vector)]  # no words: one ranking

    rows = [
        ("plain BM25 (FTS5, OR of words)", quality(items, plain_bm25(items))),
        ("product, BM25 (default)", quality(items, bm25.sources)),
        ("product, BM25 + MiniLM (RRF)", quality(items, hybrid.sources)),
        ("MiniLM vectors alone", quality(items, vectors_alone)),
    ]
    latency = {"BM25": bm25.timed(questions), "BM25 + MiniLM": hybrid.timed(questions)}

    scaled = perturbed(items, SCALE_CHUNKS)
    big_chunks = [chunk for _, chunk in scaled]
    began = time.perf_counter()
    big = KnowledgeIndex.build(big_chunks)
    big_build = time.perf_counter() - began
    originals = loop.run_until_complete(VectorCache(store).lookup(local, [embedding_text(c) for c in chunks]))
    assert originals is not None
    first_chunk = {chunk.source_id: row for row, chunk in reversed(list(enumerate(chunks)))}
    big_vectors = [originals[first_chunk[items[index]["id"]]] for index, _ in scaled]
    big_dense = KnowledgeIndex.build(big_chunks, vectors=big_vectors)
    big_latency = {
        "BM25": Product(loop, big, None).timed(questions),
        "BM25 + MiniLM": Product(loop, big_dense, local).timed(questions),
    }
    loop.run_until_complete(local.aclose())
    loop.close()

    print(f"data: {len(items)} English Q&As of zaragoza-construction-faq as {len(items)} text sources,"
          f" {len(chunks)} chunks; SQLite {sqlite3.sqlite_version}; one BLAS thread")  # fmt: skip
    print(f"{'':34}{'recall@1':>10}{'recall@5':>10}{'MRR@10':>10}")
    for name, (r1, r5, mrr) in rows:
        print(f"{name:34}{r1:10.3f}{r5:10.3f}{mrr:10.3f}")
    pages = len(items)

    def rate(name: str, took: tuple[float, float], note: str = "") -> None:
        wall, cpu = took
        print(f"{name:34}: {pages / wall:8.0f} pages/s ({wall * 1000:7.0f} ms; CPU {cpu * 1000:7.0f} ms){note}")

    rate("ingest, BM25", bm25_ingest)
    rate("ingest, BM25 + MiniLM", hybrid_ingest, f" embedding {len(chunks)} chunks")
    rate("rebuild, every vector cached", rebuild)
    print(f"{'build of ' + str(len(big_chunks)) + ' chunks, BM25':34}: {big_build * 1000:8.0f} ms")
    print("query latency over the 503 questions: wall clock (CPU time)")
    for size, measured in ((len(chunks), latency), (len(big_chunks), big_latency)):
        for name, (wall, cpu) in measured.items():
            middle, tail = (f"{percentile_ms(wall, n):6.2f} ms ({percentile_ms(cpu, n):6.2f})" for n in (50, 95))
            print(f"  {size:>6} chunks, {name:14}: p50 {middle}, p95 {tail}")
    best = rows[2][1]
    big_wall, big_cpu = big_latency["BM25 + MiniLM"]
    p95, p95_cpu = percentile_ms(big_wall, 95), percentile_ms(big_cpu, 95)
    for name, value, target, met in (
        ("recall@5", best[1], f">= {TARGET_RECALL_5:.2f}", best[1] >= TARGET_RECALL_5),
        ("MRR@10", best[2], f">= {TARGET_MRR_10:.2f}", best[2] >= TARGET_MRR_10),
        (f"p95 at {len(big_chunks)} chunks, wall (ms)", p95, f"<= {TARGET_P95_MS:.0f}", p95 <= TARGET_P95_MS),
        (f"p95 at {len(big_chunks)} chunks, CPU (ms)", p95_cpu, f"<= {TARGET_P95_MS:.0f}", p95_cpu <= TARGET_P95_MS),
    ):
        print(f"target {name} {target} with MiniLM: {'met' if met else 'NOT met'} ({value:.3f})")


if __name__ == "__main__":
    main()
