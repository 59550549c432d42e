"""Email through SendGrid: Inbound Parse in (signed), the v3 mail send API out, threaded by Message-ID.

Inbound Parse posts each email as ``multipart/form-data`` (``headers``, ``from``, ``to``,
``subject``, ``text``, ``html``, ``attachment-info`` and ``attachment1..N``). With a security
policy whose signature is enabled, SendGrid signs the request as its signed Event Webhook does:
``X-Twilio-Email-Event-Webhook-Signature`` is a base64 ECDSA (P-256, SHA-256) signature of
``X-Twilio-Email-Event-Webhook-Timestamp`` followed by the raw body, checked with the policy's
public key (``SENDGRID_INBOUND_PUBLIC_KEY``, base64 DER as SendGrid shows it).
https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/securing-your-parse-webhooks
A reply joins the conversation its ``In-Reply-To``/``References`` name; quoted text and the
signature are cut off, attachments kept as blobs. Replies carry ``In-Reply-To``/``References``.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
import uuid
from email.parser import HeaderParser

import httpx

from shared.channels.inbound import Attachment, Inbound
from shared.channels.settings import ChannelSettings
from shared.storage.channels import ChannelLink, ChannelRepository

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# Where the new part of a reply ends: a quote header, a quoted line, a signature delimiter.
_CUT = re.compile(
    r"^(?:>|-- ?$|_{5,}|-{3,}\s*Original Message|On .{1,200}wrote:\s*$|From: .+|Sent from my |Get Outlook for )",
    re.IGNORECASE,
)
_WROTE_NEXT = re.compile(r"^On .{1,200}$", re.IGNORECASE)  # "On <date>, <name>" wrapped before "<addr> wrote:"


def signature_ok(body: bytes, signature: str, timestamp: str, public_key: str) -> bool:
    """Whether SendGrid's ECDSA signature of ``timestamp + body`` verifies with the public key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if not signature or not timestamp or not public_key:
        return False
    try:
        key = load_der_public_key(base64.b64decode(public_key))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        key.verify(base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def strip_reply(text: str) -> str:
    """The new part of an email: quoted text, quote headers and the signature cut off."""
    lines = text.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if _CUT.match(stripped) or (_WROTE_NEXT.match(stripped) and following.endswith("wrote:")):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _ids(value: str | None) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


def inbound(form: dict[str, str], files: list[tuple[str, str, bytes]]) -> Inbound:
    """The :class:`Inbound` of a parsed email (``files``: name, content type, bytes)."""
    headers = HeaderParser().parsestr(form.get("headers", ""))
    _, sender = email.utils.parseaddr(form.get("from") or str(headers.get("From") or ""))
    _, ours = email.utils.parseaddr(form.get("to") or str(headers.get("To") or ""))
    message_ids = _ids(headers.get("Message-ID") or headers.get("Message-Id"))
    references = [*_ids(headers.get("References")), *_ids(headers.get("In-Reply-To"))]
    text = form.get("text") or _html_text(form.get("html", ""))
    return Inbound(
        "email", "email", sender.lower(), message_ids[0] if message_ids else "", strip_reply(text), local=ours,
        subject=form.get("subject") or str(headers.get("Subject") or ""), references=references,
        attachments=[Attachment(name, kind, data) for name, kind, data in files],
    )  # fmt: skip


def _html_text(html: str) -> str:
    """Plain text of an HTML-only email (tags dropped, line breaks kept)."""
    import html as entities

    with_breaks = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", html)
    return entities.unescape(re.sub(r"<[^>]+>", "", with_breaks))


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else "localhost"


async def send(link: ChannelLink, text: str, settings: ChannelSettings) -> str:
    """Send by SendGrid's v3 mail send API as a reply in the thread; our Message-ID."""
    name, sender = email.utils.parseaddr(settings.support_email_from)
    message_id = f"<{uuid.uuid4().hex}@{_domain(sender)}>"
    subject = link.subject or "Your message"
    headers = {"Message-ID": message_id}
    if link.references:
        headers["In-Reply-To"] = link.references[-1]
        headers["References"] = " ".join(link.references[-20:])
    body = {
        "personalizations": [{"to": [{"email": link.address}]}],
        "from": {"email": sender, **({"name": name} if name else {})},
        "subject": subject if subject.lower().startswith("re:") else f"Re: {subject}",
        "content": [{"type": "text/plain", "value": text}],
        "headers": headers,
    }
    url = f"{settings.sendgrid_api_url.rstrip('/')}/v3/mail/send"
    async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
        response = await client.post(url, json=body, headers={"Authorization": f"Bearer {settings.sendgrid_api_key}"})
    response.raise_for_status()
    repo = ChannelRepository()
    await repo.remember_mail(message_id, link.session_id)  # the contact's reply names it in In-Reply-To
    link.references = [*link.references, message_id]
    await repo.save_link(link)
    return message_id
