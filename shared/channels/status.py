"""The admin's view of the channels: connected or not, the webhook URL to paste, the last event."""

from __future__ import annotations

from typing import Any

from shared.channels import PROVIDERS, acs
from shared.channels.settings import channel_settings
from shared.storage.channels import ChannelRepository

_NAMES = {
    "acs": "Azure Communication Services (SMS, WhatsApp)",
    "whatsapp": "WhatsApp Cloud API (Meta)",
    "twilio": "Twilio (SMS, WhatsApp)",
    "telegram": "Telegram",
    "email": "Email (SendGrid Inbound Parse)",
}
_SETTINGS = {
    "acs": ["ACS_ENDPOINT or ACS_CONNECTION_STRING", "ACS_PHONE_NUMBER or ACS_WHATSAPP_CHANNEL_ID"],
    "whatsapp": ["META_APP_SECRET", "META_VERIFY_TOKEN", "META_ACCESS_TOKEN", "META_PHONE_NUMBER_ID"],
    "twilio": ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"],
    "telegram": ["TELEGRAM_BOT_TOKEN", "TELEGRAM_SECRET_TOKEN"],
    "email": ["SENDGRID_API_KEY", "SENDGRID_INBOUND_PUBLIC_KEY", "SUPPORT_EMAIL_FROM"],
}


async def overview(host: str) -> dict[str, Any]:
    """``{"channels": [{"id", "name", "connected", "webhookUrl", "settings", "lastEvent"}]}``."""
    settings = channel_settings()
    last = await ChannelRepository().last_events()
    listed = []
    for provider in PROVIDERS:
        url = f"https://{host}/api/channels/{provider}"
        if provider == "acs":
            url += f"?token={await acs.webhook_token()}"
        listed.append({
            "id": provider,
            "name": _NAMES[provider],
            "connected": settings.connected(provider),
            "webhookUrl": url,
            "settings": _SETTINGS[provider],
            "lastEvent": last.get(provider),
        })  # fmt: skip
    return {"channels": listed}
