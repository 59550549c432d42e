"""Runtime configuration and audit endpoints (admin key or dashboard cookie), and the audit retention timer."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import azure.functions as func
from pydantic import RootModel

from shared.clock import utcnow
from shared.config import get_settings
from shared.control import audit, store, timeline
from shared.errors import Problem
from shared.identity.admin import require_admin
from shared.storage.audit import AuditRepository
from shared.web.http import NO_STORE, endpoint, json_response, query_int, read_json
from shared.web.idempotency import request_key

bp = func.Blueprint()
log = logging.getLogger(__name__)

_ACTOR = "admin"


class PatchIn(RootModel[dict[str, Any]]):
    """A JSON merge patch of the configuration (RFC 7396); checked field by field by the store."""


def _answer(changed: store.Changed) -> func.HttpResponse:
    return json_response(changed.body, changed.status, headers={**NO_STORE, "ETag": changed.etag})


@bp.route(route="config", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def config_get(req: func.HttpRequest) -> func.HttpResponse:
    """The effective configuration (stored values over app-setting defaults), its sources, and its ETag."""
    await require_admin(req)
    current = await store.snapshot(fresh=True)
    headers = {**NO_STORE, "ETag": current.etag}
    if req.headers.get("if-none-match") == current.etag:
        return func.HttpResponse(status_code=304, headers=headers)
    return json_response(current.public(), headers=headers)


@bp.route(route="config", methods=["PATCH"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def config_patch(req: func.HttpRequest) -> func.HttpResponse:
    """Change the configuration with a JSON merge patch; ``If-Match`` (the ETag) is required."""
    context = await require_admin(req)
    if_match = req.headers.get("if-match")
    if not if_match:
        raise Problem(
            428, "Send If-Match with the ETag of GET /api/config, so a change never overwrites one you haven't seen.",
            kind="precondition-required", title="Precondition Required",
            errors=[{"field": "If-Match", "message": "is required"}],
        )  # fmt: skip
    body = read_json(req, PatchIn, max_bytes=get_settings().max_body_bytes).root
    request = request_key(req.headers.get("idempotency-key"), "PATCH", "config", body)
    changed = await store.change(body, if_match=if_match, actor=_ACTOR, request=request, via=context.method)
    return _answer(changed)


@bp.route(route="config/presets/{name}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def config_preset(req: func.HttpRequest) -> func.HttpResponse:
    """Apply a preset (``conservative``, ``balanced``, ``aggressive``); ``If-Match`` is honoured when sent."""
    context = await require_admin(req)
    name = req.route_params.get("name", "")
    request = request_key(req.headers.get("idempotency-key"), "POST", f"config/presets/{name}", None)
    changed = await store.apply_preset(
        name, if_match=req.headers.get("if-match") or None, actor=_ACTOR, request=request, via=context.method
    )
    return _answer(changed)


@bp.route(route="audit", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def audit_list(req: func.HttpRequest) -> func.HttpResponse:
    """Audit events newest first, filtered by ``sessionId``, ``event``, ``actor``, ``from`` and ``to``; paged."""
    await require_admin(req)
    limit = query_int(req, "limit", default=50, low=1, high=200)
    query = audit.parse_query(
        req.params, limit=limit, retention_days=get_settings().control.retention_days, now=utcnow()
    )
    return json_response(await audit.list_events(query), headers=NO_STORE)


@bp.route(route="audit/stats", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def audit_stats(req: func.HttpRequest) -> func.HttpResponse:
    """Counts by event, refusals and errors over the last 24 h or 7 d."""
    await require_admin(req)
    return json_response(await audit.stats(req.params.get("window") or "24h"), headers=NO_STORE)


@bp.route(route="sessions/{id}/timeline", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def session_timeline(req: func.HttpRequest) -> func.HttpResponse:
    """One session's messages and audit events in one list, oldest first; 404 for an unknown session."""
    await require_admin(req)
    limit = query_int(req, "limit", default=200, low=1, high=1000)
    body = await timeline.timeline(req.route_params.get("id", ""), limit=limit, cursor=req.params.get("cursor"))
    return json_response(body, headers=NO_STORE)


@bp.timer_trigger(schedule="0 15 3 * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def audit_retention(timer: func.TimerRequest) -> None:
    """Delete audit events older than ``AUDIT_RETENTION_DAYS`` (whole UTC days)."""
    days = get_settings().control.retention_days
    deleted = await AuditRepository().purge(utcnow() - timedelta(days=days))
    if deleted:
        log.info("audit retention: %s rows older than %s days deleted", deleted, days)
