"""Anonymous and visitor endpoints: health, plans, the widget and its chat API."""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import azure.functions as func
from pydantic import BaseModel, Field, field_validator

from shared.billing import seats as billing
from shared.billing.plans import get_catalogue
from shared.config import get_settings
from shared.conversations import hours
from shared.conversations import visitor as chat
from shared.conversations.machine import PageVisited
from shared.identity.visitor_tokens import bearer
from shared.ops.bootstrap import bootstrapped
from shared.ops.health import health_report, storage_ready
from shared.realtime.client import get_realtime
from shared.web.cors import origin_allowed, own_origin, with_cors
from shared.web.http import NO_STORE, MessageText, Problem, endpoint, json_response, query_int, read_json
from shared.web.idempotency import request_key
from shared.web.ratelimit import StorageRateLimiter, client_address
from shared.web.static_files import agent_page_headers, page_headers, serve

bp = func.Blueprint()

_CATALOGUE_CACHE = {"Cache-Control": "public, max-age=300"}
_VISITOR_METHODS = ["POST", "OPTIONS"]


class PageIn(BaseModel):
    """The page the widget is on, shown to agents. Only the address up to its path is kept: a query
    string or fragment may carry a visitor's tokens or personal data."""

    url: str = Field(max_length=2048, description="An http or https URL.")
    title: str = Field(default="", max_length=200)

    @field_validator("url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL")
        host = parts.netloc.rsplit("@", 1)[-1]  # never a user name or password
        return urlunsplit((parts.scheme.lower(), host, parts.path or "/", "", ""))

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # A lone surrogate (half an emoji cut off) could not be stored: it becomes "?".
        return " ".join(value.encode("utf-8", "replace").decode().split())

    def visited(self) -> PageVisited:
        """The command that notes this page on the visitor's session."""
        return PageVisited(self.url, self.title)


class WidgetSessionIn(BaseModel):
    """Start a session, or renew the token of ``sessionId``; ``page``: where the widget is."""

    sessionId: str | None = Field(default=None, max_length=64)
    page: PageIn | None = None


class ChatIn(BaseModel):
    """A visitor's message."""

    message: MessageText
    sessionId: str | None = Field(default=None, max_length=64)


class SessionRef(BaseModel):
    """A request about the caller's session."""

    sessionId: str | None = Field(default=None, max_length=64)


class TypingIn(SessionRef):
    """The visitor started or stopped typing."""

    isTyping: bool


class EmailIn(SessionRef):
    """An email address for a reply, left while the team is away."""

    email: str = Field(max_length=1000)


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def health(req: func.HttpRequest) -> func.HttpResponse:
    """Deployment metadata; 503 with ``ok: false`` when Storage is unreachable."""
    ok, body = await health_report()
    return json_response(body, 200 if ok else 503, headers=NO_STORE)


