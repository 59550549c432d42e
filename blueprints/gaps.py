"""Content gaps (admin key or dashboard cookie): questions the bot could not answer, grouped; a daily clean-up."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.identity.admin import require_admin
from shared.knowledge import gaps
from shared.web.http import NO_STORE, decode_cursor, encode_cursor, endpoint, invalid_query, json_response, query_int

bp = func.Blueprint()
log = logging.getLogger(__name__)

_ORDERING = "knowledge-gaps"


def _offset(cursor: str | None) -> int:
    key = decode_cursor(cursor, _ORDERING)
    if key is None:
        return 0
    if not key.isdigit() or len(key) > 6:
        raise invalid_query("cursor", "is not a cursor from a previous page of this listing")
    return int(key)


@bp.route(route="knowledge/gaps", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_gaps(req: func.HttpRequest) -> func.HttpResponse:
    """The groups of unanswered questions, most asked first (``limit`` 1-200, ``cursor``)."""
    await require_admin(req)
    limit = query_int(req, "limit", default=50, low=1, high=200)
    groups, total, after = await gaps.list_gaps(limit, _offset(req.params.get("cursor")))
    page = {"groups": groups, "total": total, "nextCursor": encode_cursor(str(after), _ORDERING) if after else None}
    return json_response(page, headers=NO_STORE)


@bp.route(route="knowledge/gaps/{groupId}/dismiss", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def dismiss_knowledge_gap(req: func.HttpRequest) -> func.HttpResponse:
    """Hide a group of questions (answered elsewhere, or not worth answering)."""
    await require_admin(req)
    return json_response(await gaps.dismiss_group(req.route_params.get("groupId", "")), headers=NO_STORE)


@bp.timer_trigger(schedule="0 40 3 * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def knowledge_gaps_retention(timer: func.TimerRequest) -> None:
    """Delete content-gap records older than ``KNOWLEDGE_GAPS_RETENTION_DAYS``."""
    removed = await gaps.forget_old_gaps()
    if removed:
        log.info("content gaps: %s old records deleted", removed)
