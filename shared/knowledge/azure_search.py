"""Knowledge chunks in Azure AI Search: the scale-out backend chosen by ``KNOWLEDGE_BACKEND=azure-search``.

The same jobs as the local BM25 index, for knowledge bases too large to rebuild in every worker:

* :meth:`AzureSearchBackend.upsert_source` sends a source's chunks (merge-or-upload, at most 1,000
  documents and 8 MB per request: the service refuses more than 1,000 or 16 MB), then deletes the
  source's documents that are no longer among them, so a re-sync converges whatever was there.
* :meth:`~AzureSearchBackend.search` is one hybrid query: text (BM25) plus, when a query vector is
  given, a vector query, fused by the service (RRF), reranked by the semantic ranker when a semantic
  configuration is set; only enabled sources' documents. Scores come from the service: compare them
  within one result list only (the semantic ranker's are 0 to 4).
* Failures the caller should ride out (5xx, 429, timeouts, no network) raise :class:`SearchUnavailable`;
  refused credentials :class:`SearchAccessDenied`; anything else :class:`SearchBackendError`. The key
  is never logged or put in a message.

The service indexes in near real time (a document is searchable about a second after it is sent);
pass a source's known ``chunk_ids`` to :meth:`~AzureSearchBackend.remove_source` and
:meth:`~AzureSearchBackend.set_enabled` so a change right after an upload still reaches every chunk.
The SDK is imported when a backend is made, not with this module: it costs ~250 ms of cold start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.knowledge.azure_search_index import (
    KEY,
    SELECT,
    VECTOR_FIELD,
    from_document,
    index_definition,
    odata_string,
    search_text,
    to_document,
)
from shared.knowledge.chunking import Chunk
from shared.knowledge.retrieval import Hit

if TYPE_CHECKING:
    from azure.core.credentials import AzureKeyCredential
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.search.documents.aio import SearchClient
    from azure.search.documents.indexes.aio import SearchIndexClient

    from shared.knowledge.azure_search_settings import AzureSearchSettings

log = logging.getLogger(__name__)

MAX_BATCH_DOCUMENTS = 1000  # the service's limit per indexing request
MAX_BATCH_BYTES = 8 * 1024 * 1024  # half the service's 16 MB request limit: room for JSON escaping
PAGE = 1000  # ids listed per query when finding a source's documents
VECTOR_CANDIDATES = 50  # nearest neighbours fused with the text results (what the semantic ranker reranks)
WRITE_TIMEOUT_SECONDS = 60.0  # one indexing request of up to 1,000 documents
_RETRYABLE = {408, 429, 500, 502, 503, 504}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SearchBackendError(Exception):
    """Azure AI Search refused or failed a request; the message says why (never with the key)."""


class SearchUnavailable(SearchBackendError):
    """The service is down, throttling or too slow: worth retrying later; a search should degrade."""


class SearchAccessDenied(SearchBackendError):
    """The service refused the credentials (a wrong key, or a managed identity without its role)."""


@dataclass(frozen=True, slots=True)
class SourcedHit(Hit):
    """A hit with its source's title, as stored with the chunk (so citing it needs no other read)."""

    title: str = ""


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What :meth:`AzureSearchBackend.upsert_source` did."""

    indexed: int  # documents sent (new or merged)
    removed: int  # documents of the source deleted because they are no longer among its chunks


def _batches(documents: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """``documents`` in requests the service accepts: at most 1,000 documents and about 8 MB each."""
    batch: list[dict[str, Any]] = []
    size = 0
    for document in documents:
        length = len(json.dumps(document, ensure_ascii=False).encode("utf-8"))
        if batch and (len(batch) >= MAX_BATCH_DOCUMENTS or size + length > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(document)
        size += length
    if batch:
        yield batch


def _translate(exc: BaseException, what: str) -> SearchBackendError:
    """The error to raise for an SDK or transport failure of ``what`` (e.g. "search")."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, TimeoutError):
        return SearchUnavailable(f"Azure AI Search did not answer the {what} in time")
    if isinstance(exc, ServiceRequestError | ServiceResponseError | ConnectionError):
        return SearchUnavailable(f"Azure AI Search could not be reached for the {what} ({type(exc).__name__})")
    status = getattr(exc, "status_code", None)
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        return SearchAccessDenied(
            f"Azure AI Search refused the credentials for the {what} ({status or 'no token'}): check "
            "AZURE_SEARCH_API_KEY (an admin key), or give the app's managed identity the roles "
            "Search Index Data Contributor and Search Service Contributor"
        )
    if not isinstance(exc, HttpResponseError):
        return SearchBackendError(f"Azure AI Search failed the {what} ({type(exc).__name__})")
    error = getattr(exc, "error", None)
    message = str(getattr(error, "message", "") or exc.reason or "")
    answer = f"Azure AI Search answered {status} to the {what}" + (f": {message}" if message else "")
    return SearchUnavailable(answer) if status in _RETRYABLE else SearchBackendError(answer)


