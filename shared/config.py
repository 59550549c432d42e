"""Deployment settings, read once per worker from app settings (environment variables)."""

from __future__ import annotations

import functools

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

APP_VERSION = "0.1.0"


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

    max_body_bytes: int = Field(default=64 * 1024, validation_alias="MAX_BODY_BYTES")

    @field_validator("storage_connection_string")
    @classmethod
    def _expand_development_storage(cls, value: str) -> str:
        # The Python SDKs do not all expand the shortcut, so do it once here.
        if value.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
            return DEVELOPMENT_STORAGE
        return value

    @property
    def is_development(self) -> bool:
        """True when running locally (Core Tools and devhost set Development)."""
        return self.environment.lower() == "development"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The worker's settings, read once."""
    return Settings()
