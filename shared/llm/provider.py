"""Choosing the bot: the ``Provider`` interface and the factory that builds one from settings."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from shared.llm.grounding import Grounding
from shared.llm.offline import OfflineProvider
from shared.llm.openai_provider import OpenAIProvider
from shared.llm.settings import PROVIDERS, LlmSettings, get_llm_settings
from shared.llm.types import BotReply, ChatTurn, ReplyStream

log = logging.getLogger(__name__)


class Provider(Protocol):
    """What the chat needs from a bot: a reply, or the same reply as a stream of deltas."""

    name: str
    model: str

    async def reply(self, history: Sequence[ChatTurn], question: str, grounding: Grounding) -> BotReply:
        """Answer ``question`` from the grounding excerpts, given the earlier turns; never raises for an LLM outage."""
        ...

    def stream(self, history: Sequence[ChatTurn], question: str, grounding: Grounding) -> ReplyStream:
        """Answer as text deltas; ``ReplyStream.reply`` is set once exhausted."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL, got {value!r}")


def make_provider(
    *,
    settings: LlmSettings,
    http_client: Any = None,
) -> Provider:
    """The provider the settings choose; ValueError when they are incomplete or malformed.

    Providers hold no knowledge: each turn passes the excerpts to answer from (:mod:`shared.llm.grounding`).
    """
    chosen = settings.provider.strip().lower()
    if chosen not in PROVIDERS:
        raise ValueError(f"LLM_PROVIDER must be one of {', '.join(PROVIDERS)}, got {settings.provider!r}")
    if settings.prices_error:
        raise ValueError(settings.prices_error)
    kind = settings.resolved_provider
    if kind == "offline":
        return OfflineProvider()
    if kind == "azure":
        if not settings.azure_openai_endpoint:
            raise ValueError("LLM_PROVIDER=azure needs AZURE_OPENAI_ENDPOINT")
        _check_url("AZURE_OPENAI_ENDPOINT", settings.azure_openai_endpoint)
        if not settings.azure_openai_api_key.get_secret_value():
            raise ValueError("LLM_PROVIDER=azure needs AZURE_OPENAI_API_KEY")
        if not settings.azure_openai_api_version:
            raise ValueError("LLM_PROVIDER=azure needs AZURE_OPENAI_API_VERSION")
        return OpenAIProvider(settings=settings, flavour="azure", http_client=http_client)
    if not (settings.openai_api_key.get_secret_value() or settings.openai_base_url):
        raise ValueError("LLM_PROVIDER=openai needs OPENAI_API_KEY, or OPENAI_BASE_URL for a keyless local server")
    if settings.openai_base_url:
        _check_url("OPENAI_BASE_URL", settings.openai_base_url)
    return OpenAIProvider(settings=settings, flavour="openai", http_client=http_client)


@functools.lru_cache(maxsize=1)
def get_provider() -> Provider:
    """The worker's bot, built once; a misconfigured LLM falls back to the offline bot (logged)."""
    settings = get_llm_settings()
    try:
        provider = make_provider(settings=settings)
    except ValueError as exc:
        # Visitors still get answers from the knowledge base while the admin fixes the setting.
        log.error("LLM settings are invalid (%s); using the offline bot", exc)
        provider = OfflineProvider()
    log.info("bot provider: %s, model %s", provider.name, provider.model)
    return provider
