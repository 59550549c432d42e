"""Storage clients, created once per worker from the connection string, or keyless from the service URIs.

With no connection string, the Functions host's identity-based settings (``AzureWebJobsStorage__blobServiceUri``,
``__queueServiceUri``, ``__tableServiceUri``, ``__clientId``) give the endpoints and the managed identity signs
in: the account can keep shared-key access off. The Azure SDKs are imported lazily: ``azure.storage.blob.aio``
alone costs ~0.7 s of cold start.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from shared.config import Settings, get_settings

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient, TableServiceClient
    from azure.storage.blob.aio import BlobServiceClient
    from azure.storage.queue.aio import QueueClient

# Fail fast: a health probe or a chat turn must not hang on a dead Storage account.
_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 2, "retry_backoff_factor": 0.2, "connection_timeout": 3}
_NOT_CONFIGURED = (
    "Set AzureWebJobsStorage (or STORAGE_CONNECTION_STRING) to a Storage account, "
    "or its AzureWebJobsStorage__*ServiceUri settings for the managed identity."
)


def _identity(settings: Settings) -> Any:
    """The managed identity the keyless clients sign in with (Storage's own client id first)."""
    from shared.identity.managed_identity import ManagedIdentityCredential

    return ManagedIdentityCredential(settings.storage_client_id or settings.managed_identity_client_id)


def make_table_service(*, settings: Settings) -> TableServiceClient:
    """Build the async Table service client; ``ValueError`` when Storage is not configured."""
    from azure.data.tables.aio import TableServiceClient

    if not settings.storage_connection_string and settings.storage_table_uri:
        return TableServiceClient(
            endpoint=settings.storage_table_uri,
            credential=_identity(settings),
            read_timeout=settings.storage_timeout_seconds,
            **_CLIENT_OPTIONS,
        )
    if not settings.storage_connection_string:
        raise ValueError(_NOT_CONFIGURED)
    return TableServiceClient.from_connection_string(
        settings.storage_connection_string,
        read_timeout=settings.storage_timeout_seconds,
        **_CLIENT_OPTIONS,
    )


def make_blob_service(*, settings: Settings) -> BlobServiceClient:
    """Build the async Blob service client; ``ValueError`` when Storage is not configured."""
    from azure.storage.blob.aio import BlobServiceClient

    if not settings.storage_connection_string and settings.storage_blob_uri:
        return BlobServiceClient(
            account_url=settings.storage_blob_uri,
            credential=_identity(settings),
            read_timeout=settings.storage_timeout_seconds,
            **_CLIENT_OPTIONS,
        )
    if not settings.storage_connection_string:
        raise ValueError(_NOT_CONFIGURED)
    return BlobServiceClient.from_connection_string(
        settings.storage_connection_string,
        read_timeout=settings.storage_timeout_seconds,
        **_CLIENT_OPTIONS,
    )


@functools.cache
def get_table_service() -> TableServiceClient:
    """The worker's Table service client."""
    return make_table_service(settings=get_settings())


@functools.cache
def get_blob_service() -> BlobServiceClient:
    """The worker's Blob service client."""
    return make_blob_service(settings=get_settings())


@functools.cache
def table_client(name: str) -> TableClient:
    """A client for one table, sharing the service client's transport."""
    return get_table_service().get_table_client(name)


def make_queue_client(name: str, *, settings: Settings) -> QueueClient:
    """Build an async client for one queue, base64-encoding messages as the Functions host expects."""
    from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
    from azure.storage.queue.aio import QueueClient

    if not settings.storage_connection_string and settings.storage_queue_uri:
        return QueueClient(
            account_url=settings.storage_queue_uri,
            queue_name=name,
            credential=_identity(settings),
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
            read_timeout=settings.storage_timeout_seconds,
            **_CLIENT_OPTIONS,
        )
    if not settings.storage_connection_string:
        raise ValueError(_NOT_CONFIGURED)
    return QueueClient.from_connection_string(
        settings.storage_connection_string,
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
        read_timeout=settings.storage_timeout_seconds,
        **_CLIENT_OPTIONS,
    )


@functools.cache
def queue_client(name: str) -> QueueClient:
    """The worker's client for one queue."""
    return make_queue_client(name, settings=get_settings())
