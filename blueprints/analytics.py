"""Analytics: the dashboard's figures (admin) and the visitor's rating of a closed conversation."""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, Field

from shared.analytics.rating import rate_conversation
from shared.analytics.report import analytics as read_analytics
from shared.config import get_settings
from shared.conversations import visitor as chat
from shared.identity.admin import require_admin
from shared.identity.visitor_tokens import bearer
from shared.ops.bootstrap import bootstrapped
from shared.web.cors import with_cors
from shared.web.http import NO_STORE, endpoint, json_response, read_json
from shared.web.idempotency import request_key

bp = func.Blueprint()


class RatingIn(BaseModel):
    """A visitor's rating of their closed conversation."""

    score: int = Field(ge=1, le=5, strict=True)
    comment: str = Field(default="", max_length=1000)
    sessionId: str | None = Field(default=None, max_length=64)


@bp.route(route="analytics", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def analytics(req: func.HttpRequest) -> func.HttpResponse:
    """Conversations, resolution, handoffs, reply times, CSAT, cost and agents per bucket, from the day counters."""
    await require_admin(req)
    body = await read_analytics(req.params.get("from"), req.params.get("to"), req.params.get("bucket"))
    return json_response(body, headers=NO_STORE)


@bp.route(route="chat/rating", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
@with_cors
@endpoint
@bootstrapped
async def chat_rating(req: func.HttpRequest) -> func.HttpResponse:
    """The visitor rates their closed conversation 1 to 5 (once), with an optional comment."""
    token = bearer(req.headers.get("authorization"))
    await chat.authenticate_visitor(token)  # the caller before the body: a stranger's body is never parsed
    body = read_json(req, RatingIn, max_bytes=get_settings().max_body_bytes)
    session_id = await chat.authenticate_visitor(token, body.sessionId)
    comment = body.comment.strip()
    request = request_key(
        req.headers.get("idempotency-key"), "POST", f"chat/{session_id}/rating", f"{body.score}|{comment}"
    )
    result = await rate_conversation(session_id, body.score, comment, request)
    return json_response(result.body, result.status, headers=NO_STORE)
