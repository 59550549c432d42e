"""Twilio SMS and WhatsApp: ``X-Twilio-Signature`` checked with the ``twilio`` package, replies by its REST API.

The signature is an HMAC-SHA1 of the URL Twilio called plus the sorted POST parameters, so it
is checked against the public URL (``https://<PUBLIC_HOST>/api/channels/twilio`` when the host is
known: behind Azure's front end the worker may see another scheme or host).
https://www.twilio.com/docs/usage/security#validating-requests
"""

from __future__ import annotations

import httpx

from shared.channels.inbound import Attachment, Inbound
from shared.channels.settings import ChannelSettings
from shared.storage.channels import ChannelLink

_WHATSAPP = "whatsapp:"


def signature_ok(url: str, params: dict[str, str], signature: str, auth_token: str) -> bool:
    """Whether ``signature`` is Twilio's for this URL and these form parameters."""
    from twilio.request_validator import RequestValidator

    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, params, signature))


async def inbound(params: dict[str, str], settings: ChannelSettings) -> Inbound:
    """The message of an incoming-message webhook (``MessageSid``, ``From``, ``To``, ``Body``, media)."""
    sender, ours = params.get("From", ""), params.get("To", "")
    channel = "whatsapp" if sender.startswith(_WHATSAPP) else "sms"
    attachments: list[Attachment] = []
    count = int(params.get("NumMedia") or 0) if (params.get("NumMedia") or "0").isdigit() else 0
    async with httpx.AsyncClient(
        timeout=settings.timeout_seconds, auth=(settings.twilio_account_sid, settings.twilio_auth_token),
        follow_redirects=True,
    ) as client:  # fmt: skip
        for index in range(min(count, 10)):
            url, mime = params.get(f"MediaUrl{index}", ""), params.get(f"MediaContentType{index}", "")
            if not url.startswith(settings.twilio_api_url.rstrip("/") + "/"):
                continue  # only Twilio's own media URLs are fetched
            try:
                response = await client.get(url)
                response.raise_for_status()
            except httpx.HTTPError:
                continue
            attachments.append(Attachment(f"media{index}", mime, response.content))
    return Inbound("twilio", channel, sender, params.get("MessageSid") or params.get("SmsSid") or "",
                   params.get("Body", ""), local=ours, attachments=attachments)  # fmt: skip


async def send(link: ChannelLink, text: str, settings: ChannelSettings) -> str:
    """Send by the Messages API from the number the contact wrote to; the message's SID."""
    sid = settings.twilio_account_sid
    url = f"{settings.twilio_api_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
    async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
        response = await client.post(
            url, data={"To": link.address, "From": link.local, "Body": text}, auth=(sid, settings.twilio_auth_token)
        )
    response.raise_for_status()
    return str(response.json().get("sid") or "")
