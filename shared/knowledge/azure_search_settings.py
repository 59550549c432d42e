"""Which knowledge backend searches the chunks, and how to reach Azure AI Search when it is that one.

``KNOWLEDGE_BACKEND=local`` (the default) keeps the per-worker SQLite BM25 index;
``azure-search`` sends chunks to an Azure AI Search index (:mod:`shared.knowledge.azure_search`).
Without ``AZURE_SEARCH_API_KEY`` the app signs in with its managed identity (``AZURE_CLIENT_ID``
picks a user-assigned one), which needs the roles "Search Index Data Contributor" (documents) and
"Search Service Contributor" (creating the index) on the search service.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

BACKENDS = ("local", "azure-search")


class AzureSearchSettings(BaseSettings):
    """``KNOWLEDGE_BACKEND`` and the ``AZURE_SEARCH_*`` settings; names are the app-setting names."""

    # Built on first use, not on every cold start (like the other sections of Settings).
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True, defer_build=True)

    backend: str = Field(default="local", validation_alias="KNOWLEDGE_BACKEND")
    endpoint: str = Field(default="", validation_alias="AZURE_SEARCH_ENDPOINT")
    index_name: str = Field(default="knowledge", validation_alias="AZURE_SEARCH_INDEX")
    api_key: SecretStr = Field(default=SecretStr(""), validation_alias="AZURE_SEARCH_API_KEY")
    # A user-assigned managed identity's client id; empty means the system-assigned one (or, locally,
    # whatever DefaultAzureCredential finds: az login, environment variables).
    client_id: str = Field(default="", validation_alias="AZURE_CLIENT_ID")
    # The name of the semantic configuration to create in the index and rank with; empty: no semantic ranker.
    semantic_configuration: str = Field(default="", validation_alias="AZURE_SEARCH_SEMANTIC_CONFIG")
    # The embedding size of the vector field (1536 for text-embedding-3-small); 0: text only, no vectors.
    vector_dimensions: int = Field(default=0, ge=0, le=4096, validation_alias="AZURE_SEARCH_VECTOR_DIMENSIONS")
    # A search (retries included) gives up after this and raises SearchUnavailable, so a chat turn degrades.
    timeout_seconds: float = Field(default=5.0, gt=0, validation_alias="AZURE_SEARCH_TIMEOUT_SECONDS")
    max_retries: int = Field(default=2, ge=0, le=10, validation_alias="AZURE_SEARCH_MAX_RETRIES")

    @property
    def resolved_backend(self) -> str:
        """``local`` or ``azure-search`` (case and spaces ignored); anything else is returned as given."""
        return self.backend.strip().lower()

    def describe(self) -> dict[str, object]:
        """What is configured, safe to log or show (never the key)."""
        return {
            "backend": self.resolved_backend,
            "endpoint": self.endpoint,
            "index": self.index_name,
            "auth": "api-key" if self.api_key.get_secret_value() else "managed-identity",
            "semanticConfiguration": self.semantic_configuration,
            "vectorDimensions": self.vector_dimensions,
        }
