"""The visitor's side of a conversation: widget sessions, chat turns, handoff, history.

A turn stores the visitor's message and the bot's reply together (one transaction, with the
Idempotency-Key's replay record), so a retried request returns the first answer and stores
nothing twice. While an agent owns the session the bot stays silent and the message waits for
the agent (202). The LLM is asked outside the transaction; if an agent claimed the session
meanwhile, the bot's answer is dropped and the message goes to the agent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from shared.config import get_settings
from shared.conversations import commit as sessions
from shared.conversations import guards
from shared.conversations.commit import CLAIMED, CLOSED, HUMAN_REQUESTED, OPEN, Change, Session
from shared.identity.visitor_tokens import issue, verify
from shared.llm import BotReply, ChatTurn, asks_for_human, cost_micro_usd, get_llm_settings, get_provider
from shared.ops.bootstrap import ensure_bootstrapped
from shared.realtime import events
from shared.storage.chats import ChatRepository, Message, Replay
from shared.storage.values import is_safe_key
from shared.web.http import Problem
from shared.web.ratelimit import LocalRateLimiter

log = logging.getLogger(__name__)

HANDOFF_TEXT = "I'm bringing in a person from our team. Stay here; they'll reply in this chat."
GUARD_TEXT = {
    guards.BOT_OFF: "Our team will answer you personally. Someone will reply here shortly.",
    guards.SESSION_CAP: "I've reached my limit for this conversation today, so I'm bringing in a person from our team.",
    guards.DEPLOYMENT_CAP: "I can't answer more questions today, so I'm bringing in a person from our team.",
}
_per_session = LocalRateLimiter()


@dataclass
class TurnResult:
    """The HTTP status and body of a chat turn."""

    status: int
    body: dict[str, Any]


async def _signing() -> tuple[str, str]:
    record = await ensure_bootstrapped()
    return record.signing_secret, record.deployment_id


async def open_session(origin: str) -> dict[str, Any]:
    """Start a session for a widget and issue its token."""
    settings = get_settings()
    secret, issuer = await _signing()
    session = await sessions.create(Session(session_id=str(uuid.uuid4()), origin=origin[:200]))
    token = issue(session.session_id, secret=secret, issuer=issuer, ttl_seconds=settings.visitor_token_ttl_seconds)
    return _session_body(session, token.token, token.expires_at.isoformat())


async def renew_session(old_token: str, session_id: str) -> dict[str, Any]:
    """A fresh token for the session a recently expired (but genuine) token was bound to."""
    settings = get_settings()
    secret, issuer = await _signing()
    bound = verify(old_token, secret=secret, issuer=issuer, allow_expired_days=settings.visitor_token_renew_days)
    if bound != session_id:
        raise Problem(401, "That token belongs to another session.", kind="wrong-session")
    session = await sessions.load(session_id)
    token = issue(session_id, secret=secret, issuer=issuer, ttl_seconds=settings.visitor_token_ttl_seconds)
    return _session_body(session, token.token, token.expires_at.isoformat())


def _session_body(session: Session, token: str, expires_at: str) -> dict[str, Any]:
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
        },
    }


async def authenticate_visitor(token: str, session_id: str | None = None) -> str:
    """The session id the token is bound to; 401 if it is bound to a different one."""
    secret, issuer = await _signing()
    bound = verify(token, secret=secret, issuer=issuer)
    if session_id and session_id != bound:
        raise Problem(401, "This token belongs to another session.", kind="wrong-session")
    return bound


MAX_IDEMPOTENCY_KEY = 100


def _refuse_closed(session: Session) -> None:
    """A visitor can't write to a closed conversation (it may have closed since it was read)."""
    if session.status == CLOSED:
        raise Problem(409, "This conversation is closed; start a new one.", kind="session-closed")


