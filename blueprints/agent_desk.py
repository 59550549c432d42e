"""The agents' tools beside the conversation: saved replies, private notes, transfer, search.

Saved replies are managed by admins (admin key or the dashboard cookie) and read by agents (Teams
SSO); the rest is for agents only.
"""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.conversations import agent_search, notes, replies, transfer
from shared.identity.admin import require_admin
from shared.identity.teams import authenticate_agent
from shared.ops.bootstrap import bootstrapped
from shared.web.http import (
    NO_STORE,
    Problem,
    bearer_credential,
    endpoint,
    invalid_query,
    json_response,
    query_int,
    read_json,
)
from shared.web.idempotency import request_key

bp = func.Blueprint()


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value.strip()


Title = Annotated[str, Field(min_length=1, max_length=replies.MAX_TITLE), AfterValidator(_text)]
Text = Annotated[str, Field(min_length=1, max_length=replies.MAX_TEXT), AfterValidator(_text)]
# One word after "/": letters, digits, "-" and "_" ("" removes it in a PATCH).
Shortcut = Annotated[str, StringConstraints(max_length=replies.MAX_SHORTCUT, pattern=r"^[A-Za-z0-9_-]*$")]


class ReplyIn(BaseModel):
    """A new saved reply."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title
    text: Text
    shortcut: Shortcut | None = None


class ReplyPatch(BaseModel):
    """Changes to a saved reply (merge semantics)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Title | None = None
    text: Text | None = None
    shortcut: Shortcut | None = None


class NoteIn(BaseModel):
    """A private note on a conversation."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: Annotated[str, Field(min_length=1, max_length=notes.MAX_NOTE), AfterValidator(_text)]


class TransferIn(BaseModel):
    """Whom to hand the conversation to: ``agentId`` (their oid) or ``email``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    agentId: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    email: Annotated[str, Field(min_length=3, max_length=254)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TransferIn:
        if (self.agentId is None) == (self.email is None):
            raise ValueError("give exactly one of agentId or email")
        return self


def _session_id(req: func.HttpRequest) -> str:
    return req.route_params.get("id", "")


@bp.route(route="replies", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def saved_replies(req: func.HttpRequest) -> func.HttpResponse:
    """GET: every saved reply (agents with Teams SSO, or admins). POST: add one (admins)."""
    if req.method == "GET":
        credential = bearer_credential(req.headers.get("authorization"))
        if credential and credential.count(".") == 2:  # a JWT: an agent's token, not the admin key
            await authenticate_agent(req)
        else:
            await require_admin(req)
        return json_response(await replies.list_replies(), headers=NO_STORE)
    await require_admin(req)
    body = read_json(req, ReplyIn, max_bytes=16 * 1024)
    created = await replies.create_reply(body.model_dump(exclude_none=True), actor="admin")
    return json_response(created, 201, headers={**NO_STORE, "Location": f"/api/replies/{created['id']}"})


@bp.route(route="replies/{id}", methods=["PATCH", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def saved_reply(req: func.HttpRequest) -> func.HttpResponse:
    """PATCH: change a saved reply's title, text or shortcut. DELETE: remove it (204). Admins only."""
    await require_admin(req)
    reply_id = req.route_params.get("id", "")
    if req.method == "DELETE":
        await replies.delete_reply(reply_id, actor="admin")
        return func.HttpResponse(status_code=204, headers=NO_STORE)
    changes = read_json(req, ReplyPatch, max_bytes=16 * 1024).model_dump(exclude_none=True)
    if not changes:
        raise Problem(422, "Nothing to change: send title, text or shortcut.", kind="validation-error",
                      errors=[{"field": "body", "message": "has no field to change"}])  # fmt: skip
    return json_response(await replies.update_reply(reply_id, changes, actor="admin"), headers=NO_STORE)


@bp.route(route="agent/colleagues", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_colleagues(req: func.HttpRequest) -> func.HttpResponse:
    """The other agents who opened the console (transfer targets); records the caller."""
    agent = await authenticate_agent(req)
    return json_response(await transfer.colleagues(agent), headers=NO_STORE)


@bp.route(route="agent/sessions/{id}/notes", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_notes(req: func.HttpRequest) -> func.HttpResponse:
    """GET: a conversation's private notes. POST: add one (any agent; never shown to the visitor)."""
    agent = await authenticate_agent(req)
    if req.method == "GET":
        return json_response(await notes.list_notes(_session_id(req)), headers=NO_STORE)
    body = read_json(req, NoteIn, max_bytes=32 * 1024)
    return json_response(await notes.add_note(agent, _session_id(req), body.text), 201, headers=NO_STORE)


@bp.route(route="agent/sessions/{id}/transfer", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_transfer(req: func.HttpRequest) -> func.HttpResponse:
    """Hand a claimed conversation to another agent (owner only; the seat rules apply to the target)."""
    agent = await authenticate_agent(req)
    body = read_json(req, TransferIn, max_bytes=4096)
    key = request_key(
        req.headers.get("idempotency-key"), "POST", f"agent/sessions/{_session_id(req)}/transfer",
        body.model_dump(exclude_none=True),
    )  # fmt: skip
    moved = await transfer.transfer(agent, _session_id(req), agent_id=body.agentId, email=body.email, request=key)
    return json_response(moved, headers=NO_STORE)


@bp.route(route="agent/search", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def agent_search_route(req: func.HttpRequest) -> func.HttpResponse:
    """The agent's own and waiting conversations whose messages match ``q``."""
    agent = await authenticate_agent(req)
    q = (req.params.get("q") or "").strip()
    if not q or len(q) > 200:
        raise invalid_query("q", "must hold 1 to 200 characters")
    limit = query_int(req, "limit", default=20, low=1, high=50)
    found = await agent_search.search_mine(agent, q, limit=limit, cursor=req.params.get("cursor") or None)
    return json_response(found, headers=NO_STORE)
