"""Handing a claimed conversation to a colleague, and the directory of agents it looks them up in.

An agent appears in the directory (``agentdesk`` partition ``agent``) once they open the console.
A transfer is a commit like any other (``commit.execute`` with :func:`decide_transfer`), guarded by
the session header's ETag: only the owner may hand over, the target must be another known agent,
and the seat rules of a claim apply to the target (one without a seat this month is refused with
403 ``seat-quota-exceeded`` once the plan's grace period is over). The commit's owner change makes
the outbox take the target's seat, push ``SessionUpdated`` to every console (the new owner's
console says so) and audit ``session:transferred`` with both agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.billing import seats as billing
from shared.clock import iso, utcnow
from shared.config import get_settings
from shared.conversations import texts
from shared.conversations.commit import execute, load_for_change, once
from shared.conversations.machine import Decision, Note, Outcome, Refusal
from shared.conversations.models import CLAIMED, CLOSED, Message, Session
from shared.errors import Problem
from shared.identity.teams import Agent
from shared.storage.agentdesk import AGENT, AgentDeskRepository
from shared.storage.seats import SeatRepository, billing_month
from shared.web.idempotency import RequestKey

TRANSFERRED = "session:transferred"


@dataclass(frozen=True)
class Transfer:
    """The owner hands the session to ``to_oid``."""

    from_oid: str
    to_oid: str
    to_name: str


async def remember(agent: Agent) -> None:
    """Put the agent in the directory (or refresh their name and email)."""
    await AgentDeskRepository().upsert({
        "PartitionKey": AGENT, "RowKey": agent.oid, "name": agent.name or agent.upn,
        "email": (agent.email or agent.upn).lower(), "lastSeenAt": iso(utcnow()),
    })  # fmt: skip


async def colleagues(agent: Agent) -> dict[str, Any]:
    """Every agent in the directory but the caller, by name (the caller is remembered first)."""
    await remember(agent)
    rows = await AgentDeskRepository().partition(AGENT)
    people = [
        {"agentId": r["RowKey"], "name": r.get("name", ""), "email": r.get("email", ""),
         "lastSeenAt": r.get("lastSeenAt", "")}
        for r in rows if r["RowKey"] != agent.oid
    ]  # fmt: skip
    return {"agents": sorted(people, key=lambda p: (str(p["name"]).lower(), p["agentId"]))}


async def _target(agent_id: str | None, email: str | None) -> dict[str, Any]:
    repo = AgentDeskRepository()
    if agent_id:
        row = await repo.get(AGENT, agent_id)
        field, value = "agentId", agent_id
    else:
        wanted = (email or "").strip().lower()
        row = next((r for r in await repo.partition(AGENT) if r.get("email") == wanted), None)
        field, value = "email", wanted
    if row is None:
        raise Problem(
            422, f"No agent {value[:100]} has opened the console yet.", kind="unknown-agent",
            errors=[{"field": field, "message": "is not an agent who has opened the console"}],
        )  # fmt: skip
    return row


def decide_transfer(session: Session, command: Transfer, now: datetime) -> Decision:
    """Hand ``session`` to another agent (pure)."""

    def refuse(status: int, kind: str, detail: str) -> Decision:
        return Decision(Outcome.REFUSED, session, session.copy(), refusal=Refusal(status, kind, detail, {}))

    if session.status == CLOSED:
        return refuse(409, "session-closed", "This session is closed.")
    if session.status != CLAIMED or session.claimed_by != command.from_oid:
        return refuse(403, "not-session-owner", "Only the agent who claimed this session can hand it over.")
    after = session.copy()
    after.claimed_by, after.claimed_by_name, after.claimed_at = command.to_oid, command.to_name, now
    after.seq += 1
    after.last_activity_at = now
    text = texts.joined(command.to_name)
    after.preview = text[:200]
    message = Message(session.session_id, after.seq, "system", text, created_at=now)
    note = Note(TRANSFERRED, {"from": session.claimed_by, "fromName": session.claimed_by_name,
                              "to": command.to_oid, "toName": command.to_name})  # fmt: skip
    return Decision(Outcome.CHANGED, session, after, [message], notes=[note])


async def _check_seat(target_oid: str) -> None:
    """The claim's seat rule, for the target."""
    if await SeatRepository().holds_seat(billing_month(utcnow()), target_oid):
        return
    status = await billing.seat_status()
    if status.blocked:
        raise Problem(
            403, "Every seat of the plan is taken and the grace period is over: this agent has no seat to take.",
            kind="seat-quota-exceeded", error="seat-quota-exceeded", upgradeUrl=get_settings().upgrade_url,
            seatQuota=status.plan.seat_quota, seatsUsed=status.seats_used,
        )  # fmt: skip


async def transfer(
    agent: Agent, session_id: str, *, agent_id: str | None, email: str | None, request: RequestKey | None = None
) -> dict[str, Any]:
    """Hand the caller's claimed session to the agent named by ``agent_id`` or ``email``."""
    target = await _target(agent_id, email)
    if target["RowKey"] == agent.oid:
        raise Problem(
            422, "You already own this conversation; pick a colleague.", kind="validation-error",
            errors=[{"field": "agentId" if agent_id else "email", "message": "is you"}],
        )  # fmt: skip
    await _check_seat(target["RowKey"])
    command = Transfer(agent.oid, target["RowKey"], str(target.get("name") or target.get("email") or "An agent"))

    def respond(decision: Decision) -> tuple[int, dict[str, Any]]:
        return 200, {**decision.after.public(), "transferredFrom": agent.oid}

    async def run() -> Any:
        loaded = await load_for_change(session_id, request)
        return await execute(session_id, command, respond=respond, actor=f"agent:{agent.oid}", request=request,
                             loaded=loaded, decider=decide_transfer)  # fmt: skip

    return dict((await once(session_id, request, run)).body)
