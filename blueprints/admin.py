"""Admin endpoints (admin key or dashboard cookie): cost, sessions, search, transcripts, keys, page."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
from pydantic import BaseModel, Field

from shared import search, teams_setup
from shared.admin_auth import clear_cookie_header, require_admin, rotate_key, session_for, sign_in
from shared.http import Problem, endpoint, json_response, query_int, read_json
from shared.static_files import PAGE_SECURITY_HEADERS, serve
from shared.storage.chats import ChatRepository, iso
from shared.storage.rollups import COUNTERS, RollupRepository, Totals, hour_key
from shared.storage.sessions import SessionIndexRepository

bp = func.Blueprint()

_NO_STORE = {"Cache-Control": "no-store"}
WINDOWS = {"24h": 24, "7d": 168}
_DEFAULT_BUCKET = {"24h": 1, "7d": 6}
_ASSETS = {"dashboard.js": "dashboard.js", "dashboard.css": "dashboard.css"}


class SignInIn(BaseModel):
    """The admin key typed on the dashboard."""

    key: str = Field(min_length=1, max_length=256)


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        422,
        f"Query parameter '{field}' {message}.",
        kind="validation-error",
        errors=[{"field": field, "message": message}],
    )


# --- pure response shaping --------------------------------------------------------------------


def _totals_public(totals: Totals) -> dict[str, Any]:
    counts = totals.counts
    return {**totals.tokens_public(), "sessions": counts["sessions"], "messages": counts["messages"],
            "handoffs": counts["handoffs"]}  # fmt: skip


def cost_report(window: str, bucket_hours: int, end: datetime, hours: dict[str, Totals]) -> dict[str, Any]:
    """Buckets of ``bucket_hours`` over the window ending at ``end`` (an hour boundary); zeros included."""
    span = WINDOWS[window]
    start = end - timedelta(hours=span)
    buckets = [Totals() for _ in range(span // bucket_hours)]
    total = Totals()
    for offset in range(span):
        hour = hours.get(hour_key(start + timedelta(hours=offset)))
        if hour is None:
            continue
        for target in (buckets[offset // bucket_hours], total):
            for name in COUNTERS:
                target.counts[name] += hour.counts[name]
    sessions = total.counts["sessions"]
    return {
        "window": window,
        "bucketHours": bucket_hours,
        "start": iso(start),
        "end": iso(end),
        "buckets": [
            {"start": iso(start + timedelta(hours=i * bucket_hours)), **_totals_public(bucket)}
            for i, bucket in enumerate(buckets)
        ],
        "totals": {
            **_totals_public(total),
            "handoffRate": round(total.counts["handoffs"] / sessions, 4) if sessions else 0,
        },
    }


def session_row(row: dict[str, Any]) -> dict[str, Any]:
    """A session-index row as the dashboard lists it."""
    last = row.get("lastActivityAt", "")
    try:
        last = iso(datetime.fromisoformat(last))
    except ValueError:
        pass
    return {
        "sessionId": row.get("sessionId", ""),
        "status": row.get("status", ""),
        "lastActivityAt": last,
        "costUsd": round(int(getattr(row.get("costMicroUsd"), "value", row.get("costMicroUsd")) or 0) / 1_000_000, 6),
        "claimedBy": row.get("claimedBy") or None,
        "messageCount": int(row.get("messageCount") or 0),
        "preview": row.get("preview", ""),
    }


def _encode_cursor(sort_by: str, row_key: str) -> str:
    return base64.urlsafe_b64encode(f"{sort_by}|{row_key}".encode()).decode().rstrip("=")


def _decode_cursor(sort_by: str, cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        kind, _, row_key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        kind, row_key = "", ""
    if kind != sort_by or not row_key:
        raise _invalid("cursor", f"is not a cursor from a previous sortBy={sort_by} page")
    return row_key


async def _by_cost(limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Most expensive first from the ``bycost`` ordering, continuing after a RowKey."""
    rows = await SessionIndexRepository().top_by_cost(limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1]["RowKey"] if more and rows else None


# --- handlers --------------------------------------------------------------------------------------


