"""Settings of knowledge search's dense vectors (``EMBEDDINGS_*``, ``KNOWLEDGE_LOCAL_EMBEDDINGS``...).

Declared apart from :mod:`shared.knowledge.embeddings` so that building the class is paid on first
use (``Settings.embeddings``), not at every cold start. What they mean: README, "Hybrid search".
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

FLAVOURS = ("auto", "openai", "azure")


class EmbeddingSettings(BaseSettings):
    """``EMBEDDINGS_*`` and the knowledge search's own dense settings; names are app-setting names."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True, defer_build=True)

    model: str = Field(default="", validation_alias="EMBEDDINGS_MODEL")  # Azure: the deployment name
    url: str = Field(default="", validation_alias="EMBEDDINGS_URL")
    api_key: SecretStr = Field(default=SecretStr(""), validation_alias="EMBEDDINGS_API_KEY")
    api_version: str = Field(default="", validation_alias="EMBEDDINGS_API_VERSION")
    flavour: str = Field(default="auto", validation_alias="EMBEDDINGS_PROVIDER")
    dimensions: int = Field(default=0, ge=0, le=8192, validation_alias="EMBEDDINGS_DIMENSIONS")  # 0: the model's
    batch_size: int = Field(default=64, ge=1, le=2048, validation_alias="EMBEDDINGS_BATCH_SIZE")
    concurrency: int = Field(default=4, ge=1, le=32, validation_alias="EMBEDDINGS_CONCURRENCY")
    timeout_seconds: float = Field(default=30.0, gt=0, validation_alias="EMBEDDINGS_TIMEOUT_SECONDS")
    query_timeout_seconds: float = Field(default=2.0, gt=0, validation_alias="EMBEDDINGS_QUERY_TIMEOUT_SECONDS")
    max_retries: int = Field(default=2, ge=0, le=10, validation_alias="EMBEDDINGS_MAX_RETRIES")
    # One background pass over the missing chunk vectors stops after this (search runs on BM25 alone
    # meanwhile); what it computed is kept, and the next pass goes on from there.
    build_seconds: float = Field(default=60.0, gt=0, validation_alias="EMBEDDINGS_BUILD_SECONDS")
    local: bool = Field(default=False, validation_alias="KNOWLEDGE_LOCAL_EMBEDDINGS")
    local_model_dir: str = Field(default="", validation_alias="KNOWLEDGE_LOCAL_MODEL_DIR")
    # Reciprocal rank fusion's k: a result at rank r of the BM25 or the vector list adds 1 / (k + r).
    fusion_k: int = Field(default=60, ge=1, le=1000, validation_alias="KNOWLEDGE_FUSION_K")
