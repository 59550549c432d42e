"""LLM app settings: which provider, model and prompt, limits, prices, the knowledge text and grounding.

Strings the bot can survive without (provider name, price table) are checked by
``make_provider`` rather than at load time, so a typo in one of them never breaks loading the
settings that every chat turn reads.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

PROVIDERS = ("auto", "offline", "openai", "azure")
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"

# USD per 1,000 tokens, from the public price lists (Azure's global deployments match them).
# LLM_PRICES entries are merged over these, so a deployment only lists what it changes.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "offline": {"prompt": 0.0, "completion": 0.0},
    "gpt-4o-mini": {"prompt": 0.00015, "completion": 0.0006},
    "gpt-4o": {"prompt": 0.0025, "completion": 0.01},
    "gpt-4.1": {"prompt": 0.002, "completion": 0.008},
    "gpt-4.1-mini": {"prompt": 0.0004, "completion": 0.0016},
    "gpt-4.1-nano": {"prompt": 0.0001, "completion": 0.0004},
    "gpt-5": {"prompt": 0.00125, "completion": 0.01},
    "gpt-5-mini": {"prompt": 0.00025, "completion": 0.002},
    "gpt-5-nano": {"prompt": 0.00005, "completion": 0.0004},
    "o4-mini": {"prompt": 0.0011, "completion": 0.0044},
    "o3-mini": {"prompt": 0.0011, "completion": 0.0044},
    "gpt-4-turbo": {"prompt": 0.01, "completion": 0.03},
    "gpt-3.5-turbo": {"prompt": 0.0005, "completion": 0.0015},
    "gpt-35-turbo": {"prompt": 0.0005, "completion": 0.0015},
}

DEFAULT_SYSTEM_PROMPT = (
    "You are the support assistant on this company's website. Answer the visitor briefly, "
    "politely and in their language, using only the company knowledge given below. If the "
    "knowledge does not contain the answer, say honestly that you don't know and offer to "
    "connect them with a person from the team. Never invent prices, policies, dates or promises."
)


def parse_prices(raw: str) -> dict[str, dict[str, float]]:
    """The price table: built-in defaults with the ``LLM_PRICES`` JSON merged over; ValueError if malformed."""
    prices = {name: dict(price) for name, price in DEFAULT_PRICES.items()}
    if not raw.strip():
        return prices
    try:
        given = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"LLM_PRICES is not valid JSON: {exc}") from exc
    if not isinstance(given, dict):
        raise ValueError('LLM_PRICES must be an object like {"gpt-4o-mini": {"prompt": 0.00015, "completion": 0.0006}}')
    for model, price in given.items():
        if not isinstance(price, dict) or not {"prompt", "completion"} <= price.keys():
            raise ValueError(f"LLM_PRICES[{model!r}] must have 'prompt' and 'completion' (USD per 1K tokens)")
        values = {key: price[key] for key in ("prompt", "completion")}
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values.values()):
            raise ValueError(f"LLM_PRICES[{model!r}] prices must be non-negative numbers")
        prices[str(model).strip().lower()] = {key: float(v) for key, v in values.items()}
    return prices


class LlmSettings(BaseSettings):
    """Settings of the bot; names are the app-setting names (case-insensitive)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True)

    provider: str = Field(default="auto", validation_alias="LLM_PROVIDER")
    openai_base_url: str = Field(default="", validation_alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr = Field(default=SecretStr(""), validation_alias="OPENAI_API_KEY")
    azure_openai_endpoint: str = Field(default="", validation_alias="AZURE_OPENAI_ENDPOINT")
    azure_openai_api_key: SecretStr = Field(default=SecretStr(""), validation_alias="AZURE_OPENAI_API_KEY")
    azure_openai_api_version: str = Field(default="2024-10-21", validation_alias="AZURE_OPENAI_API_VERSION")
    azure_openai_deployment: str = Field(default="", validation_alias="AZURE_OPENAI_DEPLOYMENT")

    model: str = Field(default="gpt-4o-mini", validation_alias="LLM_MODEL")
    temperature: float = Field(default=0.3, ge=0, le=2, validation_alias="LLM_TEMPERATURE")
    # A reply is stored in one Table property (64 KiB); 4,000 tokens stay well inside it.
    max_tokens: int = Field(default=500, ge=1, le=4000, validation_alias="LLM_MAX_TOKENS")
    system_prompt: str = Field(default=DEFAULT_SYSTEM_PROMPT, validation_alias="LLM_SYSTEM_PROMPT")
    timeout_seconds: float = Field(default=20.0, gt=0, validation_alias="LLM_TIMEOUT_SECONDS")
    max_retries: int = Field(default=2, ge=0, le=10, validation_alias="LLM_MAX_RETRIES")
    # The whole turn, retries and Retry-After waits included: the SDK would honour a Retry-After
    # of up to two minutes, far longer than a visitor waits for a chat reply.
    deadline_seconds: float = Field(default=45.0, gt=0, validation_alias="LLM_DEADLINE_SECONDS")
    history_turns: int = Field(default=12, ge=0, validation_alias="LLM_HISTORY_TURNS")
    prices_json: str = Field(default="", validation_alias="LLM_PRICES")
    # Channel media for the bot: the model (Azure: deployment) that describes images, empty for the
    # chat model/deployment, and the one that transcribes voice messages.
    vision_model: str = Field(default="", validation_alias="LLM_VISION_MODEL")
    transcribe_model: str = Field(default="whisper-1", validation_alias="LLM_TRANSCRIBE_MODEL")

    knowledge_text: str = Field(default="", validation_alias="KNOWLEDGE_TEXT")
    knowledge_file: str = Field(default="", validation_alias="KNOWLEDGE_FILE")
    # Grounding (shared.llm.grounding): how many excerpts the LLM reads, and how much of a question an
    # excerpt must cover (the share of its topic words, 0-1) for the offline bot to answer from it.
    knowledge_top_chunks: int = Field(default=5, ge=1, le=20, validation_alias="KNOWLEDGE_TOP_CHUNKS")
    knowledge_min_score: float = Field(default=0.6, ge=0, le=1, validation_alias="KNOWLEDGE_MIN_SCORE")
    gaps_retention_days: int = Field(default=90, ge=1, le=3650, validation_alias="KNOWLEDGE_GAPS_RETENTION_DAYS")

    _prices: dict[str, dict[str, float]] = PrivateAttr(default_factory=dict)
    _prices_error: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _load_prices(self) -> LlmSettings:
        try:
            self._prices = parse_prices(self.prices_json)
        except ValueError as exc:
            # Keep the defaults so cost accounting goes on; make_provider reports the error.
            log.error("%s; using the built-in price table", exc)
            self._prices, self._prices_error = parse_prices(""), str(exc)
        return self

    @property
    def prices(self) -> dict[str, dict[str, float]]:
        """Model name (lower case) -> {"prompt", "completion"} in USD per 1K tokens."""
        return self._prices

    @property
    def prices_error(self) -> str:
        """Why ``LLM_PRICES`` was rejected (empty when it was fine or unset)."""
        return self._prices_error

    @property
    def resolved_provider(self) -> str:
        """The provider to use: ``auto`` becomes azure, openai or offline by which keys are set."""
        chosen = self.provider.strip().lower()
        if chosen != "auto":
            return chosen
        if self.azure_openai_endpoint and self.azure_openai_api_key.get_secret_value():
            return "azure"
        if self.openai_api_key.get_secret_value() or self.openai_base_url:
            return "openai"
        return "offline"

    def describe(self) -> dict[str, Any]:
        """What is configured, safe to log or show (no keys)."""
        return {
            "provider": self.resolved_provider,
            "model": self.model,
            "endpoint": self.azure_openai_endpoint or self.openai_base_url or "",
            "deployment": self.azure_openai_deployment,
        }


def get_llm_settings() -> LlmSettings:
    """The worker's LLM settings: the ``llm`` section of the one Settings."""
    from shared.config import get_settings

    return get_settings().llm
