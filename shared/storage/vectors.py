"""Cached embedding vectors in Azure Tables (data access only).

``knowledgevectors``: PartitionKey = a hash of the embedder's vector space (model and size), RowKey
= the SHA-256 of the embedded text, ``v`` = the vector as little-endian float32 bytes (a binary
property holds 64 KiB: 16,384 dimensions), ``space`` = the space's readable name. Rows are never
updated in place: one text has one vector per space.

Reading many keys scans the space's partition once (a cold worker reads the whole knowledge base);
a few keys are point reads. The table is created on first write if the deployment's bootstrap ran
before it existed.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from shared.storage.clients import get_table_service
from shared.storage.errors import collect, storage_call
from shared.storage.tables import KNOWLEDGE_VECTORS

BATCH = 100  # an entity-group transaction's limit (and ~1.2 MB at 3,072 dimensions: under its 4 MB)
SCAN_ABOVE = 64  # more keys than this: one partition scan instead of point reads
CONCURRENCY = 8


def partition(space: str) -> str:
    """The PartitionKey of a vector space (its name may hold characters keys can't)."""
    return hashlib.sha256(space.encode("utf-8")).hexdigest()[:32]


class VectorRepository:
    """``VectorStore`` over the ``knowledgevectors`` table."""

    def __init__(self, table: Any | None = None) -> None:
        self._table = table or get_table_service().get_table_client(KNOWLEDGE_VECTORS)
        self._created = False

    async def get_many(self, space: str, keys: Sequence[str]) -> dict[str, Any]:
        """The stored vectors among ``keys``, as float32 numpy arrays."""
        import numpy as np
        from azure.core.exceptions import ResourceNotFoundError

        pk = partition(space)
        wanted = set(keys)
        rows: list[Any] = []
        try:
            if len(wanted) > SCAN_ABOVE:
                query = self._table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": pk}, select=["RowKey", "v"], results_per_page=1000
                )
                rows = [row for row in await collect(query) if row["RowKey"] in wanted]
            else:
                gate = asyncio.Semaphore(CONCURRENCY)

                async def one(key: str) -> Any:
                    async with gate:
                        try:
                            return await storage_call(self._table.get_entity(pk, key, select=["RowKey", "v"]))
                        except ResourceNotFoundError:
                            return None

                rows = [row for row in await asyncio.gather(*(one(key) for key in wanted)) if row is not None]
        except ResourceNotFoundError:  # no table yet: nothing cached
            return {}
        return {str(row["RowKey"]): np.frombuffer(bytes(row["v"]), dtype="<f4") for row in rows if row.get("v")}

    async def put_many(self, space: str, vectors: Mapping[str, Any]) -> None:
        """Upsert ``vectors`` in transactions of up to 100 rows."""
        import numpy as np
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        pk = partition(space)
        rows = [
            {"PartitionKey": pk, "RowKey": key, "space": space, "v": np.asarray(vector, dtype="<f4").tobytes()}
            for key, vector in vectors.items()
        ]
        batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def write(batch: list[dict[str, Any]]) -> None:
            async with gate:
                await storage_call(self._table.submit_transaction([("upsert", row) for row in batch]))

        try:
            await asyncio.gather(*(write(batch) for batch in batches))
        except HttpResponseError as exc:
            # A transaction on a missing table fails as TableTransactionError with code TableNotFound.
            if self._created or not (
                isinstance(exc, ResourceNotFoundError) or getattr(exc, "error_code", "") == "TableNotFound"
            ):
                raise
            await self._create_table()
            await asyncio.gather(*(write(batch) for batch in batches))

    async def _create_table(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            await storage_call(get_table_service().create_table(KNOWLEDGE_VECTORS))
        except ResourceExistsError:
            pass
        self._created = True
