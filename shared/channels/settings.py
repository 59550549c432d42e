"""Channel settings: each provider's credentials and API base URL (the real one by default).

A channel whose credentials are missing is not connected: its inbound route answers 404 as an
unknown route would, so nobody learns which providers a deployment uses.
"""

from __future__ import annotations

import functools

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChannelSettings(BaseSettings):
    """Credentials and endpoints of the messaging providers (Key Vault references in Azure)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True)

    acs_endpoint: str = Field(default="", validation_alias="ACS_ENDPOINT")
    acs_connection_string: str = Field(default="", validation_alias="ACS_CONNECTION_STRING")
    acs_phone_number: str = Field(default="", validation_alias="ACS_PHONE_NUMBER")
    acs_whatsapp_channel_id: str = Field(default="", validation_alias="ACS_WHATSAPP_CHANNEL_ID")

    meta_app_secret: str = Field(default="", validation_alias="META_APP_SECRET")
    meta_verify_token: str = Field(default="", validation_alias="META_VERIFY_TOKEN")
    meta_access_token: str = Field(default="", validation_alias="META_ACCESS_TOKEN")
    meta_phone_number_id: str = Field(default="", validation_alias="META_PHONE_NUMBER_ID")
    meta_graph_url: str = Field(default="https://graph.facebook.com/v21.0", validation_alias="META_GRAPH_URL")

    twilio_account_sid: str = Field(default="", validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str = Field(default="", validation_alias="TWILIO_AUTH_TOKEN")
    twilio_api_url: str = Field(default="https://api.twilio.com", validation_alias="TWILIO_API_URL")

    telegram_bot_token: str = Field(default="", validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_secret_token: str = Field(default="", validation_alias="TELEGRAM_SECRET_TOKEN")
    telegram_api_url: str = Field(default="https://api.telegram.org", validation_alias="TELEGRAM_API_URL")

    sendgrid_api_key: str = Field(default="", validation_alias="SENDGRID_API_KEY")
    sendgrid_inbound_public_key: str = Field(default="", validation_alias="SENDGRID_INBOUND_PUBLIC_KEY")
    support_email_from: str = Field(default="", validation_alias="SUPPORT_EMAIL_FROM")
    sendgrid_api_url: str = Field(default="https://api.sendgrid.com", validation_alias="SENDGRID_API_URL")

    timeout_seconds: float = Field(default=15.0, gt=0, le=60, validation_alias="CHANNEL_TIMEOUT_SECONDS")

    def connected(self, provider: str) -> bool:
        """Whether ``provider`` (acs, whatsapp, twilio, telegram, email) has what it needs to run."""
        needs = {
            "acs": [
                self.acs_endpoint or self.acs_connection_string,
                self.acs_phone_number or self.acs_whatsapp_channel_id,
            ],
            "whatsapp": [
                self.meta_app_secret,
                self.meta_verify_token,
                self.meta_access_token,
                self.meta_phone_number_id,
            ],
            "twilio": [self.twilio_account_sid, self.twilio_auth_token],
            "telegram": [self.telegram_bot_token, self.telegram_secret_token],
            "email": [self.sendgrid_api_key, self.sendgrid_inbound_public_key, self.support_email_from],
        }
        return all(needs.get(provider, [""]))


@functools.cache
def channel_settings() -> ChannelSettings:
    """The worker's channel settings."""
    return ChannelSettings()
