"""The admin's view of the channels: connected or not, the webhook URL to paste, the last event."""

from __future__ import annotations

from typing import Any

from shared.channels import PROVIDERS, acs
from shared.channels.settings import ChannelSettings, channel_settings
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


def missing(settings: ChannelSettings, provider: str) -> list[str]:
    """The names of ``provider``'s settings that are not set (never their values).

    ACS lists the SMS number and the WhatsApp channel id each on its own: either one connects ACS, and
    the dashboard shows SMS and WhatsApp through ACS as two channels.
    """
    if provider == "acs":
        gaps = [] if settings.acs_endpoint or settings.acs_connection_string else [_SETTINGS["acs"][0]]
        gaps += [] if settings.acs_phone_number else ["ACS_PHONE_NUMBER"]
        return gaps + ([] if settings.acs_whatsapp_channel_id else ["ACS_WHATSAPP_CHANNEL_ID"])
    return [name for name in _SETTINGS[provider] if not getattr(settings, name.lower(), "")]


async def overview(host: str) -> dict[str, Any]:
    """``{"channels": [{"id", "name", "connected", "webhookUrl", "settings", "missing", "lastEvent"}]}``."""
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
            "missing": missing(settings, provider),
            "lastEvent": last.get(provider),
        })  # fmt: skip
    return {"channels": listed}
