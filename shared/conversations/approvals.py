"""Approval cards, the use cases: the bot's reply held for an agent, and what agents do with it.

With the runtime configuration's ``autonomy`` at ``approve`` (or ``auto-after``), a chat turn
keeps the bot's answer as the session's pending card (:mod:`shared.conversations.card`) and
answers the visitor ``202 {"status": "awaiting-approval"}``. Agents list pending cards, send one
(as drafted or edited), dismiss it, or have the bot draft it again: ``rephrase`` with an
instruction for this draft, ``tell-ai`` with one the bot follows for the rest of the conversation
(kept on the session, in every later prompt). Each decision is one commit through
:func:`shared.conversations.commit.execute` with :func:`shared.conversations.review.decide_card`,
so two agents acting on one card race on the session's ETag: one wins, the other gets 409. An
``auto-after`` card is sent by the ``approvals`` queue trigger when its delay runs out (see
:mod:`shared.storage.approvals`), only if it is still pending.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from shared.control.store import current
from shared.conversations import guards
from shared.conversations.card import REPHRASED, TOLD, new_card_id, session_of
from shared.conversations.commit import Result, execute, load_for_change, once
from shared.conversations.machine import BotAnswered, Decision, Outcome
from shared.conversations.models import Session
from shared.conversations.review import (
    AutoSendCard,
    CardCommand,
    CardRedrafted,
    DismissCard,
    RedraftCard,
    SendCard,
    decide_card,
)
from shared.errors import Problem
from shared.identity.teams import Agent
from shared.llm import ChatTurn, Grounding, get_llm_settings, get_provider, ground
from shared.storage.approvals import ApprovalRepository
from shared.web.http import decode_cursor, encode_cursor, invalid_query
from shared.web.idempotency import RequestKey

STATUSES = ("pending", "resolved")
AUTO_ACTOR = "system:auto-send"


# --- the visitor's turn -------------------------------------------------------------------------


async def holding() -> str:
    """The autonomy that holds the bot's replies for approval (``approve``, ``auto-after``), or ""."""
    config = await current()
    return "" if config.autonomy == "auto" else config.autonomy


async def hold_for(command: BotAnswered, session_id: str) -> BotAnswered:
    """The bot's answer as the runtime configuration wants it: sent, or held as an approval card."""
    config = await current()
    if config.autonomy == "auto":
        return command
    after = config.autoSendAfterSeconds if config.autonomy == "auto-after" else 0
    return dataclasses.replace(command, hold=config.autonomy, card_id=new_card_id(session_id), auto_send_after=after)


def held_response(decision: Decision) -> tuple[int, dict[str, Any]]:
    """The visitor's answer when the reply waits for an agent: 202, a reply is being prepared."""
    after, visitor = decision.after, decision.message_from("visitor")
    assert visitor is not None
    return 202, {
        "sessionId": after.session_id,
        "status": "awaiting-approval",
        "sessionStatus": after.status,
        "message": visitor.public(),
        "reply": None,
        "replyPending": True,
    }


def guided(grounding: Grounding, session: Session, *extra: str) -> Grounding:
    """The grounding with the conversation's told instructions (and ``extra``) for the prompt."""
    guidance = [*session.instructions, *extra]
    return dataclasses.replace(grounding, guidance=guidance) if guidance else grounding


# --- agents -------------------------------------------------------------------------------------


def _session_id(card_id: str) -> str:
    session_id = session_of(card_id)
    if not session_id:
        raise Problem(404, f"No approval card {card_id[:80]!r}.", kind="card-not-found")
    return session_id


