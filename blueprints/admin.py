"""Admin endpoints (admin key or dashboard cookie): cost, sessions, search, transcripts, keys, page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from shared import search
from shared.clock import iso
from shared.identity.admin import clear_cookie_header, require_admin, rotate_key, session_for, sign_in
from shared.ops import reports, teams_setup
from shared.ops.bootstrap import current_record
from shared.web.http import NO_STORE, Problem, endpoint, json_response, query_int, read_json
from shared.web.idempotency import request_key
from shared.web.static_files import page_headers, serve

bp = func.Blueprint()

# The dashboard's script and styles, and one script (and style sheet) per view: dashboard-<view>.js.
_ASSET = re.compile(r"dashboard(?:-[a-z]+)?\.(?:js|css)")


class SignInIn(BaseModel):
    """The admin key typed on the dashboard."""

    model_config = ConfigDict(defer_build=True)  # validators built at the first sign-in, not at import

    key: str = Field(min_length=1, max_length=256)


@bp.route(route="cost", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def cost(req: func.HttpRequest) -> func.HttpResponse:
    """Tokens and cost per time bucket over the last 24 h or 7 d, from the hourly rollups."""
    await require_admin(req)
    window = req.params.get("window") or "24h"
    default_bucket = reports.DEFAULT_BUCKET_HOURS.get(window, 1)
    bucket_hours = query_int(req, "bucketHours", default=default_bucket, low=1, high=168)
    return json_response(await reports.cost(window, bucket_hours), headers=NO_STORE)


@bp.route(route="sessions", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def sessions(req: func.HttpRequest) -> func.HttpResponse:
    """Sessions by cost (most expensive first) or by last activity (newest first), paged."""
    await require_admin(req)
    limit = query_int(req, "limit", default=20, low=1, high=200)
    body = await reports.sessions(req.params.get("sortBy") or "cost", limit, req.params.get("cursor"))
    return json_response(body, headers=NO_STORE)


@bp.route(route="sessions/search", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def sessions_search(req: func.HttpRequest) -> func.HttpResponse:
    """Full-text search over every message: snippets with <mark>ed matches, newest first, paged."""
    await require_admin(req)
    limit = query_int(req, "limit", default=20, low=1, high=100)
    body = await search.search(req.params.get("q"), limit=limit, cursor=req.params.get("cursor") or None)
    return json_response(body, headers=NO_STORE)


@bp.route(route="sessions/{id}/transcript", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def transcript(req: func.HttpRequest) -> func.HttpResponse:
    """One session's header and messages (with tokens and cost), ``?after=`` to continue."""
    await require_admin(req)
    after = query_int(req, "after", default=0, low=0, high=10**9)
    limit = query_int(req, "limit", default=1000, low=1, high=1000)
    body = await reports.transcript(req.route_params.get("id", ""), after, limit)
    return json_response(body, headers=NO_STORE)


@bp.route(route="dashboard", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    """The admin dashboard page; without credentials a browser gets it with 401 to sign in."""
    headers = {**page_headers(), **NO_STORE}  # an admin page: never framed
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
    if not _ASSET.fullmatch(name):
        raise Problem(404, f"No dashboard file {name}.", kind="not-found")
    return serve(req, name, max_age=300)


@bp.route(route="ops/session", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def ops_session(req: func.HttpRequest) -> func.HttpResponse:
    """Whether the caller is signed in, and the CSRF token the page must send with its POSTs."""
    context = await require_admin(req)
    body = {"method": context.method, "keyVersion": context.key_version, "csrfToken": context.csrf_token or None}
    if context.expires_at:
        body["expiresAt"] = iso(datetime.fromtimestamp(context.expires_at, UTC))
    return json_response(body, headers=NO_STORE)


@bp.route(route="ops/signin", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def ops_signin(req: func.HttpRequest) -> func.HttpResponse:
    """Exchange the admin key for a dashboard session cookie: ``{csrfToken, expiresAt}``."""
    body = read_json(req, SignInIn, max_bytes=4096)
    session, cookie = await sign_in(req, body.key)
    return json_response(session, headers={**NO_STORE, "Set-Cookie": cookie})


@bp.route(route="ops/signout", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def ops_signout(req: func.HttpRequest) -> func.HttpResponse:
    """End the dashboard session (the cookie is cleared)."""
    await require_admin(req)
    return json_response({"signedOut": True}, headers={**NO_STORE, "Set-Cookie": clear_cookie_header()})


@bp.route(route="ops/rotate-key", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def ops_rotate_key(req: func.HttpRequest) -> func.HttpResponse:
    """A new admin key, shown once; the old key and every dashboard session stop working."""
    request = request_key(req.headers.get("idempotency-key"), "POST", "ops/rotate-key", None)
    body, record, context = await rotate_key(req, request)
    headers = dict(NO_STORE)
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
        **NO_STORE,
        "Content-Type": "application/zip",  # explicit: a mimetype alone would gain a text charset
        "Content-Disposition": 'attachment; filename="support-desk-teams-app.zip"',
    }
    return func.HttpResponse(body, headers=headers)


@bp.route(route="teams-setup", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def teams_setup_page(req: func.HttpRequest) -> func.HttpResponse:
    """The admin's step-by-step page for connecting the desk to Teams."""
    context = await require_admin(req)
    headers = {**page_headers(), **NO_STORE}
    if context.method == "key":
        # Opened with ?code= or a Bearer key: sign the browser in, so the package link works with the
        # cookie and the key never appears in the page.
        _, headers["Set-Cookie"] = session_for(await current_record())
    page = await teams_setup.setup_page(req.headers.get("host") or "")
    return func.HttpResponse(page, mimetype="text/html", charset="utf-8", headers=headers)


class TokenCheckIn(BaseModel):
    """A token Teams issued for this app, to check its issuer and audience (never stored)."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(default="", max_length=16 * 1024)


@bp.route(route="teams-setup/checks", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def teams_setup_checks(req: func.HttpRequest) -> func.HttpResponse:
    """The setup's live checks (POST: with a token to test); ``done`` when every one passes."""
    await require_admin(req)
    token = read_json(req, TokenCheckIn, max_bytes=20 * 1024, optional=True).token if req.method == "POST" else None
    return json_response(await teams_setup.checks(req.headers.get("host") or "", token), headers=NO_STORE)
