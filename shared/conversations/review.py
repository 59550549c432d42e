"""What agents' decisions on an approval card do to a session, as one pure function (no I/O).

``decide_card(session, command, now)`` mirrors :func:`shared.conversations.machine.decide` for the
card commands, and the caller commits what it returns through the same path:

==============  =========================================  ==========================
command         the card is the session's pending card     any other card id
==============  =========================================  ==========================
SendCard        the bot's message (edited or not) is sent  refused 409 card-resolved
DismissCard     the card is dropped, nothing is sent       refused 409 card-resolved
RedraftCard     ask the bot again (nothing written yet)    refused 409 card-resolved
CardRedrafted   a new card replaces it (tell-AI: the       refused 409 card-resolved
                instruction is kept on the session)
AutoSendCard    sent as it is (``auto-after``)             unchanged
==============  =========================================  ==========================

Two agents acting on one card both decide on the same header; the first commit wins and the
other's commit fails its ETag, decides again, and finds the card resolved: 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.conversations.card import AUTO_SENT, DISMISSED, EDITED, SENT, TOLD, Card
from shared.conversations.machine import BotAnswer, Decision, Outcome, _Draft
from shared.conversations.models import OPEN, Session

MAX_INSTRUCTIONS = 20  # told instructions kept per conversation (the oldest go first)
_AUDIT_TEXT = 2000  # characters of a before/after text in the audit details


@dataclass(frozen=True)
class SendCard:
    """An agent sends the card's reply; ``text`` when they edited it."""

    card_id: str
    agent_oid: str
    text: str | None = None


@dataclass(frozen=True)
class DismissCard:
    """An agent drops the card: the visitor gets no reply from it."""

    card_id: str
    agent_oid: str


@dataclass(frozen=True)
class RedraftCard:
    """An agent asks the bot to draft the card again (the first step: is it still pending?)."""

    card_id: str


@dataclass(frozen=True)
class CardRedrafted:
    """The bot's new draft for ``card_id``, following ``instruction`` (``kind``: rephrased or told)."""

    card_id: str
    agent_oid: str
    kind: str
    instruction: str
    answer: BotAnswer
    new_card_id: str
    auto_send_after: int = 0  # ``auto-after``: the new card is sent by itself after this many seconds


@dataclass(frozen=True)
class AutoSendCard:
    """The ``auto-after`` delay of ``card_id`` ran out."""

    card_id: str


CardCommand = SendCard | DismissCard | RedraftCard | CardRedrafted | AutoSendCard


def decide_card(session: Session, command: CardCommand, now: datetime) -> Decision:
    """What ``command`` does to ``session`` at ``now`` (pure: ``session`` itself is not changed)."""
    draft = _Draft(session, now)
    card = session.card if session.status == OPEN else None
    if card is None or card.card_id != command.card_id:
        if isinstance(command, AutoSendCard):
            return draft.done(Outcome.UNCHANGED)
        return draft.refuse(
            409, "card-resolved", "This card was already handled (sent, dismissed or drafted again).",
            cardId=command.card_id, pendingCardId=card.card_id if card else None,
        )  # fmt: skip
    if isinstance(command, RedraftCard):
        return draft.done(Outcome.ASK_BOT)
    if isinstance(command, DismissCard):
        draft.drop_card(DISMISSED, reason="agent")
        return draft.done(Outcome.CHANGED)
    if isinstance(command, CardRedrafted):
        return _redrafted(draft, card, command)
    if isinstance(command, SendCard):
        edited = command.text is not None and command.text != card.text
        _send(draft, card, command.text if edited and command.text is not None else card.text)
        details = {"cardId": card.card_id}
        if edited:
            details |= {"before": card.text[:_AUDIT_TEXT], "after": (command.text or "")[:_AUDIT_TEXT]}
        draft.note(f"approval:{EDITED if edited else SENT}", **details)
        return draft.done(Outcome.REPLIED)
    _send(draft, card, card.text)
    draft.note(f"approval:{AUTO_SENT}", cardId=card.card_id)
    return draft.done(Outcome.REPLIED)


def _send(draft: _Draft, card: Card, text: str) -> None:
    draft.after.card = None
    draft.add(
        "bot", text, model=card.model, provider=card.provider, prompt_tokens=card.prompt_tokens,
        completion_tokens=card.completion_tokens, cost_micro_usd=card.cost_micro_usd, latency_ms=card.latency_ms,
        citations=[dict(c) for c in card.citations],
    )  # fmt: skip


def _redrafted(draft: _Draft, card: Card, command: CardRedrafted) -> Decision:
    answer, session = command.answer, draft.after
    _count(draft, answer)
    if command.kind == TOLD:
        session.instructions = [*session.instructions, command.instruction][-MAX_INSTRUCTIONS:]
    auto_at = draft.now + timedelta(seconds=command.auto_send_after) if command.auto_send_after else None
    session.card = Card(
        command.new_card_id, draft.now, card.question, answer.text, [dict(c) for c in answer.citations],
        model=answer.model, provider=answer.provider, prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens, cost_micro_usd=answer.cost_micro_usd,
        latency_ms=answer.latency_ms, auto_send_at=auto_at, instruction=command.instruction, replaces=card.card_id,
    )  # fmt: skip
    draft.note(
        f"approval:{command.kind}", cardId=card.card_id, newCardId=command.new_card_id,
        instruction=command.instruction[:_AUDIT_TEXT], before=card.text[:_AUDIT_TEXT], after=answer.text[:_AUDIT_TEXT],
    )  # fmt: skip
    return draft.done(Outcome.CHANGED)


def _count(draft: _Draft, answer: BotAnswer) -> None:
    """A new draft is another AI call: it counts on the session and in the rollups like a turn."""
    session = draft.after
    session.prompt_tokens += answer.prompt_tokens
    session.completion_tokens += answer.completion_tokens
    session.cost_micro_usd += answer.cost_micro_usd
    day = draft.now.date().isoformat()
    if session.ai_calls_day != day:
        session.ai_calls_day, session.ai_calls_today, session.cost_today_micro_usd = day, 0, 0
    session.cost_today_micro_usd += answer.cost_micro_usd
    session.ai_calls += 1
    session.ai_calls_today += 1
    usage: dict[str, Any] = {
        "promptTokens": answer.prompt_tokens,
        "completionTokens": answer.completion_tokens,
        "costMicroUsd": answer.cost_micro_usd,
        "calls": 1,
    }
    draft.usage = usage