class AzureSearchBackend:
    """Chunks of many sources in one Azure AI Search index (see the module docstring).

    ``credential`` is an ``AzureKeyCredential`` or an async token credential (managed identity);
    the backend closes a token credential in :meth:`aclose` when ``owns_credential``.
    ``client_options`` go to the SDK clients as they are (e.g. ``connection_verify``).
    """

    def __init__(
        self,
        endpoint: str,
        index_name: str,
        credential: AzureKeyCredential | AsyncTokenCredential,
        *,
        vector_dimensions: int = 0,
        semantic_configuration: str = "",
        timeout_seconds: float = 5.0,
        max_retries: int = 2,
        owns_credential: bool = False,
        **client_options: Any,
    ) -> None:
        self.index_name = index_name
        self.vector_dimensions = vector_dimensions
        self.semantic_configuration = semantic_configuration
        self._endpoint = endpoint
        self._credential = credential
        self._owns_credential = owns_credential
        self._timeout = timeout_seconds
        self._options: dict[str, Any] = {
            "retry_total": max_retries,
            "retry_backoff_factor": 0.4,
            "retry_backoff_max": 4,
            "connection_timeout": min(timeout_seconds, 10.0),
            "read_timeout": WRITE_TIMEOUT_SECONDS,
            **client_options,
        }
        self._search: SearchClient | None = None
        self._indexes: SearchIndexClient | None = None
        self._index_ready = False

    def _documents(self) -> SearchClient:
        if self._search is None:
            from azure.search.documents.aio import SearchClient

            self._search = SearchClient(self._endpoint, self.index_name, self._credential, **self._options)
        return self._search

    async def ensure_index(self) -> None:
        """Create the index, or update it to this definition (the service refuses changes to an
        existing field, e.g. other vector dimensions: use a new ``AZURE_SEARCH_INDEX`` then)."""
        from azure.search.documents.indexes.aio import SearchIndexClient

        if self._indexes is None:
            self._indexes = SearchIndexClient(self._endpoint, self._credential, **self._options)
        definition = index_definition(
            self.index_name,
            vector_dimensions=self.vector_dimensions,
            semantic_configuration=self.semantic_configuration,
        )
        try:
            await self._indexes.create_or_update_index(definition)
        except Exception as exc:
            raise _translate(exc, "index definition") from exc
        self._index_ready = True

    async def upsert_source(
        self,
        source_id: str,
        title: str,
        enabled: bool,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float] | None] | None = None,
    ) -> SyncResult:
        """Make the index hold exactly ``chunks`` for ``source_id``: send them, delete the rest.

        ``vectors[i]`` is the embedding of ``chunks[i]``; None (or no ``vectors``) keeps the vector
        already indexed for that chunk id (ids are content hashes, so unchanged text needs no new
        embedding). Creates or updates the index on a backend's first write; an identity allowed to
        write documents but not index definitions goes on with the index as it is. ValueError on bad
        input, before any request.
        """
        self._check_write(source_id, chunks, vectors)
        if not self._index_ready:
            try:
                await self.ensure_index()
            except SearchAccessDenied:
                # Least privilege: the index was made by whoever may (e.g. the deployment); the
                # upload below fails just as clearly if this identity may not write documents.
                log.warning("Not allowed to update the definition of index %s; using it as it is", self.index_name)
                self._index_ready = True
        documents = [
            to_document(chunk, title=title, enabled=enabled, vector=vectors[i] if vectors else None)
            for i, chunk in enumerate(chunks)
        ]
        for batch in _batches(documents):
            await self._index("merge_or_upload_documents", batch, "upload")
        current = {chunk.id for chunk in chunks}
        stale = [key for key in await self._ids_of(source_id) if key not in current]
        for start in range(0, len(stale), MAX_BATCH_DOCUMENTS):
            await self._index("delete_documents", [{"id": key} for key in stale[start : start + MAX_BATCH_DOCUMENTS]])
        return SyncResult(indexed=len(documents), removed=len(stale))

    async def set_enabled(self, source_id: str, enabled: bool, chunk_ids: Iterable[str] = ()) -> int:
        """Show or hide a source's chunks in searches (those listed and ``chunk_ids``); returns how
        many documents were changed (a known id the index does not hold is skipped)."""
        keys = await self._keys(source_id, chunk_ids)
        changed = 0
        for start in range(0, len(keys), MAX_BATCH_DOCUMENTS):
            batch = [{"id": key, "enabled": enabled} for key in keys[start : start + MAX_BATCH_DOCUMENTS]]
            changed += await self._index("merge_documents", batch, missing_ok=True)
        return changed

    async def remove_source(self, source_id: str, chunk_ids: Iterable[str] = ()) -> int:
        """Delete every document of ``source_id`` (those listed and ``chunk_ids``); returns how many
        ids were deleted (the service counts an id it did not hold as deleted too)."""
        keys = await self._keys(source_id, chunk_ids)
        for start in range(0, len(keys), MAX_BATCH_DOCUMENTS):
            await self._index("delete_documents", [{"id": key} for key in keys[start : start + MAX_BATCH_DOCUMENTS]])
        return len(keys)

    async def search(self, query: str, top: int = 5, vector: Sequence[float] | None = None) -> list[SourcedHit]:
        """The ``top`` best chunks of enabled sources for ``query`` (and ``vector``), best first.

        [] when there is nothing to look for or the index does not exist yet. Raises
        :class:`SearchUnavailable` when the service fails or takes longer than the timeout.
        """
        text = search_text(query)
        if top <= 0 or (not text and vector is None):
            return []
        options: dict[str, Any] = {"filter": "enabled eq true", "select": SELECT, "top": min(top, 1000)}
        if vector is not None:
            from azure.search.documents.models import VectorizedQuery

            self._check_vector(vector, "vector")
            k = max(top, VECTOR_CANDIDATES)
            options["vector_queries"] = [
                VectorizedQuery(vector=[float(v) for v in vector], k_nearest_neighbors=k, fields=VECTOR_FIELD)
            ]
        if self.semantic_configuration and text:
            # "partial": when the ranker fails or is over its quota, the fused results still come back.
            options.update(
                query_type="semantic",
                semantic_configuration_name=self.semantic_configuration,
                semantic_error_mode="partial",
            )
        try:
            async with asyncio.timeout(self._timeout):
                results = await self._documents().search(text or None, read_timeout=self._timeout, **options)
                documents = [document async for document in results]
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                log.warning("Azure AI Search index %s does not exist yet: no knowledge to search", self.index_name)
                return []
            raise _translate(exc, "search") from exc
        hits = []
        for doc in documents:
            reranked = doc.get("@search.reranker_score")  # the semantic ranker's, when it ran
            score = float(doc["@search.score"] if reranked is None else reranked)
            hits.append(SourcedHit(from_document(doc), score, str(doc.get("title") or "")))
        return hits

    async def aclose(self) -> None:
        """Close the SDK clients (and the credential when this backend made it)."""
        for client in (self._search, self._indexes):
            if client is not None:
                await client.close()
        self._search = self._indexes = None
        if self._owns_credential and hasattr(self._credential, "close"):
            await self._credential.close()

    # -- internals ----------------------------------------------------------------------------

    def _check_vector(self, vector: Sequence[float], name: str) -> None:
        if not self.vector_dimensions:
            raise ValueError(f"{name}: vectors are not configured (set AZURE_SEARCH_VECTOR_DIMENSIONS)")
        if len(vector) != self.vector_dimensions:
            raise ValueError(f"{name} has {len(vector)} dimensions; the index has {self.vector_dimensions}")

    def _check_write(
        self, source_id: str, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float] | None] | None
    ) -> None:
        if not source_id:
            raise ValueError("source_id is required")
        if vectors is not None and len(vectors) != len(chunks):
            raise ValueError(f"{len(vectors)} vectors for {len(chunks)} chunks")
        for i, chunk in enumerate(chunks):
            if chunk.source_id != source_id:
                raise ValueError(f"chunk {chunk.id} belongs to source {chunk.source_id!r}, not {source_id!r}")
            if not KEY.fullmatch(chunk.id):
                raise ValueError(f"chunk id {chunk.id!r} is not a valid Azure AI Search key (letters, digits, _ - =)")
            if vectors is not None and vectors[i] is not None:
                self._check_vector(vectors[i] or (), f"vectors[{i}]")

    async def _index(
        self, method: str, batch: list[dict[str, Any]], what: str = "", *, missing_ok: bool = False
    ) -> int:
        """Send one indexing request; raise if it or any document in it failed; returns how many
        documents succeeded (with ``missing_ok``, a merge of a document not there is skipped)."""
        what = what or method.split("_")[0]
        try:
            results = await getattr(self._documents(), method)(batch)
        except Exception as exc:
            raise _translate(exc, f"{what} of {len(batch)} documents") from exc
        failed = [r for r in results if not r.succeeded and not (missing_ok and r.status_code == 404)]
        if not failed:
            return sum(1 for r in results if r.succeeded)
        detail = "; ".join(f"{r.key}: {r.status_code} {r.error_message or ''}".strip() for r in failed[:3])
        message = f"Azure AI Search failed the {what} of {len(failed)} of {len(batch)} documents ({detail})"
        if all(r.status_code in _RETRYABLE for r in failed):
            raise SearchUnavailable(message)
        raise SearchBackendError(message)

    async def _ids_of(self, source_id: str) -> list[str]:
        """Every document id of ``source_id`` in the index, page by page in id order."""
        ids: list[str] = []
        source = f"sourceId eq {odata_string(source_id)}"
        while True:
            where = source if not ids else f"{source} and id gt {odata_string(ids[-1])}"
            try:
                results = await self._documents().search(
                    None, filter=where, select=["id"], order_by=["id asc"], top=PAGE
                )
                page = [str(document["id"]) async for document in results]
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404:
                    return ids  # no index yet: nothing of this source is in it
                raise _translate(exc, "listing of a source's documents") from exc
            ids.extend(page)
            if len(page) < PAGE:
                return ids

    async def _keys(self, source_id: str, chunk_ids: Iterable[str]) -> list[str]:
        listed = await self._ids_of(source_id)
        known = [key for key in chunk_ids if KEY.fullmatch(key)]
        return list(dict.fromkeys([*listed, *known]))


