"""Chunk vectors cached by content hash: unchanged text never costs a second embedding call.

A vector is keyed by its embedder's ``space`` and the SHA-256 of the exact text embedded, so a
chunk that moves, a source that is synced again unchanged, or two sources with one paragraph all
reuse it. Three layers: this worker's memory, a durable :class:`VectorStore` (the
``knowledgevectors`` table in production, :class:`MemoryVectorStore` in the bench and unit tests),
then the embedder for what neither has; what it computes is written to both.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from shared.knowledge.embeddings import Array, Embedder

log = logging.getLogger(__name__)


def text_key(text: str) -> str:
    """The cache key of a text: its SHA-256 in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorStore(Protocol):
    """Durable vectors by (space, text key)."""

    async def get_many(self, space: str, keys: Sequence[str]) -> dict[str, Array]:
        """The stored vectors among ``keys`` (missing ones are simply absent)."""
        ...

    async def put_many(self, space: str, vectors: Mapping[str, Array]) -> None:
        """Store ``vectors`` (key -> vector), replacing any with the same key."""
        ...


class MemoryVectorStore:
    """A VectorStore in a dict, counting what it is asked (for the bench and tests)."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Array] = {}
        self.reads = self.writes = 0

    async def get_many(self, space: str, keys: Sequence[str]) -> dict[str, Array]:
        """The stored vectors among ``keys``."""
        self.reads += 1
        return {key: self.data[(space, key)] for key in keys if (space, key) in self.data}

    async def put_many(self, space: str, vectors: Mapping[str, Array]) -> None:
        """Store ``vectors``."""
        self.writes += 1
        self.data.update({(space, key): vector for key, vector in vectors.items()})


class VectorCache:
    """This worker's vectors in memory over a durable store; ``vectors`` fills in what is missing."""

    def __init__(self, store: VectorStore | None) -> None:
        self._store = store
        self._memory: dict[tuple[str, str], Array] = {}

    async def _known(self, space: str, keys: Sequence[str]) -> dict[str, Array]:
        """The vectors of ``keys`` in memory or in the store (an unreadable store has none)."""
        found = {key: self._memory[(space, key)] for key in keys if (space, key) in self._memory}
        missing = list(dict.fromkeys(key for key in keys if key not in found))
        if missing and self._store is not None:
            try:
                found.update(await self._store.get_many(space, missing))
            except Exception as exc:  # an outage of the cache is not an outage of search
                log.warning("reading cached vectors failed (%s)", type(exc).__name__)
        self._memory.update(((space, key), vector) for key, vector in found.items())
        return found

    async def lookup(self, embedder: Embedder, texts: Sequence[str]) -> Array | None:
        """One vector per text if every one is cached (memory, then the store); None if any is not."""
        keys = [text_key(text) for text in texts]
        found = await self._known(embedder.space, keys)
        return _stack(found, keys) if all(key in found for key in keys) else None

    async def vectors(self, embedder: Embedder, texts: Sequence[str], *, budget: float) -> Array | None:
        """One vector per text, embedding what is not cached; None when not all could be had within
        ``budget`` seconds.

        Whatever was computed before the budget ran out or the embedder failed stays cached, so the
        next call starts from there. The worker's memory then keeps only the vectors of ``texts``:
        the knowledge base as it now is.
        """
        deadline = time.monotonic() + budget
        space = embedder.space
        keys = [text_key(text) for text in texts]
        found = await self._known(space, keys)
        pending = dict.fromkeys(key for key in keys if key not in found)
        by_key = dict(zip(keys, texts, strict=True))
        complete = await self._embed(embedder, [(key, by_key[key]) for key in pending], found, deadline)
        self._memory = {(space, key): found[key] for key in keys if key in found}
        return _stack(found, keys) if complete else None

    async def _embed(
        self, embedder: Embedder, pending: Sequence[tuple[str, str]], found: dict[str, Array], deadline: float
    ) -> bool:
        """Embed ``pending`` (key, text) into ``found`` and the store; False if it could not finish in time."""
        step = 256  # texts per embedder call: progress is saved this often
        for start in range(0, len(pending), step):
            part = pending[start : start + step]
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                async with asyncio.timeout(left):
                    rows = await embedder.embed([text for _, text in part])
            except Exception as exc:  # TimeoutError included: search goes on with BM25 alone
                log.warning("embedding %d chunks failed (%s); searching by words only for now", len(part),
                            type(exc).__name__)  # fmt: skip
                return False
            computed = {key: row for (key, _), row in zip(part, rows, strict=True)}
            found.update(computed)
            await self._save(embedder.space, computed)
        return True

    async def _save(self, space: str, computed: dict[str, Any]) -> None:
        if self._store is None:
            return
        try:
            await self._store.put_many(space, computed)
        except Exception as exc:  # the vectors are still used; only the next worker pays for them again
            log.warning("caching %d vectors failed (%s)", len(computed), type(exc).__name__)


def _stack(found: Mapping[str, Array], keys: Sequence[str]) -> Array:
    import numpy as np

    return np.vstack([found[key] for key in keys]) if keys else np.zeros((0, 0), np.float32)
