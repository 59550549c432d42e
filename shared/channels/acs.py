"""Azure Communication Services SMS and WhatsApp (Advanced Messaging), delivered by Event Grid.

Event Grid signs nothing, so the subscription's webhook URL carries a secret token (an HMAC of the
deployment's signing secret, shown on the dashboard's Channels view); a request without it is 401.
Both schemas are handled: the Event Grid schema's ``SubscriptionValidationEvent`` is answered
with its ``validationResponse``; the CloudEvents schema's ``OPTIONS`` abuse-protection handshake
with ``WebHook-Allowed-Origin``.
https://learn.microsoft.com/azure/event-grid/webhook-event-delivery
https://learn.microsoft.com/azure/event-grid/communication-services-advanced-messaging-events
Replies go out with ``azure-communication-sms`` and ``azure-communication-messages``, signed in
with the connection string's key or the app's managed identity; a WhatsApp message's image, audio,
video or document is downloaded with the same client (``download_media``) and kept as a blob.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from shared.channels.inbound import Attachment, Inbound
from shared.channels.media import MAX_MEDIA_BYTES
from shared.channels.settings import ChannelSettings
from shared.ops.bootstrap import ensure_bootstrapped
from shared.storage.channels import ChannelLink

VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
SMS_RECEIVED = "Microsoft.Communication.SMSReceived"
ADVANCED_RECEIVED = "Microsoft.Communication.AdvancedMessageReceived"

log = logging.getLogger(__name__)


async def webhook_token() -> str:
    """The secret the Event Grid subscription's URL carries as ``?token=``."""
    record = await ensure_bootstrapped()
    return hmac.new(record.signing_secret.encode(), b"channels:acs", hashlib.sha256).hexdigest()[:40]


async def token_ok(given: str) -> bool:
    """Whether ``given`` is the webhook token (constant-time)."""
    return bool(given) and hmac.compare_digest(given.encode(), (await webhook_token()).encode())


def events_of(body: Any) -> list[dict[str, Any]]:
    """The events of a delivery: a list (Event Grid schema, CloudEvents batch) or one CloudEvent."""
    items = body if isinstance(body, list) else [body]
    return [item for item in items if isinstance(item, dict)]


def event_type(event: dict[str, Any]) -> str:
    """``eventType`` (Event Grid schema) or ``type`` (CloudEvents)."""
    return str(event.get("eventType") or event.get("type") or "")


def validation_code(events: list[dict[str, Any]]) -> str | None:
    """The code of a subscription validation event, if the delivery is one."""
    for event in events:
        data = event.get("data")
        if event_type(event) == VALIDATION and isinstance(data, dict):
            return str(data.get("validationCode") or "")
    return None


async def inbound(event: dict[str, Any], settings: ChannelSettings) -> Inbound | None:
    """The message an SMS or WhatsApp event carries, its media downloaded (None for other events)."""
    data = event.get("data")
    if not isinstance(data, dict):
        return None
    kind = event_type(event)
    if kind == SMS_RECEIVED:
        return Inbound(
            "acs", "sms", str(data.get("from") or data.get("From") or ""),
            str(data.get("messageId") or data.get("MessageId") or event.get("id") or ""),
            str(data.get("message") or data.get("Message") or ""), local=str(data.get("to") or data.get("To") or ""),
        )  # fmt: skip
    if kind == ADVANCED_RECEIVED:
        text = str(data.get("content") or "")
        attachments: list[Attachment] = []
        media = data.get("media")
        if isinstance(media, dict):
            text = text or str(media.get("caption") or "")
            found = await _download(media, str(data.get("messageType") or ""), settings)
            if found is not None:
                attachments.append(found)
            else:
                text = text or f"[{media.get('mimeType') or 'media'} received; it could not be downloaded]"
        return Inbound(
            "acs", str(data.get("channelType") or "whatsapp").lower(), str(data.get("from") or ""),
            str(data.get("messageId") or event.get("id") or ""), text, local=str(data.get("to") or ""),
            attachments=attachments,
        )  # fmt: skip
    return None


async def _download(media: dict[str, Any], message_type: str, settings: ChannelSettings) -> Attachment | None:
    """The media of a WhatsApp message (the stream ``media.id``), at most MAX_MEDIA_BYTES; None when it fails."""
    media_id = str(media.get("id") or "")
    if not media_id:
        return None
    from azure.communication.messages.aio import NotificationMessagesClient
    from azure.core.exceptions import AzureError

    endpoint, credential = _credential(settings)
    data = bytearray()
    try:
        async with NotificationMessagesClient(endpoint, credential) as messages:
            async for chunk in await messages.download_media(media_id):
                data += chunk
                if len(data) > MAX_MEDIA_BYTES:
                    log.warning("ACS media %s is over %d bytes; not kept", media_id, MAX_MEDIA_BYTES)
                    return None
    except (AzureError, ValueError, OSError, TypeError):  # bad settings included: the message still goes in
        log.warning("ACS media %s could not be downloaded", media_id, exc_info=True)
        return None
    content_type = str(media.get("mimeType") or "application/octet-stream")
    name = str(media.get("fileName") or f"{message_type or content_type.split('/', 1)[0]}-{media_id}")
    return Attachment(name, content_type, bytes(data))


def _credential(settings: ChannelSettings) -> tuple[str, Any]:
    """(endpoint, credential): the connection string's key, else the managed identity."""
    if settings.acs_connection_string:
        from azure.core.credentials import AzureKeyCredential

        parts = dict(p.partition("=")[::2] for p in settings.acs_connection_string.split(";") if "=" in p)
        lowered = {k.lower(): v for k, v in parts.items()}
        return lowered.get("endpoint", "").rstrip("/"), AzureKeyCredential(lowered.get("accesskey", ""))
    from shared.config import get_settings
    from shared.identity.managed_identity import ManagedIdentityCredential

    return settings.acs_endpoint.rstrip("/"), ManagedIdentityCredential(get_settings().managed_identity_client_id)


async def send(link: ChannelLink, text: str, settings: ChannelSettings) -> str:
    """Send ``text`` to the contact by SMS or WhatsApp; the provider's message id."""
    endpoint, credential = _credential(settings)
    if link.channel == "sms":
        from azure.communication.sms.aio import SmsClient

        async with SmsClient(endpoint, credential) as sms:
            results = await sms.send(from_=link.local or settings.acs_phone_number, to=link.address, message=text)
        result = results[0]
        if not result.successful:
            raise RuntimeError(f"ACS SMS refused the message: {result.http_status_code}")
        return str(result.message_id or "")
    from azure.communication.messages.aio import NotificationMessagesClient
    from azure.communication.messages.models import TextNotificationContent

    async with NotificationMessagesClient(endpoint, credential) as messages:
        content = TextNotificationContent(
            channel_registration_id=settings.acs_whatsapp_channel_id, to=[link.address], content=text
        )
        sent = await messages.send(content)
    receipts = sent.receipts or []
    return str(receipts[0].message_id) if receipts else ""
