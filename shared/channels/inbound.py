"""A message from a channel becomes a visitor turn of the channel's session.

The contact's live session is found (or a new one made) by provider and address, or for email by
the thread's ``In-Reply-To``/``References``; then the same visitor turn a widget message takes runs
on it (bot, knowledge, handoff, approvals), with an Idempotency-Key made from the provider's
message id, so a provider's retry stores nothing twice even when two deliveries race (the key's
replay record is written in the turn's own transaction). The bot's answer, and later the agent's,
go out through the channel from the outbox (:mod:`shared.channels.delivery`).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field

from shared.channels import media, media_text
from shared.clock import iso, utcnow
from shared.conversations import visitor
from shared.conversations.commit import create_session
from shared.conversations.models import CLOSED, Session
from shared.storage.channels import ChannelLink, ChannelRepository
from shared.storage.chats import ChatRepository
from shared.web.idempotency import RequestKey

log = logging.getLogger(__name__)

MAX_TEXT = 4000  # a visitor message's limit


@dataclass
class Attachment:
    """A file that came with a message (an image, audio, an email attachment)."""

    name: str
    content_type: str
    data: bytes


@dataclass
class Inbound:
    """One message from a contact, as any provider gives it."""

    provider: str  # acs | whatsapp | twilio | telegram | email
    channel: str  # sms | whatsapp | telegram | email
    address: str  # the contact: phone number, chat id, email address
    message_id: str  # the provider's id: deliveries of the same message share it
    text: str
    local: str = ""  # our number or address it was sent to
    subject: str = ""
    references: list[str] = field(default_factory=list)  # email: In-Reply-To and References
    attachments: list[Attachment] = field(default_factory=list)


async def receive(message: Inbound) -> str:
    """Take ``message`` in; the session id it went to ('' for a duplicate already taken)."""
    repo = ChannelRepository()
    if message.message_id and await repo.seen(message.provider, message.message_id):
        return ""
    session_id, link = await _session_for(message, repo)
    lines: list[str] = []
    for attachment in message.attachments:
        # The bot reads an image's description or a voice message's transcript; agents also get the link.
        lines += [await media.store(session_id, attachment), await media_text.as_text(session_id, attachment)]
    text = "\n".join(part for part in [message.text.strip(), *lines] if part)[:MAX_TEXT] or "(empty message)"
    link.last_inbound_at = iso(utcnow())
    await repo.save_link(link)
    digest = hashlib.sha256(f"{message.provider}\n{message.message_id}".encode()).hexdigest()
    key = RequestKey(f"channel-{digest[:48]}", digest)
    await visitor.post_message(session_id, text, key)
    await repo.record_event(message.provider, message.message_id, kind=message.channel, session_id=session_id)
    return session_id


async def _session_for(message: Inbound, repo: ChannelRepository) -> tuple[str, ChannelLink]:
    """The contact's live session with its link, or a new session."""
    etag = ""  # the contact row as read: a new session claims the contact only if it is unchanged
    if message.provider == "email":
        found = await repo.mail_session(message.references) if message.references else ""
    else:
        found, etag = await repo.contact_session(message.provider, message.address)
    if found:
        session = await ChatRepository().get(found)
        link = await repo.link(found)
        if session is not None and session.status != CLOSED and link is not None:
            if message.provider == "email":
                link.references = [*link.references, message.message_id] if message.message_id else link.references
                await repo.remember_mail(message.message_id, found)
            return found, link
    session = Session(
        session_id=str(uuid.uuid4()), origin=f"{message.channel}:{message.provider}",
        channel=message.channel, address=message.address[:200],
    )  # fmt: skip
    link = ChannelLink(
        session.session_id, message.provider, message.channel, message.address, local=message.local,
        subject=message.subject[:300], references=[message.message_id] if message.provider == "email" else [],
    )  # fmt: skip
    await repo.save_link(link)
    await create_session(session, actor="visitor")
    if message.provider == "email":
        await repo.remember_mail(message.message_id, session.session_id)
        return session.session_id, link
    owner = await repo.claim_contact(message.provider, message.address, session.session_id, etag)
    if owner != session.session_id:  # the contact's first messages raced and another opened its session
        winner = await repo.link(owner)
        if winner is not None:  # ours stays empty: the idle timer closes it without a word
            return owner, winner
    return session.session_id, link