async def list_cards(*, status: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Pending cards oldest first (the order they are worked in), with the conversation around each; or
    resolved cards newest first, with what became of each (``resolution``, ``message``, ``resolvedBy``)."""
    if status not in STATUSES:
        raise invalid_query("status", f"must be one of {', '.join(STATUSES)}")
    ordering = "approvals" if status == "pending" else "approvals-resolved"
    repository = ApprovalRepository()
    listing = repository.pending if status == "pending" else repository.resolved
    cards, last = await listing(limit=limit, after=decode_cursor(cursor, ordering))
    return {"approvals": cards, "nextCursor": encode_cursor(last, ordering) if last else None}


def _resolved(decision: Decision) -> tuple[int, dict[str, Any]]:
    card = decision.before.card
    assert card is not None
    note = next(
        n for n in decision.notes if n.event.startswith("approval:") and n.details.get("cardId") == card.card_id
    )
    sent, new = decision.message_from("bot"), decision.after.card
    return 200, {
        "id": card.card_id,
        "sessionId": card.session_id,
        "resolution": note.event.removeprefix("approval:"),
        "message": sent.public() if sent else None,
        "card": new.public() if new else None,
    }


async def _decide(
    agent: Agent | None, card_id: str, command: CardCommand, request: RequestKey | None
) -> dict[str, Any]:
    session_id = _session_id(card_id)
    actor = f"agent:{agent.oid}" if agent else AUTO_ACTOR

    async def run() -> Result:
        loaded = await load_for_change(session_id, request)
        return await execute(
            session_id, command, respond=_resolved, actor=actor, request=request, loaded=loaded, decider=decide_card
        )

    return (await once(session_id, request, run)).body


async def send(agent: Agent, card_id: str, text: str | None, request: RequestKey | None = None) -> dict[str, Any]:
    """Send the card's reply to the visitor (``text``: the agent's edit of it)."""
    return await _decide(agent, card_id, SendCard(card_id, agent.oid, text), request)


async def dismiss(agent: Agent, card_id: str, request: RequestKey | None = None) -> dict[str, Any]:
    """Drop the card: the visitor gets no reply from it."""
    return await _decide(agent, card_id, DismissCard(card_id, agent.oid), request)


def _history(session: Session, question: str) -> list[ChatTurn]:
    """The conversation before the card's question, as the bot saw it when it drafted the card."""
    recent = list(session.recent)
    if recent and recent[-1] == ("visitor", question):
        recent.pop()
    turns = get_llm_settings().history_turns
    recent = recent[-turns:] if turns else []
    return [ChatTurn("user" if sender == "visitor" else "assistant", text) for sender, text in recent]


async def redraft(
    agent: Agent, card_id: str, kind: str, instruction: str, request: RequestKey | None = None
) -> dict[str, Any]:
    """The bot drafts the card again following ``instruction`` (``kind``: rephrased or told); a new card."""
    from shared.conversations.visitor import _answer  # the turn's own conversion of a reply

    session_id = _session_id(card_id)
    actor = f"agent:{agent.oid}"

    async def run() -> Result:
        loaded = await load_for_change(session_id, request)
        first = await execute(
            session_id, RedraftCard(card_id), respond=_resolved, actor=actor, request=request, loaded=loaded,
            decider=decide_card,
        )  # fmt: skip
        if first.decision is None or first.decision.outcome is not Outcome.ASK_BOT:
            return first  # a replay of the stored answer
        session = first.decision.before
        assert session.card is not None
        if reason := await guards.refusal(session):
            raise Problem(
                409, "The bot can't draft now (it is turned off or a cost cap is reached); send or dismiss the card.",
                kind="bot-unavailable", reason=reason,
            )  # fmt: skip
        question = session.card.question
        told = [instruction] if kind == TOLD else []
        asked = (
            [f"An agent asked for your previous draft to be rephrased: {instruction}\nThe previous draft: "
             f"{session.card.text}"] if kind == REPHRASED else []
        )  # fmt: skip
        history = _history(session, question)
        grounding = guided(await ground(history, question), session, *told, *asked)
        reply = await get_provider().reply(history, question, grounding)
        if reply.failed:
            raise Problem(503, "The bot could not draft a new reply; the card is unchanged.", kind="bot-failed")
        answer = _answer(reply)
        guards.count_call(answer.cost_micro_usd)
        config = await current()
        after = config.autoSendAfterSeconds if config.autonomy == "auto-after" else 0
        command = CardRedrafted(card_id, agent.oid, kind, instruction, answer, new_card_id(session_id), after)
        return await execute(
            session_id, command, respond=_resolved, actor=actor, request=request, loaded=loaded, decider=decide_card
        )

    return (await once(session_id, request, run)).body


async def auto_send(card_id: str) -> bool:
    """Send an ``auto-after`` card whose delay ran out, if nobody handled it; True when it was sent."""
    session_id = session_of(card_id)
    if not session_id:
        return False
    try:
        result = await execute(
            session_id, AutoSendCard(card_id), respond=_resolved, actor=AUTO_ACTOR, marked=False, decider=decide_card
        )
    except Problem as problem:
        if problem.status == 404:  # the session is gone
            return False
        raise
    return result.decision is not None and result.decision.outcome is Outcome.REPLIED
