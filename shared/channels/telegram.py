"""Telegram bots: ``X-Telegram-Bot-Api-Secret-Token`` checked, replies with ``sendMessage``.

The secret is the ``secret_token`` given to ``setWebhook``; Telegram sends it with every update.
https://core.telegram.org/bots/api#setwebhook
"""

from __future__ import annotations

import hmac
from typing import Any

import httpx

from shared.channels.inbound import Inbound
from shared.channels.settings import ChannelSettings
from shared.storage.channels import ChannelLink


def secret_ok(header: str, secret: str) -> bool:
    """Whether the header carries the webhook's secret token (constant-time)."""
    return bool(header) and bool(secret) and hmac.compare_digest(header.encode(), secret.encode())


def inbound(update: Any) -> Inbound | None:
    """The text message of an update (None for other updates: edits, joins, callbacks)."""
    if not isinstance(update, dict):
        return None
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") or {}
    text = str(message.get("text") or message.get("caption") or "")
    if not text:
        kinds = [k for k in ("photo", "voice", "audio", "document", "video", "sticker") if k in message]
        text = f"[{kinds[0] if kinds else 'unsupported'} message]"
    return Inbound("telegram", "telegram", str(chat.get("id") or ""), str(update.get("update_id") or ""), text)


async def send(link: ChannelLink, text: str, settings: ChannelSettings) -> str:
    """``sendMessage`` to the chat; the message id."""
    url = f"{settings.telegram_api_url.rstrip('/')}/bot{settings.telegram_bot_token}/sendMessage"
    async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
        response = await client.post(url, json={"chat_id": link.address, "text": text})
    response.raise_for_status()
    return str((response.json().get("result") or {}).get("message_id") or "")
