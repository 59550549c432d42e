"""Knowledge source settings (``KNOWLEDGE_*``): file and page limits, crawling, and the SSRF escape hatch.

``KNOWLEDGE_TEXT`` and ``KNOWLEDGE_FILE`` (the bot's built-in knowledge) belong to the bot's settings,
not these.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# What robots.txt files name this crawler by; the User-Agent header starts with it.
ROBOTS_AGENT = "SupportDeskBot"


class KnowledgeSettings(BaseSettings):
    """Limits of url, sitemap and file sources and of the job that indexes them."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True)

    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, validation_alias="KNOWLEDGE_MAX_FILE_BYTES")
    default_pages: int = Field(default=50, ge=1, validation_alias="KNOWLEDGE_DEFAULT_PAGES")
    max_pages: int = Field(default=500, ge=1, validation_alias="KNOWLEDGE_MAX_PAGES")
    max_page_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, validation_alias="KNOWLEDGE_MAX_PAGE_BYTES")
    fetch_timeout_seconds: float = Field(default=15.0, gt=0, validation_alias="KNOWLEDGE_FETCH_TIMEOUT_SECONDS")
    crawl_concurrency: int = Field(default=4, ge=1, le=16, validation_alias="KNOWLEDGE_CRAWL_CONCURRENCY")
    # One job stops fetching after this and keeps what it has, well inside functionTimeout (5 min).
    job_seconds: float = Field(default=200.0, gt=0, validation_alias="KNOWLEDGE_JOB_SECONDS")
    # A source queued or indexing without a sign of life for this long is retried, then failed.
    stale_seconds: float = Field(default=600.0, gt=0, validation_alias="KNOWLEDGE_STALE_SECONDS")
    user_agent: str = Field(
        default=f"{ROBOTS_AGENT}/1.0 (+knowledge base crawler)", validation_alias="KNOWLEDGE_USER_AGENT"
    )
    # Lets url and sitemap sources reach loopback and private networks; honoured only in Development.
    allow_private_urls: bool = Field(default=False, validation_alias="KNOWLEDGE_ALLOW_PRIVATE_URLS")
