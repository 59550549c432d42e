"""The visitor's side of a conversation: widget sessions, chat turns, asking for a person, history.

A turn is decided by the state machine: in ``open`` the bot answers from the knowledge excerpts
found for the question, citing the sources it used (the knowledge is searched and the LLM asked
between loading the session and committing, so nothing is held open meanwhile); while a person is
requested or an agent owns the session the message is stored and answered 202 with no bot reply.
Every write goes through :mod:`shared.conversations.commit`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from shared.clock import iso, utcnow
from shared.config import get_settings
from shared.control.store import current
from shared.conversations import approvals, guards, hours, streaming, threshold
from shared.conversations.commit import (
    Respond,
    Result,
    create_session,
    execute,
    load_for_change,
    load_session,
    once,
)
from shared.conversations.machine import (
    AskForPerson,
    BotAnswer,
    BotAnswered,
    CancelRequest,
    Decision,
    Outcome,
    PageVisited,
    VisitorMessage,
)
from shared.conversations.models import CLOSED, HUMAN_REQUESTED, OPEN, Session
from shared.errors import Problem
from shared.identity.visitor_tokens import issue, verify
from shared.llm import BotReply, ChatTurn, asks_for_human, cost_micro_usd, get_llm_settings, get_provider, ground
from shared.llm.grounding import Grounding
from shared.ops.bootstrap import ensure_bootstrapped
from shared.realtime import events
from shared.storage.chats import ChatRepository, Loaded
from shared.storage.orderings import SessionIndexRepository
from shared.web.idempotency import RequestKey
from shared.web.ratelimit import LocalRateLimiter

_per_session = LocalRateLimiter()
_ACTOR = "visitor"


async def _signing() -> tuple[str, str]:
    record = await ensure_bootstrapped()
    return record.signing_secret, record.deployment_id


async def open_session(origin: str, page: PageVisited | None = None) -> dict[str, Any]:
    """Start a session for a widget (on ``page``, when it said) and issue its token."""
    settings = get_settings()
    secret, issuer = await _signing()
    session = Session(session_id=str(uuid.uuid4()), origin=origin[:200])
    if page is not None:
        session.page_url, session.page_title = page.url, page.title
    session = await create_session(session, actor=_ACTOR)
    token = issue(session.session_id, secret=secret, issuer=issuer, ttl_seconds=settings.visitor_token_ttl_seconds)
    return await _session_body(session, token.token, token.expires_at.isoformat())


async def renew_session(old_token: str, session_id: str, page: PageVisited | None = None) -> dict[str, Any]:
    """A fresh token for the session a recently expired (but genuine) token was bound to.

    The widget also renews on a page load at an address it hasn't reported, so this is where the
    visitor's page is noted: a commit only when it changed (one read otherwise, as without a page).
    """
    settings = get_settings()
    secret, issuer = await _signing()
    bound = verify(old_token, secret=secret, issuer=issuer, allow_expired_days=settings.visitor_token_renew_days)
    if bound != session_id:
        raise Problem(401, "That token belongs to another session.", kind="wrong-session")
    if page is None:
        session = await load_session(session_id)
    else:
        visited = await execute(session_id, page, respond=_noted, actor=_ACTOR, marked=False)
        assert visited.session is not None
        session = visited.session
    if session.status == CLOSED:  # a closed conversation takes no more messages: start a new one
        raise Problem(409, "This conversation is closed; start a new one.", kind="session-closed")
    token = issue(session_id, secret=secret, issuer=issuer, ttl_seconds=settings.visitor_token_ttl_seconds)
    return await _session_body(session, token.token, token.expires_at.isoformat())


async def _session_body(session: Session, token: str, expires_at: str) -> dict[str, Any]:
    settings = get_settings()
    return {
        "sessionId": session.session_id,
        "token": token,
        "expiresAt": expires_at,
        "status": session.status,
        "config": {
            "title": settings.widget_title,
            "greeting": settings.widget_greeting,
            "color": settings.widget_color,
            **await hours.widget_config(),  # visitorChoice, awayMessage, away (office hours)
        },
    }


async def authenticate_visitor(token: str, session_id: str | None = None) -> str:
    """The session id the token is bound to; 401 if it is bound to a different one."""
    secret, issuer = await _signing()
    bound = verify(token, secret=secret, issuer=issuer)
    if session_id and session_id != bound:
        raise Problem(401, "This token belongs to another session.", kind="wrong-session")
    return bound


def _noted(_: Decision) -> tuple[int, dict[str, Any]]:
    return 200, {}


def _check_rate(session_id: str) -> None:
    """A flood is refused by the worker before any Storage read; the limit itself is kept in the
    session header (see ``VisitorMessage.per_minute``), where every worker sees it."""
    verdict = _per_session.hit(session_id, get_settings().chat_messages_per_minute)
    verdict.raise_if_refused("messages")


def _with_rate_headers(result: Result) -> Result:
    """``X-RateLimit-*`` for the session's message limit, on every answer."""
    limit, now = get_settings().chat_messages_per_minute, utcnow()
    used = result.session.messages_this_minute(now) if result.session else 0
    result.headers = {
        **result.headers,
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, limit - used)),
        "X-RateLimit-Reset": str(60 - now.second),
    }
    return result