@bp.route(route="health/live", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def health_live(req: func.HttpRequest) -> func.HttpResponse:
    """The worker is up."""
    return json_response({"status": "live"}, headers=NO_STORE)


@bp.route(route="health/ready", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def health_ready(req: func.HttpRequest) -> func.HttpResponse:
    """The worker can serve: Storage answers."""
    ready = await storage_ready()
    return json_response(
        {"status": "ready" if ready else "not-ready", "storage": "ok" if ready else "unavailable"},
        200 if ready else 503,
        headers=NO_STORE,
    )


@bp.route(route="plan", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def plan(req: func.HttpRequest) -> func.HttpResponse:
    """The current plan, seats used and the grace state."""
    status = await billing.seat_status()
    return json_response(status.public(get_settings().upgrade_url), headers=NO_STORE)


@bp.route(route="plans", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def plans(req: func.HttpRequest) -> func.HttpResponse:
    """The plans catalogue (Start / Growth / Professional): the one ``/api/plan`` reads too."""
    listed = await get_catalogue().list_plans()
    return json_response({"plans": [p.public() for p in listed]}, headers=_CATALOGUE_CACHE)


@bp.route(route="plans/{planId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def plan_by_id(req: func.HttpRequest) -> func.HttpResponse:
    """One plan of the catalogue."""
    plan_id = req.route_params.get("planId", "").lower()
    found = await get_catalogue().find_plan(plan_id)
    if found is None:
        known = ", ".join(p.plan_id for p in await get_catalogue().list_plans())
        raise Problem(404, f"No plan '{plan_id[:40]}'; known plans: {known}.", kind="plan-not-found")
    return json_response(found.public(), headers=_CATALOGUE_CACHE)


# --- the widget -------------------------------------------------------------------------------


@bp.route(route="widget.js", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def widget_script(req: func.HttpRequest) -> func.HttpResponse:
    """The widget script the one-line snippet loads."""
    return serve(req, "widget.js", max_age=300, extra_headers={"Access-Control-Allow-Origin": "*"})


@bp.route(route="vendor/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def vendor_script(req: func.HttpRequest) -> func.HttpResponse:
    """Bundled browser libraries (SignalR, Teams JS, charts), served by the app, no CDN."""
    files = {"signalr.js": "vendor/signalr.min.js", "teams.js": "vendor/teams.min.js",
             "uplot.js": "vendor/uplot.min.js", "uplot.css": "vendor/uplot.min.css"}  # fmt: skip
    name = req.route_params.get("name", "")
    if name not in files:
        raise Problem(404, f"No bundled file {name}.", kind="not-found")
    return serve(req, files[name], max_age=86400, extra_headers={"Access-Control-Allow-Origin": "*"})


@bp.route(route="demo", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def demo_page(req: func.HttpRequest) -> func.HttpResponse:
    """A sample company page with the snippet on it."""
    # It shows visitors' text; the demo may frame itself, nothing else may.
    return serve(req, "demo.html", max_age=60, extra_headers=page_headers(frame_ancestors="'self'"))


@bp.route(route="agent", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def agent_console(req: func.HttpRequest) -> func.HttpResponse:
    """The agent console (the Teams tab); its API calls carry the agent's Teams token."""
    return serve(req, "agent.html", max_age=60, extra_headers=agent_page_headers())


@bp.route(route="agent.js", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def agent_console_script(req: func.HttpRequest) -> func.HttpResponse:
    """The console's script."""
    return serve(req, "agent.js", max_age=300)


@bp.route(route="agent.css", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def agent_console_styles(req: func.HttpRequest) -> func.HttpResponse:
    """The console's styles."""
    return serve(req, "agent.css", max_age=300)


@bp.route(route="widget/session", methods=_VISITOR_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
@with_cors
@endpoint
@bootstrapped
async def widget_session(req: func.HttpRequest) -> func.HttpResponse:
    """Issue ``{sessionId, token, expiresAt}`` to a widget on an allowed website."""
    if not origin_allowed(req):
        raise Problem(403, "This website is not allowed to use the chat widget.", kind="origin-not-allowed")
    settings = get_settings()
    body = read_json(req, WidgetSessionIn, max_bytes=settings.max_body_bytes)
    if body.sessionId and req.headers.get("authorization"):
        # A renewal proves it owns the session, so it isn't counted against new sessions
        # (visitors behind one address would otherwise lose their chats to a busy minute).
        page = body.page.visited() if body.page else None
        issued = await chat.renew_session(bearer(req.headers.get("authorization")), body.sessionId, page)
        return json_response(issued, 201, headers=NO_STORE)
    verdict = await StorageRateLimiter().hit(
        "widget-session", client_address(req.headers), settings.widget_sessions_per_minute
    )
    verdict.raise_if_refused("new chat sessions from this address")
    issued = await chat.open_session(
        req.headers.get("origin") or own_origin(req), body.page.visited() if body.page else None
    )
    return json_response(issued, 201, headers={**NO_STORE, **verdict.headers()})


@bp.route(route="chat", methods=_VISITOR_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
@with_cors
@endpoint
@bootstrapped
async def chat_message(req: func.HttpRequest) -> func.HttpResponse:
    """A visitor's message: the bot's reply (200), or queued for the agent (202); SSE on request."""
    token = bearer(req.headers.get("authorization"))
    await chat.authenticate_visitor(token)  # the caller before the body: a stranger's body is never parsed
    body = read_json(req, ChatIn, max_bytes=get_settings().max_body_bytes)
    session_id = await chat.authenticate_visitor(token, body.sessionId)
    request = request_key(req.headers.get("idempotency-key"), "POST", f"chat/{session_id}", body.message)
    if "text/event-stream" in (req.headers.get("accept") or ""):
        events = [event async for event in chat.stream_message(session_id, body.message, request)]
        return func.HttpResponse(_sse(events), mimetype="text/event-stream", headers=NO_STORE)
    result = await chat.post_message(session_id, body.message, request)
    return json_response(result.body, result.status, headers={**NO_STORE, **result.headers})


def _sse(events: list[dict[str, object]]) -> str:
    lines = [f"data: {json.dumps(event, separators=(',', ':'))}\n\n" for event in events]
    return "".join(lines) + "data: [DONE]\n\n"


async def _visitor(req: func.HttpRequest, session_id: str | None) -> str:
    return await chat.authenticate_visitor(bearer(req.headers.get("authorization")), session_id)


@bp.route(route="chat/{sessionId}/messages", methods=["GET", "OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
@with_cors
@endpoint
@bootstrapped
async def chat_history(req: func.HttpRequest) -> func.HttpResponse:
    """Messages after ``?after=`` for the widget (history on reload, catch-up after reconnect)."""
    session_id = await _visitor(req, req.route_params.get("sessionId"))
    after = query_int(req, "after", default=0, low=0, high=10**9)
    return json_response(await chat.visitor_messages(session_id, after), headers=NO_STORE)


@bp.route(route="chat/handoff", methods=["POST", "DELETE", "OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
@with_cors
@endpoint
@bootstrapped
async def chat_handoff(req: func.HttpRequest) -> func.HttpResponse:
    """POST: the visitor asks for a person. DELETE: they continue with the assistant instead."""
    await _visitor(req, None)  # the caller before the body: a stranger's body is never parsed
    body = read_json(req, SessionRef, max_bytes=get_settings().max_body_bytes, optional=req.method == "DELETE")
    session_id = await _visitor(req, body.sessionId)
    request = request_key(req.headers.get("idempotency-key"), req.method, f"chat/{session_id}/handoff", None)
    if req.method == "DELETE":
        return json_response(await chat.cancel_handoff(session_id, request), headers=NO_STORE)
    return json_response(await chat.request_handoff(session_id, request), headers=NO_STORE)


@bp.route(route="chat/email", methods=_VISITOR_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
@with_cors
@endpoint
@bootstrapped
async def chat_email(req: func.HttpRequest) -> func.HttpResponse:
    """The visitor leaves an email address for a reply (validated, stored on the session, audited)."""
    await _visitor(req, None)  # the caller before the body: a stranger's body is never parsed
    body = read_json(req, EmailIn, max_bytes=4096)
    session_id = await _visitor(req, body.sessionId)
    return json_response(await hours.leave_email(session_id, body.email), headers=NO_STORE)


@bp.route(route="chat/typing", methods=_VISITOR_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
@with_cors
@endpoint
@bootstrapped
async def chat_typing(req: func.HttpRequest) -> func.HttpResponse:
    """The visitor is typing: tell the owning agent."""
    await _visitor(req, None)  # the caller before the body: a stranger's body is never parsed
    body = read_json(req, TypingIn, max_bytes=1024)
    session_id = await _visitor(req, body.sessionId)
    await chat.visitor_typing(session_id, body.isTyping)
    return json_response({"ok": True}, 202, headers=NO_STORE)


@bp.route(route="negotiate", methods=_VISITOR_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
@with_cors
@endpoint
@bootstrapped
async def negotiate(req: func.HttpRequest) -> func.HttpResponse:
    """SignalR connection info for the widget, bound to userId = its session id."""
    session_id = await _visitor(req, None)
    realtime = get_realtime()
    if not realtime.enabled:
        raise Problem(
            503, "Real-time messaging is not configured; poll for messages instead.", kind="realtime-unavailable"
        )
    return json_response(await realtime.negotiate_async(session_id), headers=NO_STORE)


@bp.route(route="{*path}", auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def not_found(req: func.HttpRequest) -> func.HttpResponse:
    """Every other path: a 404 problem rather than the host's empty page."""
    raise Problem(404, "No such endpoint.", kind="not-found")


# --- the Teams app's privacy statement and terms of use ----------------------------------------
# The manifest points at these unless PRIVACY_URL / TERMS_URL point elsewhere (shared/ops/teams_package.py).


@bp.route(route="privacy", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def privacy_page(req: func.HttpRequest) -> func.HttpResponse:
    """A plain privacy statement for the Teams app and the chat."""
    return serve(req, "privacy.html", max_age=300, extra_headers=page_headers())


@bp.route(route="terms", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def terms_page(req: func.HttpRequest) -> func.HttpResponse:
    """Plain terms of use for the Teams app and the chat."""
    return serve(req, "terms.html", max_age=300, extra_headers=page_headers())
