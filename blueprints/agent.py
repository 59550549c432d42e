"""Agent endpoints (Teams SSO gated): who am I, the queue, claim, reply, close, live connection."""

from __future__ import annotations

from typing import Annotated, Literal

import azure.functions as func
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.config import get_settings
from shared.conversations import agent as agents
from shared.conversations import handoffs
from shared.identity.teams import authenticate_agent
from shared.ops.bootstrap import bootstrapped
from shared.realtime.client import get_realtime
from shared.realtime.events import AGENTS_GROUP
from shared.web.http import NO_STORE, MessageText, Problem, endpoint, json_response, query_int, read_json
from shared.web.idempotency import RequestKey, request_key

bp = func.Blueprint()


class AgentMessageIn(BaseModel):
    """An agent's reply."""

    content: MessageText


class TypingIn(BaseModel):
    """The agent started or stopped typing."""

    isTyping: bool


def _note_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value.strip()


class CloseIn(BaseModel):
    """How the conversation ended, and what the bot should have answered (both optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    resolution: Literal["resolved", "unresolved"] | None = None
    note: Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_note_text)] | None = None


def _session_id(req: func.HttpRequest) -> str:
    return req.route_params.get("id", "")


def _request_key(req: func.HttpRequest, action: str, body: object = None) -> RequestKey | None:
    """The Idempotency-Key of an agent's change (fingerprinted with the session and the action)."""
    return request_key(req.headers.get("idempotency-key"), "POST", f"agent/sessions/{_session_id(req)}/{action}", body)


@bp.route(route="agent/me", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def agent_me(req: func.HttpRequest) -> func.HttpResponse:
    """The signed-in agent's normalised claims."""
    agent = await authenticate_agent(req)
    return json_response(agent.public(), headers=NO_STORE)


@bp.route(route="agent/negotiate", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_negotiate(req: func.HttpRequest) -> func.HttpResponse:
    """SignalR connection info bound to userId = the agent's oid; joins the agents group."""
    agent = await authenticate_agent(req)
    realtime = get_realtime()
    if not realtime.enabled:
        raise Problem(
            503, "Real-time messaging is not configured; the console polls instead.", kind="realtime-unavailable"
        )
    if not await realtime.add_user_to_group(AGENTS_GROUP, agent.oid):
        # Without the group the console would look live yet miss every queue change: let it poll.
        raise Problem(503, "Real-time messaging is unreachable; the console polls.", kind="realtime-unavailable")
    return json_response(await realtime.negotiate_async(agent.oid), headers=NO_STORE)


@bp.route(route="agent/sessions", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_sessions(req: func.HttpRequest) -> func.HttpResponse:
    """Sessions visible to agents, newest activity first, with a cursor for more."""
    agent = await authenticate_agent(req)
    limit = query_int(req, "limit", default=50, low=1, high=200)
    body = await handoffs.queue(
        agent,
        status=req.params.get("status") or None,
        claimed_by=req.params.get("claimedBy") or None,
        limit=limit,
        cursor=req.params.get("cursor") or None,
    )
    return json_response(body, headers=NO_STORE)


@bp.route(route="agent/sessions/{id}/messages", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_transcript(req: func.HttpRequest) -> func.HttpResponse:
    """A session's messages after ``?after=``."""
    await authenticate_agent(req)
    after = query_int(req, "after", default=0, low=0, high=10**9)
    return json_response(await handoffs.transcript(_session_id(req), after), headers=NO_STORE)


@bp.route(route="agent/sessions/{id}/claim", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_claim(req: func.HttpRequest) -> func.HttpResponse:
    """Claim a session (seat-gated; atomic), answered with the handoff summary."""
    agent = await authenticate_agent(req)
    request = _request_key(req, "claim")
    return json_response(await handoffs.claim(agent, _session_id(req), request), headers=NO_STORE)


@bp.route(route="agent/sessions/{id}/message", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_message(req: func.HttpRequest) -> func.HttpResponse:
    """The owning agent's reply, pushed to the visitor."""
    agent = await authenticate_agent(req)
    body = read_json(req, AgentMessageIn, max_bytes=get_settings().max_body_bytes)
    request = _request_key(req, "message", body.content)
    return json_response(await agents.send_message(agent, _session_id(req), body.content, request), headers=NO_STORE)


@bp.route(route="agent/sessions/{id}/close", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_close(req: func.HttpRequest) -> func.HttpResponse:
    """Close a session (owning agent only), optionally with ``resolution`` and a learning ``note``."""
    agent = await authenticate_agent(req)
    body = read_json(req, CloseIn, max_bytes=get_settings().max_body_bytes, optional=True)
    request = _request_key(req, "close", body.model_dump(exclude_none=True) or None)
    closed = await handoffs.close(agent, _session_id(req), request, resolution=body.resolution, note=body.note)
    return json_response(closed, headers=NO_STORE)


@bp.route(route="agent/sessions/{id}/typing", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_typing(req: func.HttpRequest) -> func.HttpResponse:
    """The owning agent is typing."""
    agent = await authenticate_agent(req)
    body = read_json(req, TypingIn, max_bytes=1024)
    await agents.typing(agent, _session_id(req), body.isTyping)
    return json_response({"ok": True}, 202, headers=NO_STORE)