# --- a chat turn ----------------------------------------------------------------------------------


def _waiting(session: Session) -> dict[str, Any] | None:
    """Where a visitor waiting for a person stands (the position is added after the commit)."""
    if session.status != HUMAN_REQUESTED:
        return None
    return {"waitingSince": iso(session.handoff_requested_at)}


def _turn_response(decision: Decision) -> tuple[int, dict[str, Any]]:
    """The body of a chat turn: 200 with the bot's reply, or 202 queued for a person."""
    after, visitor = decision.after, decision.message_from("visitor")
    assert visitor is not None
    if decision.outcome is Outcome.HELD:  # autonomy "approve": an agent sends the reply
        return approvals.held_response(decision)
    if decision.outcome is Outcome.QUEUED:
        return 202, {
            "sessionId": after.session_id,
            "status": "queued-for-agent",
            "sessionStatus": after.status,
            "agentName": after.claimed_by_name or None,
            "message": visitor.public(),
            "queue": _waiting(after),
        }
    reply = decision.message_from("bot")
    return 200, {
        "sessionId": after.session_id,
        "status": after.status,
        "message": visitor.public(),
        "reply": reply.public() if reply else None,
        "handoff": decision.handoff,
        "queue": _waiting(after),
    }


async def _visitor_command(session: Session | None, text: str) -> VisitorMessage:
    settings = get_settings()
    wants_person = asks_for_human(text)
    guard = None
    if session is not None and session.status == OPEN and not wants_person:
        guard = await guards.refusal(session, settings)
    notice = ""
    if session is not None and session.status == OPEN and (wants_person or guard):
        notice = await _away_notice()
    return VisitorMessage(
        text, wants_person=wants_person, guard=guard, per_minute=settings.chat_messages_per_minute, notice=notice
    )


async def _away_notice() -> str:
    """The bot's words for a handoff while the team is away (empty inside office hours)."""
    state = await hours.availability()
    return "" if state.open else state.message


def _bot_answered(text: str, reply: BotReply) -> BotAnswered:
    return BotAnswered(text, _answer(reply), per_minute=get_settings().chat_messages_per_minute)


def _history(session: Session) -> list[ChatTurn]:
    turns = get_llm_settings().history_turns
    recent = session.recent[-turns:] if turns else []
    return [ChatTurn("user" if sender == "visitor" else "assistant", text) for sender, text in recent]


def _answer(reply: BotReply) -> BotAnswer:
    cost = cost_micro_usd(reply.model, reply.prompt_tokens, reply.completion_tokens, get_llm_settings().prices)
    return BotAnswer(
        text=reply.text, wants_person=reply.wants_human, failed=reply.failed, model=reply.model,
        provider=reply.provider, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
        cost_micro_usd=cost, latency_ms=reply.latency_ms,
        citations=tuple(citation.public() for citation in reply.citations), gap=reply.gap,
    )  # fmt: skip


async def _with_queue_position(result: Result) -> Result:
    """Add the visitor's place in the queue to an answer that says they are waiting, and whether the
    team is away (so a visitor waiting outside office hours is always told when it is back)."""
    queue = result.body.get("queue")
    if isinstance(queue, dict) and queue.get("waitingSince"):
        position = await SessionIndexRepository().queue_position(result.body["sessionId"], queue["waitingSince"])
        result.body = {**result.body, "queue": {**queue, "position": position}}
        state = await hours.availability()
        if not state.open:
            result.body["away"] = state.public(await _left_email(result.body["sessionId"]))
    return result


async def _left_email(session_id: str) -> str:
    from shared.storage.handoffs import HandoffRepository

    record = await HandoffRepository().get(session_id)
    return record.email if record else ""


def _answering(offer: bool) -> Respond:
    """The turn's response, with a bot reply below the handoff threshold marked ``offerPerson`` (the
    widget offers a person under it). Part of the committed answer, so a replay carries it too."""

    def respond(decision: Decision) -> tuple[int, dict[str, Any]]:
        status, body = _turn_response(decision)
        if offer and status == 200 and body.get("reply"):
            body = {**body, "offerPerson": True}
        return status, body

    return respond


async def _first_step(session_id: str, text: str, request: RequestKey | None) -> tuple[Result, Loaded]:
    loaded = await load_for_change(session_id, request)
    command = await _visitor_command(loaded.session, text)
    result = await execute(session_id, command, respond=_turn_response, actor=_ACTOR, request=request, loaded=loaded)
    return result, loaded