def make_azure_search_backend(*, settings: AzureSearchSettings, **client_options: Any) -> AzureSearchBackend:
    """The backend ``settings`` describe; ValueError naming the setting when they can't work.

    With ``AZURE_SEARCH_API_KEY`` the key signs requests; without it the app's managed identity
    does (``AZURE_CLIENT_ID`` picks a user-assigned one; locally DefaultAzureCredential also tries
    environment variables and ``az login``).
    """
    endpoint = settings.endpoint.strip().rstrip("/")
    parts = urlsplit(endpoint)
    if not endpoint or parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("AZURE_SEARCH_ENDPOINT must be the service URL, like https://<name>.search.windows.net")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ValueError("AZURE_SEARCH_ENDPOINT must use https (credentials would travel in clear text)")
    if not settings.index_name.strip():
        raise ValueError("AZURE_SEARCH_INDEX must name the index")
    key = settings.api_key.get_secret_value().strip()
    credential: AzureKeyCredential | AsyncTokenCredential
    if key:
        from azure.core.credentials import AzureKeyCredential

        credential = AzureKeyCredential(key)
    elif settings.client_id:
        from azure.identity.aio import ManagedIdentityCredential

        credential = ManagedIdentityCredential(client_id=settings.client_id)
    else:
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return AzureSearchBackend(
        endpoint,
        settings.index_name.strip(),
        credential,
        vector_dimensions=settings.vector_dimensions,
        semantic_configuration=settings.semantic_configuration.strip(),
        timeout_seconds=settings.timeout_seconds,
        max_retries=settings.max_retries,
        owns_credential=not key,
        **client_options,
    )
