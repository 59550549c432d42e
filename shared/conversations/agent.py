"""The agent's side: the queue, seat-gated claims, replies and closing.

Claims are atomic (the session header's ETag): of many agents racing, one wins and the rest get
409. The claim's commit carries a ``seat`` outbox row, so a claim never stands without its seat
(the row is applied, and repaired, like every other consequence). Once the plan's grace period
has run out, agents without a seat this month are refused with 403 ``seat-quota-exceeded``.
"""

from __future__ import annotations

from typing import Any

from shared.billing import seats as billing
from shared.clock import utcnow
from shared.config import get_settings
from shared.conversations.commit import Result, execute, load_for_change, load_session, once
from shared.conversations.machine import AgentMessage, Claim, Close, Command, Decision, Outcome
from shared.conversations.models import CLAIMED, CLOSED, STATUSES
from shared.errors import Problem
from shared.identity.teams import Agent
from shared.realtime import events
from shared.storage.chats import ChatRepository
from shared.storage.orderings import SessionIndexRepository, listed
from shared.storage.seats import SeatRepository, billing_month
from shared.web.http import decode_cursor, encode_cursor, invalid_query
from shared.web.idempotency import RequestKey

_QUEUE = "queue"  # the cursor ordering of the agent queue


async def list_sessions(
    agent: Agent, *, status: str | None, claimed_by: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Sessions newest activity first, filtered by status and owner (``me`` = the caller)."""
    if status and status not in STATUSES:
        raise invalid_query("status", f"must be one of {', '.join(STATUSES)}")
    owner = agent.oid if claimed_by == "me" else claimed_by
    rows, next_row = await SessionIndexRepository().by_activity(
        status=status, claimed_by=owner, limit=limit, after=decode_cursor(cursor, _QUEUE)
    )
    return {
        "sessions": [listed(row) for row in rows],
        "nextCursor": encode_cursor(next_row, _QUEUE) if next_row else None,
    }


def _quota_block(status: billing.SeatStatus) -> dict[str, Any]:
    return {
        "exceeded": status.exceeded,
        "seatQuota": status.plan.seat_quota,
        "seatsUsed": status.seats_used,
        "daysOverQuota": status.days_over_quota,
        "gracePeriodDays": status.plan.grace_period_days,
        "graceDaysLeft": max(0, status.plan.grace_period_days - status.days_over_quota),
        "upgradeUrl": get_settings().upgrade_url,
    }


def _actor(agent: Agent) -> str:
    return f"agent:{agent.oid}"


async def _run(agent: Agent, session_id: str, command: Command, respond: Any, request: RequestKey | None) -> Result:
    async def run() -> Result:
        loaded = await load_for_change(session_id, request)
        return await execute(session_id, command, respond=respond, actor=_actor(agent), request=request, loaded=loaded)

    return await once(session_id, request, run)


def _session_body(decision: Decision) -> tuple[int, dict[str, Any]]:
    """One shape for a claim (first or repeated) and a close: the session as it now stands."""
    body = decision.after.public()
    if decision.outcome is Outcome.UNCHANGED:
        body["alreadyClaimed"] = True
    return 200, body


async def claim(agent: Agent, session_id: str, request: RequestKey | None = None) -> dict[str, Any]:
    """Claim a session for the caller (see the module docstring for the outcomes)."""
    month = billing_month(utcnow())
    holds_seat = await SeatRepository().holds_seat(month, agent.oid)
    if not holds_seat:
        status = await billing.seat_status()
        if status.blocked:
            raise Problem(
                403, "Every seat of the plan is taken and the grace period is over; upgrade to add agents.",
                kind="seat-quota-exceeded", error="seat-quota-exceeded", upgradeUrl=get_settings().upgrade_url,
                planId=status.plan.plan_id, seatQuota=status.plan.seat_quota, seatsUsed=status.seats_used,
                daysOverQuota=status.days_over_quota, gracePeriodDays=status.plan.grace_period_days,
            )  # fmt: skip
    command = Claim(agent.oid, agent.name or agent.upn)
    result = await _run(agent, session_id, command, _session_body, request)
    body = dict(result.body)
    if result.decision is not None and result.decision.outcome is Outcome.CHANGED:
        # The seat row follows from the outbox; count it now so the answer tells the truth.
        status = await billing.seat_status(extra_holder="" if holds_seat else agent.oid)
        if status.exceeded:
            body["quotaStatus"] = _quota_block(status)
    return body


def _message_body(decision: Decision) -> tuple[int, dict[str, Any]]:
    message = decision.message_from("agent")
    assert message is not None
    return 200, {"sessionId": decision.after.session_id, "message": message.public()}


async def send_message(
    agent: Agent, session_id: str, content: str, request: RequestKey | None = None
) -> dict[str, Any]:
    """The owning agent's reply, stored and pushed to the visitor (or sent out through their channel)."""
    from shared.channels.delivery import reply_allowed

    await reply_allowed(session_id)  # WhatsApp outside its 24-hour window takes templates only: 409
    return (await _run(agent, session_id, AgentMessage(agent.oid, content), _message_body, request)).body


async def close(agent: Agent, session_id: str, request: RequestKey | None = None) -> dict[str, Any]:
    """The owning agent ends the conversation."""
    return (await _run(agent, session_id, Close(agent.oid), _session_body, request)).body


async def transcript(session_id: str, after: int) -> dict[str, Any]:
    """Messages after ``after`` for the agent console."""
    session = await load_session(session_id)
    messages = await ChatRepository().messages(session_id, after=after)
    return {
        "sessionId": session_id,
        "status": session.status,
        "session": session.public(),
        "messages": [m.public() for m in messages],
        "lastSeq": messages[-1].seq if messages else after,
    }


async def typing(agent: Agent, session_id: str, is_typing: bool) -> None:
    """The owning agent is typing: tell the visitor."""
    session = await load_session(session_id)
    if session.status == CLOSED:
        raise Problem(409, "This session is closed.", kind="session-closed")
    if session.status != CLAIMED or session.claimed_by != agent.oid:
        raise Problem(403, "Only the agent who claimed this session can do that.", kind="not-session-owner")
    await events.push_typing(session, sender="agent", is_typing=is_typing)
