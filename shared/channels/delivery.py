"""Sending a channel session's bot and agent messages out through its channel (an outbox applier).

A commit of a channel session that adds bot, agent or system messages carries a ``channel``
outbox row; applying it sends each of those messages that hasn't gone out yet (a ``sent`` mark
per message, so a retried row sends only what is left) through the provider the contact wrote
from. A provider's failure leaves the row for the next delivery of the notice (and the repair
timer), so a reply is sent at least once. WhatsApp free text outside the contact's 24-hour window
is not sent; the message is marked ``template-required`` (agents are refused such a reply up
front, see :func:`reply_allowed`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.channels import acs, email, meta, telegram, twilio
from shared.channels.settings import ChannelSettings, channel_settings
from shared.clock import parse_iso, utcnow
from shared.errors import Problem
from shared.storage.channels import ChannelLink, ChannelRepository
from shared.storage.chats import ChatRepository, OutboxRow
from shared.storage.outbox import OutboxNotice

log = logging.getLogger(__name__)

_SENDERS = {"acs": acs.send, "whatsapp": meta.send, "twilio": twilio.send, "telegram": telegram.send,
            "email": email.send}  # fmt: skip


def window_open(link: ChannelLink, now: datetime) -> bool:
    """Whether free text may be sent: always, except WhatsApp past 24 h after the contact's last message."""
    if link.channel != "whatsapp":
        return True
    last = parse_iso(link.last_inbound_at)
    return last is not None and now - last < meta.WINDOW


async def reply_allowed(session_id: str) -> None:
    """409 ``template-required`` when an agent's free-text reply can't reach a WhatsApp contact."""
    link = await ChannelRepository().link(session_id)
    if link is not None and not window_open(link, utcnow()):
        raise Problem(
            409, "The contact last wrote over 24 hours ago: WhatsApp allows only an approved template message now.",
            kind="template-required", channel=link.channel,
        )  # fmt: skip


async def deliver(row: OutboxRow, _: OutboxNotice) -> None:
    """Send the row's messages that haven't gone out (the outbox applier of kind ``channel``)."""
    repo = ChannelRepository()
    link = await repo.link(row.session_id)
    if link is None:
        return
    settings = channel_settings()
    first, last = int(row.payload.get("first", 0)), int(row.payload.get("last", 0))
    messages = await ChatRepository().messages(row.session_id, after=first - 1, upto=last)
    for message in messages:
        if message.sender == "visitor" or await repo.was_sent(row.session_id, message.seq):
            continue
        if not window_open(link, utcnow()):
            log.warning("session %s: WhatsApp window closed, message %d not sent", row.session_id, message.seq)
            await repo.mark_sent(row.session_id, message.seq, outcome="template-required")
            continue
        provider_id = await _send(link, message.text, settings)
        await repo.mark_sent(row.session_id, message.seq, outcome="sent", provider_id=provider_id)


async def _send(link: ChannelLink, text: str, settings: ChannelSettings) -> str:
    sender = _SENDERS.get(link.provider)
    if sender is None or not settings.connected(link.provider):
        raise RuntimeError(f"channel {link.provider!r} is not connected")
    return await sender(link, text, settings)
