"""The knowledge base's retrieval core: documents cut into chunks, and a BM25 index to search them.

Pure chunking (:mod:`shared.knowledge.chunking`) and a SQLite FTS5 index
(:mod:`shared.knowledge.retrieval`) that can live in memory or in a file; wiring to sources and
the chat comes on top of these.
"""

from shared.knowledge.chunking import Chunk, chunk_id, chunk_markdown, chunk_qa, estimate_tokens, slugify
from shared.knowledge.retrieval import Hit, KnowledgeIndex, query_words

__all__ = [
    "Chunk",
    "Hit",
    "KnowledgeIndex",
    "chunk_id",
    "chunk_markdown",
    "chunk_qa",
    "estimate_tokens",
    "query_words",
    "slugify",
]
