"""Meta's WhatsApp Cloud API, direct: the webhook's verification, its signature, messages and replies.

Setup is a ``GET`` with ``hub.mode=subscribe``, ``hub.verify_token`` and ``hub.challenge``: the
challenge is echoed when the token matches. Every ``POST`` carries ``X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the raw body with the app secret>``, compared in constant time.
https://developers.facebook.com/docs/graph-api/webhooks/getting-started
Replies go to the Graph messages endpoint. Free text is allowed only within 24 hours of the
contact's last message; outside it a template is needed (the agent is told, nothing is sent).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import httpx

from shared.channels.inbound import Attachment, Inbound
from shared.channels.settings import ChannelSettings
from shared.storage.channels import ChannelLink

WINDOW = timedelta(hours=24)
_MEDIA_TYPES = ("image", "audio", "voice", "video", "document", "sticker")


def signature_ok(body: bytes, header: str, app_secret: str) -> bool:
    """Whether ``X-Hub-Signature-256`` is the body's HMAC with the app secret."""
    given = header.strip()
    if not given.startswith("sha256=") or not app_secret:
        return False
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.encode(), expected.encode())


def challenge(params: dict[str, str], verify_token: str) -> str | None:
    """The challenge to echo for a valid subscription request (None: refuse it)."""
    token = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge", "")


def messages_of(body: Any) -> list[tuple[dict[str, Any], str]]:
    """``(message, our phone number)`` for every message in ``entry[].changes[].value.messages[]``."""
    found: list[tuple[dict[str, Any], str]] = []
    for entry in body.get("entry") or [] if isinstance(body, dict) else []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            ours = str((value.get("metadata") or {}).get("display_phone_number") or "")
            found += [(m, ours) for m in value.get("messages") or [] if isinstance(m, dict)]
    return found


async def inbound(message: dict[str, Any], ours: str, settings: ChannelSettings) -> Inbound:
    """The :class:`Inbound` of one Cloud API message (its media downloaded from the Graph API)."""
    kind = str(message.get("type") or "")
    text = ""
    attachments: list[Attachment] = []
    if kind == "text":
        text = str((message.get("text") or {}).get("body") or "")
    elif kind in _MEDIA_TYPES:
        media = message.get(kind) or {}
        text = str(media.get("caption") or "")
        attachment = await _download(str(media.get("id") or ""), str(media.get("mime_type") or ""), kind, settings)
        if attachment is not None:
            attachments.append(attachment)
        else:
            text = text or f"[{kind} received; it could not be downloaded]"
    elif kind == "interactive":
        reply = message.get("interactive") or {}
        text = str((reply.get("button_reply") or reply.get("list_reply") or {}).get("title") or "")
    elif kind == "button":
        text = str((message.get("button") or {}).get("text") or "")
    else:
        text = f"[{kind or 'unsupported'} message]"
    return Inbound("whatsapp", "whatsapp", str(message.get("from") or ""), str(message.get("id") or ""), text,
                   local=ours, attachments=attachments)  # fmt: skip


async def _download(media_id: str, mime: str, kind: str, settings: ChannelSettings) -> Attachment | None:
    """The media behind ``media_id`` (the Graph API gives a URL, fetched with the same token)."""
    if not media_id:
        return None
    auth = {"Authorization": f"Bearer {settings.meta_access_token}"}
    try:
        async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
            meta = await client.get(f"{settings.meta_graph_url.rstrip('/')}/{media_id}", headers=auth)
            meta.raise_for_status()
            url = str(meta.json().get("url") or "")
            if not url.startswith(("https://", "http://")):
                return None
            data = await client.get(url, headers=auth)
            data.raise_for_status()
    except (httpx.HTTPError, ValueError):
        return None
    return Attachment(f"{kind}-{media_id}", mime or data.headers.get("content-type", ""), data.content)


async def send(link: ChannelLink, text: str, settings: ChannelSettings) -> str:
    """A free-text reply through the Graph messages endpoint; the ``wamid`` of the message."""
    url = f"{settings.meta_graph_url.rstrip('/')}/{settings.meta_phone_number_id}/messages"
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": link.address,
            "type": "text", "text": {"preview_url": False, "body": text}}  # fmt: skip
    async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
        response = await client.post(url, json=body, headers={"Authorization": f"Bearer {settings.meta_access_token}"})
    response.raise_for_status()
    sent = response.json().get("messages") or [{}]
    return str(sent[0].get("id") or "")
