"""Repositories over Azure Table and Blob storage, and the cached clients they share."""

from shared.storage.clients import get_blob_service, get_table_service, table_client
from shared.storage.errors import StorageUnavailable, collect, storage_call

__all__ = ["StorageUnavailable", "collect", "get_blob_service", "get_table_service", "storage_call", "table_client"]
