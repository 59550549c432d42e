"""Knowledge retrieval quality and speed on a real FAQ, next to plain BM25 on the same data.

The data is the English edition of ``zaragoza-construction-faq`` (503 Q&As on Swedish building
rules, CC BY 4.0), read from the installed wheel through the package's own ``load()``. Each answer
is one source, chunked under its category as heading; its question is left out of the index and
asked as the query, so a hit is the answer it belongs to (or one whose question is the same text).
Plain BM25 is a bare FTS5 table of whole answers (default tokenizer) queried with every word OR-ed.
Speed: ingest (chunking + indexing) in chunks/s, query latency percentiles, and query p95 with the
corpus replicated and perturbed to 10,000 chunks. Not a pass/fail test: it prints the targets.
"""

from __future__ import annotations

import random
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.knowledge import Chunk, KnowledgeIndex, chunk_markdown  # noqa: E402

TARGET_RECALL_5 = 0.75
TARGET_MRR_10 = 0.60
SCALE_CHUNKS = 10_000
_WORD = re.compile(r"[^\W_]+")


def load_faq() -> list[dict[str, str]]:
    """The English Q&As as the package ships them (``load()`` reads data/faq-en.json)."""
    import zaragoza_construction_faq

    return [
        {key: str(item[key]) for key in ("id", "category", "q", "a")}
        for item in zaragoza_construction_faq.load(lang="en")
    ]


def source_chunks(item: dict[str, str], source_id: str | None = None, answer: str | None = None) -> list[Chunk]:
    """One answer as a source: its category (the only heading the data has) over the answer text."""
    heading = item["category"].replace("-", " ")
    return chunk_markdown(f"# {heading}\n\n{answer or item['a']}", source_id=source_id or item["id"])


def quality(items: Sequence[dict[str, str]], search: Callable[[str], list[str]]) -> tuple[float, float, float]:
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


def plain_bm25(items: Sequence[dict[str, str]]) -> Callable[[str], list[str]]:
    """A bare FTS5 table over whole answers, default tokenizer, every query word OR-ed."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE plain USING fts5(source UNINDEXED, text)")
    conn.executemany("INSERT INTO plain VALUES (?, ?)", [(item["id"], item["a"]) for item in items])

    def search(question: str) -> list[str]:
        match = " OR ".join(f'"{word}"' for word in _WORD.findall(question))
        rows = conn.execute("SELECT source FROM plain WHERE plain MATCH ? ORDER BY rank LIMIT 10", (match,))
        return [row[0] for row in rows]

    return search


def perturbed(items: Sequence[dict[str, str]], total: int, seed: int = 7) -> list[Chunk]:
    """Chunks of the corpus copied until ``total``: each copy's sentences shuffled and one word dropped."""
    rng = random.Random(seed)
    chunks: list[Chunk] = []
    copy = 0
    while len(chunks) < total:
        copy += 1
        for item in items:
            sentences = re.split(r"(?<=[.!?])\s+", item["a"])
            rng.shuffle(sentences)
            words = " ".join(sentences).split()
            del words[rng.randrange(len(words))]
            chunks += source_chunks(item, f"{item['id']}~{copy}", " ".join(words) + f" copy{copy}")
            if len(chunks) >= total:
                break
    return chunks


def percentile_ms(samples: list[float], pct: int) -> float:
    """The ``pct`` percentile of ``samples`` (seconds) in milliseconds."""
    return statistics.quantiles(samples, n=100)[pct - 1] * 1000


def timed_queries(index: KnowledgeIndex, questions: Sequence[str]) -> list[float]:
    """Seconds of one top-5 search per question (after one warm-up pass)."""
    for question in questions[:20]:
        index.search(question)
    times = []
    for question in questions:
        began = time.perf_counter()
        index.search(question, top=5)
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    """Index, ask, print."""
    items = load_faq()
    questions = [item["q"] for item in items]

    began = time.perf_counter()
    chunks = [chunk for item in items for chunk in source_chunks(item)]
    index = KnowledgeIndex.build(chunks)
    ingest = time.perf_counter() - began

    def product(question: str) -> list[str]:
        return [hit.chunk.source_id for hit in index.search(question, top=10)]

    ours, plain = quality(items, product), quality(items, plain_bm25(items))
    latency = timed_queries(index, questions)
    index.close()

    began = time.perf_counter()
    big_chunks = perturbed(items, SCALE_CHUNKS)
    big = KnowledgeIndex.build(big_chunks)
    big_ingest = time.perf_counter() - began
    big_latency = timed_queries(big, questions)
    big.close()

    print(
        f"data: {len(items)} English Q&As of zaragoza-construction-faq, {len(chunks)} chunks,"
        f" SQLite {sqlite3.sqlite_version}"
    )
    print(f"{'':32}{'recall@1':>10}{'recall@5':>10}{'MRR@10':>10}")
    print(f"{'plain BM25 (FTS5, OR of words)':32}{plain[0]:10.3f}{plain[1]:10.3f}{plain[2]:10.3f}")
    print(f"{'knowledge index':32}{ours[0]:10.3f}{ours[1]:10.3f}{ours[2]:10.3f}")
    print(f"ingest (chunk + index)          : {len(chunks) / ingest:8.0f} chunks/s over {len(chunks)} chunks, "
          f"{len(big_chunks) / big_ingest:8.0f} chunks/s over {len(big_chunks)}")  # fmt: skip
    print(f"query latency, {len(chunks):>6} chunks    : p50 {percentile_ms(latency, 50):6.2f} ms, "
          f"p95 {percentile_ms(latency, 95):6.2f} ms over {len(latency)} questions")  # fmt: skip
    print(f"query latency, {len(big_chunks):>6} chunks    : p50 {percentile_ms(big_latency, 50):6.2f} ms, "
          f"p95 {percentile_ms(big_latency, 95):6.2f} ms over {len(big_latency)} questions")  # fmt: skip
    for name, value, target in (("recall@5", ours[1], TARGET_RECALL_5), ("MRR@10", ours[2], TARGET_MRR_10)):
        print(f"target {name} >= {target:.2f}: {'met' if value >= target else 'NOT met'} ({value:.3f})")


if __name__ == "__main__":
    main()