@bp.route(route="cost", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def cost(req: func.HttpRequest) -> func.HttpResponse:
    """Tokens and cost per time bucket over the last 24 h or 7 d, from the hourly rollups."""
    await require_admin(req)
    window = req.params.get("window") or "24h"
    if window not in WINDOWS:
        raise _invalid("window", "must be 24h or 7d")
    bucket_hours = query_int(req, "bucketHours", default=_DEFAULT_BUCKET[window], low=1, high=168)
    if WINDOWS[window] % bucket_hours:
        raise _invalid("bucketHours", f"must divide the window's {WINDOWS[window]} hours")
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = await RollupRepository().hours(end - timedelta(hours=WINDOWS[window]), end)
    return json_response(cost_report(window, bucket_hours, end, hours), headers=_NO_STORE)


@bp.route(route="sessions", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def sessions(req: func.HttpRequest) -> func.HttpResponse:
    """Sessions by cost (most expensive first) or by last activity (newest first), paged."""
    await require_admin(req)
    sort_by = req.params.get("sortBy") or "cost"
    if sort_by not in ("cost", "lastActivity"):
        raise _invalid("sortBy", "must be cost or lastActivity")
    limit = query_int(req, "limit", default=20, low=1, high=200)
    after = _decode_cursor(sort_by, req.params.get("cursor"))
    if sort_by == "cost":
        rows, next_key = await _by_cost(limit, after)
    else:
        rows, next_key = await SessionIndexRepository().by_activity(
            status=None, claimed_by=None, limit=limit, after=after
        )
    body = {
        "sortBy": sort_by,
        "sessions": [session_row(row) for row in rows],
        "nextCursor": _encode_cursor(sort_by, next_key) if next_key else None,
    }
    return json_response(body, headers=_NO_STORE)


@bp.route(route="sessions/search", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def sessions_search(req: func.HttpRequest) -> func.HttpResponse:
    """Full-text search over every message: snippets with <mark>ed matches, newest first, paged."""
    await require_admin(req)
    limit = query_int(req, "limit", default=20, low=1, high=100)
    body = await search.search(req.params.get("q"), limit=limit, cursor=req.params.get("cursor") or None)
    return json_response(body, headers=_NO_STORE)


@bp.route(route="sessions/{id}/transcript", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def transcript(req: func.HttpRequest) -> func.HttpResponse:
    """One session's header and messages (with tokens and cost), ``?after=`` to continue."""
    await require_admin(req)
    session_id = req.route_params.get("id", "")
    after = query_int(req, "after", default=0, low=0, high=10**9)
    limit = query_int(req, "limit", default=1000, low=1, high=1000)
    repo = ChatRepository()
    session = await repo.get(session_id) if 0 < len(session_id) <= 64 else None
    if session is None:
        raise Problem(404, f"No session {session_id}.", kind="session-not-found")
    messages = await repo.messages(session_id, after=after, limit=limit)
    body = {
        "session": session.public(),
        "messages": [message.transcript() for message in messages],
        "nextAfter": messages[-1].seq if len(messages) == limit else None,
    }
    return json_response(body, headers=_NO_STORE)


@bp.route(route="dashboard", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    """The admin dashboard page; without credentials a browser gets it with 401 to sign in."""
    headers = {**PAGE_SECURITY_HEADERS, **_NO_STORE}
    try:
        await require_admin(req)
    except Problem as problem:
        if problem.status != 401 or "text/html" not in (req.headers.get("accept") or ""):
            raise
        page = serve(req, "dashboard.html", extra_headers={**headers, **problem.headers})
        if page.status_code != 200:
            return page
        return func.HttpResponse(page.get_body(), status_code=401, headers=dict(page.headers))
    return serve(req, "dashboard.html", extra_headers=headers)


@bp.route(route="dashboard/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def dashboard_asset(req: func.HttpRequest) -> func.HttpResponse:
    """The dashboard's script and styles (no data in them, so not gated)."""
    name = req.route_params.get("name", "")
    if name not in _ASSETS:
        raise Problem(404, f"No dashboard file {name}.", kind="not-found")
    return serve(req, _ASSETS[name], max_age=300)


@bp.route(route="ops/session", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def ops_session(req: func.HttpRequest) -> func.HttpResponse:
    """Whether the caller is signed in, and the CSRF token the page must send with its POSTs."""
    context = await require_admin(req)
    body = {"method": context.method, "keyVersion": context.key_version, "csrfToken": context.csrf_token or None}
    if context.expires_at:
        body["expiresAt"] = iso(datetime.fromtimestamp(context.expires_at, UTC))
    return json_response(body, headers=_NO_STORE)


@bp.route(route="ops/signin", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def ops_signin(req: func.HttpRequest) -> func.HttpResponse:
    """Exchange the admin key for a dashboard session cookie: ``{csrfToken, expiresAt}``."""
    body = read_json(req, SignInIn, max_bytes=4096)
    session, cookie = await sign_in(req, body.key)
    return json_response(session, headers={**_NO_STORE, "Set-Cookie": cookie})


@bp.route(route="ops/signout", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def ops_signout(req: func.HttpRequest) -> func.HttpResponse:
    """End the dashboard session (the cookie is cleared)."""
    await require_admin(req)
    return json_response({"signedOut": True}, headers={**_NO_STORE, "Set-Cookie": clear_cookie_header()})


@bp.route(route="ops/rotate-key", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def ops_rotate_key(req: func.HttpRequest) -> func.HttpResponse:
    """A new admin key, shown once; the old key and every dashboard session stop working."""
    context = await require_admin(req)
    body, record = await rotate_key()
    headers = dict(_NO_STORE)
    if context.method == "cookie":
        # The dashboard that rotated stays signed in, on a cookie for the new key version.
        session, headers["Set-Cookie"] = session_for(record)
        body.update(session)
    return json_response(body, headers=headers)


@bp.route(route="teams-app.zip", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def teams_app_package(req: func.HttpRequest) -> func.HttpResponse:
    """This deployment's Teams app package, ready to upload in the Teams admin center."""
    await require_admin(req)
    body = await teams_setup.package(req.headers.get("host") or "")
    headers = {
        **_NO_STORE,
        "Content-Type": "application/zip",  # explicit: a mimetype alone would gain a text charset
        "Content-Disposition": 'attachment; filename="support-desk-teams-app.zip"',
    }
    return func.HttpResponse(body, headers=headers)


@bp.route(route="teams-setup", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def teams_setup_page(req: func.HttpRequest) -> func.HttpResponse:
    """The admin's step-by-step page for connecting the desk to Teams."""
    await require_admin(req)
    # Opened with ?code= (not the dashboard cookie): the download link needs the key too.
    page = teams_setup.setup_page(req.headers.get("host") or "", req.params.get("code") or "")
    return func.HttpResponse(
        page, mimetype="text/html", charset="utf-8", headers={**PAGE_SECURITY_HEADERS, **_NO_STORE}
    )
