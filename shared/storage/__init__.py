"""Data access only: repositories over Azure Tables, Blobs and Queues, and the clients they share.

Repositories map domain models to entities and back and raise domain errors
(``StorageUnavailable``, ``ConcurrentUpdate``), never HTTP problems. Modules: ``chats`` (sessions,
messages, replays, outbox rows), ``orderings``, ``rollups``, ``seats``, ``audit``, ``outbox`` (the
queue and pending markers), ``state``, ``deployment``; ``clients``, ``errors``, ``calls`` (the
per-request call counter), ``values``, ``tables`` (every table, container and queue name).
"""

from shared.storage.clients import get_blob_service, get_table_service, table_client
from shared.storage.errors import ConcurrentUpdate, StorageUnavailable, collect, storage_call

__all__ = [
    "ConcurrentUpdate",
    "StorageUnavailable",
    "collect",
    "get_blob_service",
    "get_table_service",
    "storage_call",
    "table_client",
]
