"""Telegram bots: ``X-Telegram-Bot-Api-Secret-Token`` checked, replies with ``sendMessage``.

The secret is the ``secret_token`` given to ``setWebhook``; Telegram sends it with every update.
https://core.telegram.org/bots/api#setwebhook
Photos and voice or audio messages are downloaded with ``getFile`` and the file URL it names
(bots may download up to 20 MB): https://core.telegram.org/bots/api#getfile
"""

from __future__ import annotations

import hmac
from typing import Any

import httpx

from shared.channels.inbound import Attachment, Inbound
from shared.channels.settings import ChannelSettings
from shared.storage.channels import ChannelLink


def secret_ok(header: str, secret: str) -> bool:
    """Whether the header carries the webhook's secret token (constant-time)."""
    return bool(header) and bool(secret) and hmac.compare_digest(header.encode(), secret.encode())


MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # the Bot API's download limit


async def inbound(update: Any, settings: ChannelSettings) -> Inbound | None:
    """The message of an update, its photo or voice downloaded (None for edits, joins, callbacks)."""
    if not isinstance(update, dict):
        return None
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") or {}
    text = str(message.get("text") or message.get("caption") or "")
    attachment = await _media(message, settings)
    if not text and attachment is None:
        kinds = [k for k in ("photo", "voice", "audio", "document", "video", "sticker") if k in message]
        text = f"[{kinds[0] if kinds else 'unsupported'} message]"
    attachments = [attachment] if attachment is not None else []
    return Inbound("telegram", "telegram", str(chat.get("id") or ""), str(update.get("update_id") or ""), text,
                   attachments=attachments)  # fmt: skip


def _file_of(message: dict[str, Any]) -> tuple[dict[str, Any], str, str] | None:
    """``(file, name, content type)`` of the message's photo (its largest size), voice or audio."""
    photos = [p for p in message.get("photo") or [] if isinstance(p, dict)]
    if photos:  # sizes come smallest first
        return photos[-1], "photo.jpg", "image/jpeg"
    for kind, default in (("voice", "audio/ogg"), ("audio", "audio/mpeg")):
        found = message.get(kind)
        if isinstance(found, dict):
            return found, str(found.get("file_name") or kind), str(found.get("mime_type") or default)
    return None


async def _media(message: dict[str, Any], settings: ChannelSettings) -> Attachment | None:
    """The message's photo, voice or audio (None when it has none, it is too big or the download fails)."""
    found = _file_of(message)
    if found is None or not found[0].get("file_id") or int(found[0].get("file_size") or 0) > MAX_DOWNLOAD_BYTES:
        return None
    file, name, content_type = found
    base = settings.telegram_api_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
            described = await client.post(
                f"{base}/bot{settings.telegram_bot_token}/getFile", json={"file_id": file["file_id"]}
            )
            described.raise_for_status()
            path = str((described.json().get("result") or {}).get("file_path") or "")
            if not path:
                return None
            data = await client.get(f"{base}/file/bot{settings.telegram_bot_token}/{path}")
            data.raise_for_status()
    except (httpx.HTTPError, ValueError):
        return None
    if name in ("photo.jpg", "voice", "audio") and "." in path:
        name = f"{name.split('.')[0]}.{path.rsplit('.', 1)[1]}"
    return Attachment(name, content_type, data.content[:MAX_DOWNLOAD_BYTES])


async def send(link: ChannelLink, text: str, settings: ChannelSettings) -> str:
    """``sendMessage`` to the chat; the message id."""
    url = f"{settings.telegram_api_url.rstrip('/')}/bot{settings.telegram_bot_token}/sendMessage"
    async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
        response = await client.post(url, json={"chat_id": link.address, "text": text})
    response.raise_for_status()
    return str((response.json().get("result") or {}).get("message_id") or "")
