"""Draft Q&A pairs from agents' learning notes (admin key or dashboard cookie): list, edit, approve, discard."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.identity.admin import require_admin
from shared.knowledge import drafts
from shared.web.http import NO_STORE, endpoint, json_response, query_int, read_json

bp = func.Blueprint()
_ACTOR = "admin"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value.strip()


class DraftPatch(BaseModel):
    """New wording of a draft's question and/or answer."""

    model_config = ConfigDict(extra="forbid", strict=True)

    question: Annotated[str, Field(min_length=1, max_length=drafts.MAX_QUESTION), AfterValidator(_not_blank)] | None = (
        None
    )
    answer: Annotated[str, Field(min_length=1, max_length=drafts.MAX_ANSWER), AfterValidator(_not_blank)] | None = None


def _draft_id(req: func.HttpRequest) -> str:
    return req.route_params.get("id", "")


@bp.route(route="knowledge/drafts", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def list_drafts(req: func.HttpRequest) -> func.HttpResponse:
    """Drafts waiting for review (``?status=draft``, the default) or approved ones (``approved``)."""
    await require_admin(req)
    limit = query_int(req, "limit", default=100, low=1, high=500)
    body = await drafts.list_drafts(req.params.get("status") or "draft", limit)
    return json_response(body, headers=NO_STORE)


@bp.route(route="knowledge/drafts/{id}", methods=["PATCH", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def change_draft(req: func.HttpRequest) -> func.HttpResponse:
    """PATCH: edit a pending draft's question and/or answer. DELETE: discard it (204)."""
    await require_admin(req)
    if req.method == "DELETE":
        await drafts.discard_draft(_draft_id(req), actor=_ACTOR)
        return func.HttpResponse(status_code=204, headers=NO_STORE)
    patch = read_json(req, DraftPatch, max_bytes=16 * 1024)
    changes = patch.model_dump(exclude_none=True)
    return json_response(await drafts.edit_draft(_draft_id(req), changes, actor=_ACTOR), headers=NO_STORE)


@bp.route(route="knowledge/drafts/{id}/approve", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def approve_draft(req: func.HttpRequest) -> func.HttpResponse:
    """Approve a pending draft: it becomes a Q&A knowledge source the bot answers from."""
    await require_admin(req)
    return json_response(await drafts.approve_draft(_draft_id(req), actor=_ACTOR), headers=NO_STORE)
