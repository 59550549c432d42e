"""The one Settings object, read once per worker from app settings (environment variables).

Its own fields are the deployment's; the bot's, agent sign-in's and SignalR's settings are
sections of it (``settings.llm``, ``settings.auth``, ``settings.realtime``), each declared beside
the code that reads it and built on first use, so a cold start pays only for what it touches.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The well-known Azurite account; `UseDevelopmentStorage=true` expands to it.
# https://github.com/Azure/Azurite#default-storage-account
AZURITE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={AZURITE_ACCOUNT_KEY};"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)

if TYPE_CHECKING:
    from shared.control.settings import ControlSettings
    from shared.identity.teams import AuthSettings
    from shared.knowledge.azure_search_settings import AzureSearchSettings
    from shared.knowledge.embedding_settings import EmbeddingSettings
    from shared.knowledge.settings import KnowledgeSettings
    from shared.llm.settings import LlmSettings
    from shared.realtime.client import RealtimeSettings

APP_VERSION = "0.2.0"


class Settings(BaseSettings):
    """Every setting the app reads; names are the app-setting names (case-insensitive)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True)

    environment: str = Field(
        default="Production",
        validation_alias=AliasChoices("AZURE_FUNCTIONS_ENVIRONMENT", "ENVIRONMENT"),
    )
    storage_connection_string: str = Field(
        default="",
        validation_alias=AliasChoices("STORAGE_CONNECTION_STRING", "AzureWebJobsStorage"),
    )
    storage_timeout_seconds: float = Field(default=10.0, validation_alias="STORAGE_TIMEOUT_SECONDS")
    # Identity-based Storage (the Functions host's own AzureWebJobsStorage__* settings), used when no
    # connection string is set: the service URIs and the user-assigned identity's client id.
    storage_blob_uri: str = Field(default="", validation_alias="AzureWebJobsStorage__blobServiceUri")
    storage_queue_uri: str = Field(default="", validation_alias="AzureWebJobsStorage__queueServiceUri")
    storage_table_uri: str = Field(default="", validation_alias="AzureWebJobsStorage__tableServiceUri")
    storage_client_id: str = Field(default="", validation_alias="AzureWebJobsStorage__clientId")
    # This app's managed identity: a user-assigned identity's client id; empty for the system-assigned one.
    managed_identity_client_id: str = Field(default="", validation_alias="AZURE_CLIENT_ID")
    admin_key: str = Field(default="", validation_alias="ADMIN_KEY")
    admin_key_file: str = Field(default=".admin-key", validation_alias="ADMIN_KEY_FILE")
    deployment_id: str = Field(default="", validation_alias="DEPLOYMENT_ID")
    marketplace_subscription_id: str = Field(default="", validation_alias="MARKETPLACE_SUBSCRIPTION_ID")
    app_version: str = Field(default=APP_VERSION, validation_alias="APP_VERSION")

    plan_id: str = Field(default="start", validation_alias="PLAN_ID")
    plans_url: str = Field(default="", validation_alias="PLANS_URL")
    plans_cache_seconds: float = Field(default=300.0, validation_alias="PLANS_CACHE_SECONDS")
    plans_timeout_seconds: float = Field(default=3.0, validation_alias="PLANS_TIMEOUT_SECONDS")
    upgrade_url: str = Field(
        default="https://portal.azure.com/#view/HubsExtension/BrowseResource/resourceType/Microsoft.SaaS%2Fresources",
        validation_alias="UPGRADE_URL",
    )

    # The host name agents and Teams reach this app at; Azure sets WEBSITE_HOSTNAME.
    public_host: str = Field(default="", validation_alias=AliasChoices("PUBLIC_HOST", "WEBSITE_HOSTNAME"))
    teams_app_name: str = Field(default="Support Desk", max_length=30, validation_alias="TEAMS_APP_NAME")

    max_body_bytes: int = Field(default=64 * 1024, validation_alias="MAX_BODY_BYTES")

    # Visitor chat
    allowed_origins: str = Field(default="", validation_alias="ALLOWED_ORIGINS")
    visitor_token_ttl_seconds: int = Field(default=24 * 3600, ge=60, validation_alias="VISITOR_TOKEN_TTL_SECONDS")
    visitor_token_renew_days: int = Field(default=30, ge=0, validation_alias="VISITOR_TOKEN_RENEW_DAYS")
    widget_sessions_per_minute: int = Field(default=20, ge=1, validation_alias="WIDGET_SESSIONS_PER_MINUTE")
    chat_messages_per_minute: int = Field(default=30, ge=1, validation_alias="CHAT_MESSAGES_PER_MINUTE")
    widget_title: str = Field(default="Chat with us", validation_alias="WIDGET_TITLE")
    widget_greeting: str = Field(default="Hi! How can we help you today?", validation_alias="WIDGET_GREETING")
    widget_color: str = Field(default="#2563eb", validation_alias="WIDGET_COLOR")

    # Cost guard: past a cap the bot hands off instead of calling the LLM.
    bot_enabled: bool = Field(default=True, validation_alias="BOT_ENABLED")
    max_ai_calls_per_session_day: int = Field(default=50, ge=0, validation_alias="MAX_AI_CALLS_PER_SESSION_DAY")
    max_ai_calls_per_day: int = Field(default=2000, ge=0, validation_alias="MAX_AI_CALLS_PER_DAY")

    # Marketplace metering (https://learn.microsoft.com/azure/marketplace/marketplace-metering-service-apis)
    metering_url: str = Field(
        default="https://marketplaceapi.microsoft.com", validation_alias="MARKETPLACE_METERING_URL"
    )
    metering_resource_id: str = Field(default="", validation_alias="MARKETPLACE_RESOURCE_ID")
    metering_client_id: str = Field(default="", validation_alias="MARKETPLACE_CLIENT_ID")
    metering_client_secret: str = Field(default="", validation_alias="MARKETPLACE_CLIENT_SECRET")
    metering_tenant_id: str = Field(default="", validation_alias="MARKETPLACE_TENANT_ID")
    metering_authority_host: str = Field(
        default="https://login.microsoftonline.com", validation_alias="MARKETPLACE_AUTHORITY_HOST"
    )
    metering_timeout_seconds: float = Field(default=10, validation_alias="MARKETPLACE_TIMEOUT_SECONDS")
    # managed-app (resourceUri = the managed resource group's managedBy), saas, or none; empty picks saas
    # when a SaaS subscription or resource id is set, none otherwise.
    marketplace_offer: str = Field(default="", validation_alias="MARKETPLACE_OFFER")
    # Where this deployment lives, for the managed-app lookup (the template sets them).
    azure_subscription_id: str = Field(default="", validation_alias="AZURE_SUBSCRIPTION_ID")
    azure_resource_group: str = Field(
        default="", validation_alias=AliasChoices("AZURE_RESOURCE_GROUP", "WEBSITE_RESOURCE_GROUP")
    )
    arm_endpoint: str = Field(default="https://management.azure.com/", validation_alias="ARM_ENDPOINT")

    # Listener timeouts
    human_wait_minutes: float = Field(default=15, gt=0, validation_alias="HUMAN_WAIT_MINUTES")
    idle_close_minutes: float = Field(default=24 * 60, gt=0, validation_alias="IDLE_CLOSE_MINUTES")

    # The outbox: the repair timer re-enqueues rows older than this, and forgets a session's
    # marker once it has no rows left and is older than any request can run (functionTimeout).
    outbox_repair_after_seconds: float = Field(default=60, ge=0, validation_alias="OUTBOX_REPAIR_AFTER_SECONDS")
    outbox_forget_after_seconds: float = Field(default=600, ge=0, validation_alias="OUTBOX_FORGET_AFTER_SECONDS")

    # The Teams app's privacy statement and terms of use: this app's /api/privacy and /api/terms unless set.
    privacy_url: str = Field(default="", validation_alias="PRIVACY_URL")
    terms_url: str = Field(default="", validation_alias="TERMS_URL")

    @field_validator("storage_connection_string")
    @classmethod
    def _expand_development_storage(cls, value: str) -> str:
        # The Python SDKs do not all expand the shortcut, so do it once here.
        if value.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
            return DEVELOPMENT_STORAGE
        return value

    @property
    def origins(self) -> list[str]:
        """Website origins allowed to open widget sessions (``*`` only in Development)."""
        values = [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]
        if "*" in values and not self.is_development:
            values.remove("*")
        return values

    @functools.cached_property
    def llm(self) -> LlmSettings:
        """The bot's settings (``LLM_*``, ``OPENAI_*``, ``AZURE_OPENAI_*``, ``KNOWLEDGE_*``)."""
        from shared.llm.settings import LlmSettings

        return LlmSettings()

    @functools.cached_property
    def embeddings(self) -> EmbeddingSettings:
        """Dense vectors for knowledge search (``EMBEDDINGS_*``, ``KNOWLEDGE_LOCAL_EMBEDDINGS``...)."""
        from shared.knowledge.embedding_settings import EmbeddingSettings

        return EmbeddingSettings()

    @functools.cached_property
    def auth(self) -> AuthSettings:
        """Agent sign-in settings (``AAD_*``)."""
        from shared.identity.teams import AuthSettings

        return AuthSettings()

    @functools.cached_property
    def knowledge(self) -> KnowledgeSettings:
        """Knowledge source limits and crawling (``KNOWLEDGE_MAX_*``, ``KNOWLEDGE_ALLOW_PRIVATE_URLS``...)."""
        from shared.knowledge.settings import KnowledgeSettings

        return KnowledgeSettings()

    @functools.cached_property
    def azure_search(self) -> AzureSearchSettings:
        """The knowledge backend and Azure AI Search's settings (``KNOWLEDGE_BACKEND``, ``AZURE_SEARCH_*``)."""
        from shared.knowledge.azure_search_settings import AzureSearchSettings

        return AzureSearchSettings()

    @functools.cached_property
    def allow_private_urls(self) -> bool:
        """Whether url sources may reach private networks: the setting, and only in Development."""
        return self.is_development and self.knowledge.allow_private_urls

    @functools.cached_property
    def realtime(self) -> RealtimeSettings:
        """SignalR Service settings (``SIGNALR_*``)."""
        from shared.realtime.client import RealtimeSettings

        return RealtimeSettings()

    @functools.cached_property
    def control(self) -> ControlSettings:
        """Defaults of the runtime configuration and the audit log's retention (``shared.control``)."""
        from shared.control.settings import ControlSettings

        return ControlSettings()

    @property
    def is_development(self) -> bool:
        """True when running locally (Core Tools and devhost set Development)."""
        return self.environment.lower() == "development"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The worker's settings, read once."""
    return Settings()
