"""The agent's side: the queue, seat-gated claims, replies and closing (contract: Agent endpoints).

Claims are atomic (the session header's ETag): of many agents racing, one wins and the rest get
409. A seat is taken on an agent's first successful claim of the billing month; once the plan's
grace period has run out, agents without a seat this month are refused with 403
``seat-quota-exceeded``.
"""

from __future__ import annotations

from typing import Any

from shared.billing import seats as billing
from shared.config import get_settings
from shared.conversations import commit as sessions
from shared.conversations.commit import CLAIMED, CLOSED, Change, Session
from shared.identity.teams import Agent
from shared.realtime import events
from shared.storage.chats import ChatRepository, iso, utcnow
from shared.storage.orderings import SessionIndexRepository, listed
from shared.storage.seats import SeatRepository, billing_month
from shared.web.http import Problem, decode_cursor, encode_cursor, invalid_query

_QUEUE = "queue"  # the cursor ordering of the agent queue


async def list_sessions(
    agent: Agent, *, status: str | None, claimed_by: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Sessions newest activity first, filtered by status and owner (``me`` = the caller)."""
    if status and status not in sessions.STATUSES:
        raise invalid_query("status", f"must be one of {', '.join(sessions.STATUSES)}")
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


async def claim(agent: Agent, session_id: str) -> dict[str, Any]:
    """Claim a session for the caller (see the module docstring for the outcomes)."""
    now = utcnow()
    month = billing_month(now)
    seats = SeatRepository()
    current = await sessions.load(session_id)
    if current.status == CLAIMED and current.claimed_by == agent.oid:
        return {"alreadyClaimed": True, "session": current.public()}
    if not await seats.holds_seat(month, agent.oid):
        status = await billing.seat_status(now)
        if status.blocked:
            raise Problem(
                403, "Every seat of the plan is taken and the grace period is over; upgrade to add agents.",
                kind="seat-quota-exceeded", error="seat-quota-exceeded", upgradeUrl=get_settings().upgrade_url,
                planId=status.plan.plan_id, seatQuota=status.plan.seat_quota, seatsUsed=status.seats_used,
                daysOverQuota=status.days_over_quota, gracePeriodDays=status.plan.grace_period_days,
            )  # fmt: skip
    latest: dict[str, Session] = {}

    def decide(session: Session) -> Change:
        latest["session"] = session
        if session.status == CLAIMED and session.claimed_by == agent.oid:  # our own earlier claim won a race
            raise sessions.Skip()
        if session.status == CLAIMED:
            raise Problem(
                409,
                "Another agent has already claimed this session.",
                kind="already-claimed",
                claimedBy=session.claimed_by,
                agentName=session.claimed_by_name,
            )
        if session.status == CLOSED:
            raise Problem(409, "This session is closed.", kind="session-closed")
        sessions.move(session, CLAIMED)
        session.claimed_by, session.claimed_by_name, session.claimed_at = agent.oid, agent.name or agent.upn, utcnow()
        notice = sessions.new_message(session, "system", f"{session.claimed_by_name} joined the conversation.")
        return Change([notice], actor=f"agent:{agent.oid}")

    outcome = await sessions.apply(session_id, decide, loaded=current)
    if outcome is None:
        return {"alreadyClaimed": True, "session": latest["session"].public()}
    await seats.take_seat(month, agent.oid, iso(now))
    public = outcome.after.public()
    body: dict[str, Any] = {"session": public, **public}
    status = await billing.seat_status()
    if status.exceeded:
        body["quotaStatus"] = _quota_block(status)
    return body


def _owned(session: Session, agent: Agent) -> None:
    if session.status == CLOSED:
        raise Problem(409, "This session is closed.", kind="session-closed")
    if session.status != CLAIMED or session.claimed_by != agent.oid:
        raise Problem(403, "Only the agent who claimed this session can do that.", kind="not-session-owner")


async def send_message(agent: Agent, session_id: str, content: str) -> dict[str, Any]:
    """The owning agent's reply, stored and pushed to the visitor."""
    result: dict[str, Any] = {}

    def decide(session: Session) -> Change:
        _owned(session, agent)
        message = sessions.new_message(
            session, "agent", content, agent_oid=agent.oid, agent_name=session.claimed_by_name
        )
        result["message"] = message.public()
        return Change([message], actor=f"agent:{agent.oid}")

    await sessions.apply(session_id, decide)
    return {"sessionId": session_id, "message": result["message"]}


async def close(agent: Agent, session_id: str) -> dict[str, Any]:
    """The owning agent ends the conversation."""

    def decide(session: Session) -> Change:
        _owned(session, agent)
        sessions.move(session, CLOSED)
        notice = sessions.new_message(session, "system", "The conversation was closed by the agent.")
        return Change([notice], actor=f"agent:{agent.oid}")

    outcome = await sessions.apply(session_id, decide)
    assert outcome is not None
    return {"session": outcome.after.public(), **outcome.after.public()}


async def transcript(session_id: str, after: int) -> dict[str, Any]:
    """Messages after ``after`` for the agent console."""
    session = await sessions.load(session_id)
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
    session = await sessions.load(session_id)
    _owned(session, agent)
    await events.push_typing(session, sender="agent", is_typing=is_typing)