def idempotency_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` header, or None; a 400 naming it when Storage couldn't keep it."""
    key = (header or "").strip()
    if key and not is_safe_key(key, MAX_IDEMPOTENCY_KEY):
        raise Problem(
            400,
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters without / \\ # ? or control characters.",
            kind="invalid-idempotency-key",
            errors=[{"field": "Idempotency-Key", "message": "not a usable key"}],
        )
    return key or None


def _check_rate(session_id: str) -> None:
    verdict = _per_session.hit(session_id, get_settings().chat_messages_per_minute)
    verdict.raise_if_refused("messages")


def _body(session: Session, visitor: Message, reply: Message | None, handoff: bool) -> dict[str, Any]:
    return {
        "sessionId": session.session_id,
        "status": session.status,
        "message": visitor.public(),
        "reply": reply.public() if reply else None,
        "handoff": handoff,
    }


def _queued_body(session: Session, visitor: Message) -> dict[str, Any]:
    return {
        "sessionId": session.session_id,
        "status": "queued-for-agent",
        "sessionStatus": session.status,
        "agentName": session.claimed_by_name or None,
        "message": visitor.public(),
    }


async def post_message(session_id: str, text: str, idempotency_key_header: str | None) -> TurnResult:
    """One visitor message: answered by the bot (200), or queued for the owning agent (202)."""
    repo = ChatRepository()
    key = idempotency_key(idempotency_key_header)
    _check_rate(session_id)  # before any Storage read: a flood costs no round trips
    if key:
        replay = await repo.replay(session_id, key)
        if replay is not None:
            return TurnResult(replay.status, replay.body)
    session = await sessions.load(session_id)
    _refuse_closed(session)
    if session.status == CLAIMED:
        return await _queue_for_agent(session_id, text, key, session)

    settings = get_settings()
    reason = "asked" if asks_for_human(text) else await guards.refusal(session, settings)
    if reason is not None and session.status == OPEN:
        return await _hand_off(session_id, text, key, GUARD_TEXT.get(reason, HANDOFF_TEXT), session)
    if reason is not None:  # already waiting for a person: keep the message, don't call the LLM
        return await _store_only(session_id, text, key, session)

    history = await _history(repo, session)
    reply = await get_provider().reply(history, text)
    guards.count_call()
    return await _store_turn(session_id, text, key, reply, session)


async def _history(repo: ChatRepository, session: Session) -> list[ChatTurn]:
    turns = get_llm_settings().history_turns
    if turns == 0 or session.seq == 0:
        return []
    recent = await repo.messages(session.session_id, after=max(0, session.seq - turns))
    return [ChatTurn("user" if m.sender == "visitor" else "assistant", m.text) for m in recent if m.sender != "system"]


def _replay(key: str | None, status: int, body: dict[str, Any]) -> Replay | None:
    return Replay(key, status, body) if key else None


async def _queue_for_agent(session_id: str, text: str, key: str | None, loaded: Session | None = None) -> TurnResult:
    result: dict[str, TurnResult] = {}

    def decide(session: Session) -> Change:
        _refuse_closed(session)
        visitor = sessions.new_message(session, "visitor", text)
        result["turn"] = TurnResult(202, _queued_body(session, visitor))
        return Change([visitor], _replay(key, 202, result["turn"].body), actor="visitor")

    await sessions.apply(session_id, decide, loaded=loaded)
    return result["turn"]


async def _store_only(session_id: str, text: str, key: str | None, loaded: Session | None = None) -> TurnResult:
    result: dict[str, TurnResult] = {}

    def decide(session: Session) -> Change:
        _refuse_closed(session)
        visitor = sessions.new_message(session, "visitor", text)
        status = 202 if session.status == CLAIMED else 200
        body = _queued_body(session, visitor) if status == 202 else _body(session, visitor, None, False)
        result["turn"] = TurnResult(status, body)
        return Change([visitor], _replay(key, status, body), actor="visitor")

    await sessions.apply(session_id, decide, loaded=loaded)
    return result["turn"]


async def _hand_off(
    session_id: str, text: str, key: str | None, notice: str, loaded: Session | None = None
) -> TurnResult:
    result: dict[str, TurnResult] = {}

    def decide(session: Session) -> Change:
        _refuse_closed(session)
        visitor = sessions.new_message(session, "visitor", text)
        if session.status == CLAIMED:
            result["turn"] = TurnResult(202, _queued_body(session, visitor))
            return Change([visitor], _replay(key, 202, result["turn"].body), actor="visitor")
        sessions.move(session, HUMAN_REQUESTED)
        bot = sessions.new_message(session, "bot", notice)
        result["turn"] = TurnResult(200, _body(session, visitor, bot, True))
        return Change([visitor, bot], _replay(key, 200, result["turn"].body), actor="visitor")

    await sessions.apply(session_id, decide, loaded=loaded)
    return result["turn"]


def _usage(reply: BotReply) -> tuple[int, dict[str, int]]:
    cost = cost_micro_usd(reply.model, reply.prompt_tokens, reply.completion_tokens, get_llm_settings().prices)
    counters = {"promptTokens": reply.prompt_tokens, "completionTokens": reply.completion_tokens, "costMicroUsd": cost}
    if not reply.failed:
        counters["calls"] = 1
    return cost, counters


async def _store_turn(
    session_id: str, text: str, key: str | None, reply: BotReply, loaded: Session | None = None
) -> TurnResult:
    cost, counters = _usage(reply)
    result: dict[str, TurnResult] = {}

    def decide(session: Session) -> Change:
        _refuse_closed(session)
        # The reply is paid for even if an agent took over meanwhile: its usage always counts.
        session.prompt_tokens += reply.prompt_tokens
        session.completion_tokens += reply.completion_tokens
        session.cost_micro_usd += cost
        if not reply.failed:
            session.ai_calls += 1
            day = guards.today()
            session.ai_calls_today = (session.ai_calls_today if session.ai_calls_day == day else 0) + 1
            session.ai_calls_day = day
        visitor = sessions.new_message(session, "visitor", text)
        if session.status == CLAIMED:  # an agent took over while the bot was thinking: drop its reply
            result["turn"] = TurnResult(202, _queued_body(session, visitor))
            return Change([visitor], _replay(key, 202, result["turn"].body), counters, actor="visitor")
        bot = sessions.new_message(
            session, "bot", reply.text, model=reply.model, provider=reply.provider,
            prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
            cost_micro_usd=cost, latency_ms=reply.latency_ms,
        )  # fmt: skip
        handoff = reply.wants_human and session.status == OPEN
        if handoff:
            sessions.move(session, HUMAN_REQUESTED)
        result["turn"] = TurnResult(200, _body(session, visitor, bot, handoff))
        return Change([visitor, bot], _replay(key, 200, result["turn"].body), counters, actor="visitor")

    await sessions.apply(session_id, decide, loaded=loaded)
    return result["turn"]


async def stream_message(
    session_id: str, text: str, idempotency_key_header: str | None
) -> AsyncIterator[dict[str, Any]]:
    """The streaming turn: events ``delta`` (text pieces) then ``done`` (the stored turn)."""
    repo = ChatRepository()
    key = idempotency_key(idempotency_key_header)
    session = await sessions.load(session_id)
    plain = (
        session.status != OPEN
        or asks_for_human(text)
        or (key is not None and await repo.replay(session_id, key) is not None)
        or await guards.refusal(session, get_settings()) is not None
    )
    if plain:  # nothing to stream: the same answer as the plain turn, as one event
        result = await post_message(session_id, text, key)
        yield {"type": "done", "httpStatus": result.status, **result.body}
        return
    _check_rate(session_id)
    history = await _history(repo, session)
    started = time.perf_counter()
    stream = get_provider().stream(history, text)
    async for delta in stream:
        yield {"type": "delta", "text": delta}
    reply = stream.reply if hasattr(stream, "reply") else None
    if reply is None:
        raise RuntimeError("the provider's stream ended without a reply")
    reply.latency_ms = reply.latency_ms or int((time.perf_counter() - started) * 1000)
    guards.count_call()
    turn = await _store_turn(session_id, text, key, reply, session)
    yield {"type": "done", "httpStatus": turn.status, **turn.body}


async def request_handoff(session_id: str) -> dict[str, Any]:
    """The visitor pressed "talk to a person"."""
    result: dict[str, Any] = {}

    def decide(session: Session) -> Change:
        if session.status in (HUMAN_REQUESTED, CLAIMED):
            result["body"] = {"sessionId": session_id, "status": session.status, "message": None}
            raise sessions.Skip()  # nothing changes: no write, no derived updates
        _refuse_closed(session)
        sessions.move(session, HUMAN_REQUESTED)
        notice = sessions.new_message(session, "bot", HANDOFF_TEXT)
        result["body"] = {"sessionId": session_id, "status": session.status, "message": notice.public()}
        return Change([notice], actor="visitor")

    await sessions.apply(session_id, decide)
    return result["body"]


async def visitor_typing(session_id: str, is_typing: bool) -> None:
    """Typing from the visitor goes to the owning agent (if any)."""
    session = await sessions.load(session_id)
    await events.push_typing(session, sender="visitor", is_typing=is_typing)


async def visitor_messages(session_id: str, after: int) -> dict[str, Any]:
    """History for the widget (after a reload or a reconnect)."""
    session = await sessions.load(session_id)
    messages = await ChatRepository().messages(session_id, after=after)
    return {
        "sessionId": session_id,
        "status": session.status,
        "agentName": session.claimed_by_name or None,
        "messages": [m.public() for m in messages],
        "lastSeq": messages[-1].seq if messages else after,
    }