async def post_message(session_id: str, text: str, request: RequestKey | None) -> Result:
    """One visitor message: answered by the bot (200), or stored for a person (202)."""
    _check_rate(session_id)  # before any Storage read: a flood costs no round trips

    async def run() -> Result:
        result, loaded = await _first_step(session_id, text, request)
        if not result.asks_bot:
            return result
        assert result.decision is not None
        history = _history(result.decision.before)
        grounding = approvals.guided(await ground(history, text), result.decision.before)
        reply = await _generate(result.decision.before, history, text, grounding)
        offer = threshold.apply(reply, grounding, text, await current())
        command = await approvals.hold_for(_bot_answered(text, reply), session_id)
        guards.count_call(command.answer.cost_micro_usd)
        return await execute(
            session_id, command, respond=_answering(offer), actor=_ACTOR, request=request, loaded=loaded
        )

    return _with_rate_headers(await _with_queue_position(await once(session_id, request, run)))


async def _generate(before: Session, history: list[ChatTurn], text: str, grounding: Grounding) -> BotReply:
    """The bot's reply; streamed to the visitor as ``ChatMessageDelta`` events while it is written
    (unless SignalR is off, or the reply waits for an agent's approval: that draft is for agents)."""
    provider = get_provider()
    push = None if await approvals.holding() else streaming.pusher(before)
    if push is None:
        return await provider.reply(history, text, grounding)
    started = time.perf_counter()
    reply = await streaming.streamed_reply(provider.stream(history, text, grounding), push)
    reply.latency_ms = reply.latency_ms or int((time.perf_counter() - started) * 1000)
    return reply


async def stream_message(session_id: str, text: str, request: RequestKey | None) -> AsyncIterator[dict[str, Any]]:
    """The streaming turn: events ``delta`` (text pieces) then ``done`` (the stored turn)."""
    _check_rate(session_id)
    result, loaded = await _first_step(session_id, text, request)
    if result.asks_bot:
        assert result.decision is not None
        started = time.perf_counter()
        history = _history(result.decision.before)
        grounding = approvals.guided(await ground(history, text), result.decision.before)
        stream = get_provider().stream(history, text, grounding)
        held = await approvals.holding()  # a reply waiting for approval is not shown while drafted
        push = None if held else streaming.pusher(result.decision.before)  # SignalR clients see it too
        try:
            async for delta in stream:
                if not held:
                    yield {"type": "delta", "text": delta}
                if push is not None:
                    push.feed(delta)
        finally:
            if push is not None:
                await push.close()
        reply = stream.reply if hasattr(stream, "reply") else None
        if reply is None:
            raise RuntimeError("the provider's stream ended without a reply")
        reply.latency_ms = reply.latency_ms or int((time.perf_counter() - started) * 1000)
        offer = threshold.apply(reply, grounding, text, await current())
        command = await approvals.hold_for(_bot_answered(text, reply), session_id)
        guards.count_call(command.answer.cost_micro_usd)
        result = await execute(
            session_id, command, respond=_answering(offer), actor=_ACTOR, request=request, loaded=loaded
        )
    result = await _with_queue_position(result)
    yield {"type": "done", "httpStatus": result.status, **result.body}


# --- asking for a person, and changing one's mind ----------------------------------------------------


def _handoff_response(decision: Decision) -> tuple[int, dict[str, Any]]:
    after, notice = decision.after, decision.message_from("bot")
    return 200, {
        "sessionId": after.session_id,
        "status": after.status,
        "agentName": after.claimed_by_name or None,
        "message": notice.public() if notice else None,
        "queue": _waiting(after),
    }


async def request_handoff(session_id: str, request: RequestKey | None = None) -> dict[str, Any]:
    """The visitor pressed "talk to a person"."""

    async def run() -> Result:
        loaded = await load_for_change(session_id, request)
        notice = await _away_notice() if loaded.session is not None and loaded.session.status == OPEN else ""
        return await execute(
            session_id, AskForPerson(notice), respond=_handoff_response, actor=_ACTOR, request=request, loaded=loaded
        )

    return (await _with_queue_position(await once(session_id, request, run))).body


async def cancel_handoff(session_id: str, request: RequestKey | None = None) -> dict[str, Any]:
    """The visitor chose to continue with the assistant; 409 if an agent already claimed it."""

    async def run() -> Result:
        loaded = await load_for_change(session_id, request)
        return await execute(
            session_id, CancelRequest(), respond=_handoff_response, actor=_ACTOR, request=request, loaded=loaded
        )

    return (await once(session_id, request, run)).body


# --- reads ------------------------------------------------------------------------------------------


async def visitor_typing(session_id: str, is_typing: bool) -> None:
    """Typing from the visitor goes to the owning agent (if any)."""
    session = await load_session(session_id)
    await events.push_typing(session, sender="visitor", is_typing=is_typing)


async def visitor_messages(session_id: str, after: int) -> dict[str, Any]:
    """History for the widget (after a reload or a reconnect), with the place in the queue when waiting."""
    session = await load_session(session_id)
    messages = await ChatRepository().messages(session_id, after=after)
    body: dict[str, Any] = {
        "sessionId": session_id,
        "status": session.status,
        "agentName": session.claimed_by_name or None,
        "messages": [m.public() for m in messages],
        "lastSeq": messages[-1].seq if messages else after,
        "replyPending": session.card is not None,  # the bot's reply waits for an agent's approval
        "queue": _waiting(session),
    }
    return (await _with_queue_position(Result(200, body))).body
