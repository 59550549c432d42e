"""The API's OpenAPI 3.1 document (``/api/openapi.json``) and a plain reference page (``/api/docs``).

The table below describes every route of the other blueprints with the models they validate with;
``tests/integration/test_openapi.py`` fails when a registered route is missing from it, and Schemathesis
holds the running app to it.
"""

from __future__ import annotations

import functools
import html
import json
from typing import Any

import azure.functions as func

from blueprints import admin, agent, agent_desk, analytics, approvals, control, drafts, knowledge, public
from shared.channels import email as email_channel
from shared.conversations import approvals as card_approvals
from shared.identity.devidentity import DevSignIn
from shared.web.http import endpoint, json_response
from shared.web.openapi import (
    ADMIN,
    AGENT,
    AGENT_OR_ADMIN,
    COMMON_ERRORS,
    HTML,
    JSON,
    VISITOR,
    Body,
    Operation,
    Param,
    document,
    operations,
    register,
)  # fmt: skip
from shared.webhooks import models as hooks

bp = func.Blueprint()
_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"  # text only, never framed

TITLE = "Support Desk API"
VERSION = "1.0"

_LIMIT = Param("limit", schema={"type": "integer", "minimum": 1})
_CURSOR = Param("cursor")
_AFTER = Param("after", schema={"type": "integer", "minimum": 0})
_IDEMPOTENCY = Param("Idempotency-Key", "header", description="Makes a retry return the first answer (24 hours).")
_TEXT = Body(media="text/plain", schema={"type": "string"})
_ANY = Body(media="*/*", schema={"type": "string"})
_PAGE = Body(media=HTML, schema={"type": "string"})
FORM, MULTIPART = "application/x-www-form-urlencoded", "multipart/form-data"
_NO_CONTENT = {204: Body()}
_PREFLIGHT = {204: Body(description="CORS preflight answered")}


def _preflight(route: str) -> Operation:
    return Operation(route, "OPTIONS", "CORS preflight of a widget route.", responses=_PREFLIGHT, errors=(403, 404))


def _static(route: str, summary: str, body: Body = _PAGE) -> Operation:
    return Operation(route, "GET", summary, responses={200: body, 304: Body()}, errors=(404, 503), tag="pages")


def _hook(route: str, method: str, summary: str, **kwargs: Any) -> Operation:
    return Operation(route, method, summary, ADMIN, tag="webhooks", **kwargs)


register(
    # --- anyone ---
    Operation("health", "GET", "Deployment metadata; 503 when Storage is unreachable.", tag="health"),
    Operation("health/live", "GET", "The worker is up.", tag="health"),
    Operation("health/ready", "GET", "The worker can serve (Storage answers).", tag="health"),
    Operation("plan", "GET", "The current plan, seats used and the grace state.", tag="billing"),
    Operation("plans", "GET", "The plans catalogue.", tag="billing"),
    Operation("plans/{planId}", "GET", "One plan of the catalogue.", tag="billing"),
    _static("widget.js", "The widget script.", Body(media="application/javascript", schema={"type": "string"})),
    _static("vendor/{name}", "Bundled browser libraries.", _ANY),
    _static("demo", "A sample page with the widget."),
    _static("agent", "The agent console (Teams tab)."),
    _static("agent.js", "The console's script.", Body(media="application/javascript", schema={"type": "string"})),
    _static("agent.css", "The console's styles.", Body(media="text/css", schema={"type": "string"})),
    _static("privacy", "The privacy statement."),
    _static("terms", "The terms of use."),
    _static("dashboard/{name}", "The dashboard's scripts and styles.", _ANY),
    Operation("dev/jwks", "GET", "Development only: the dev identity's keys (404 elsewhere).", tag="dev"),
    _static("dev/signin", "Development only: the dev sign-in page (404 elsewhere)."),
    Operation(
        "dev/token",
        "POST",
        "Development only: a Teams-shaped token (404 elsewhere).",
        request=Body(DevSignIn),
        tag="dev",
    ),  # fmt: skip
    # --- visitors (the widget) ---
    Operation(
        "widget/session",
        "POST",
        "Open a chat session, or renew its token (with the visitor token).",
        request=Body(public.WidgetSessionIn),
        responses={201: Body()},
        errors=(*COMMON_ERRORS, 401, 403),
        tag="visitor",
    ),  # fmt: skip
    _preflight("widget/session"),
    Operation(
        "chat",
        "POST",
        "A visitor's message: the bot's reply (200) or queued for a person (202).",
        VISITOR,
        request=Body(public.ChatIn),
        responses={200: Body(), 202: Body()},
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="visitor",
    ),  # fmt: skip
    _preflight("chat"),
    Operation(
        "chat/{sessionId}/messages",
        "GET",
        "Messages after ?after=.",
        VISITOR,
        params=(_AFTER,),
        errors=(*COMMON_ERRORS, 403),
        tag="visitor",
    ),  # fmt: skip
    _preflight("chat/{sessionId}/messages"),
    Operation(
        "chat/handoff",
        "POST",
        "Ask for a person.",
        VISITOR,
        request=Body(public.SessionRef),
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="visitor",
    ),  # fmt: skip
    Operation(
        "chat/handoff",
        "DELETE",
        "Continue with the assistant instead of waiting.",
        VISITOR,
        request=Body(public.SessionRef),
        request_required=False,
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="visitor",
    ),  # fmt: skip
    _preflight("chat/handoff"),
    Operation(
        "chat/email",
        "POST",
        "Leave an email address while the team is away.",
        VISITOR,
        request=Body(public.EmailIn),
        responses={200: Body(), 201: Body(), 202: Body()},
        errors=(*COMMON_ERRORS, 403),
        tag="visitor",
    ),  # fmt: skip
    _preflight("chat/email"),
    Operation(
        "chat/typing",
        "POST",
        "The visitor is typing.",
        VISITOR,
        request=Body(public.TypingIn),
        responses={202: Body()},
        errors=(*COMMON_ERRORS, 403),
        tag="visitor",
    ),  # fmt: skip
    _preflight("chat/typing"),
    Operation(
        "chat/rating",
        "POST",
        "Rate a closed conversation (once).",
        VISITOR,
        request=Body(analytics.RatingIn),
        responses={200: Body(), 201: Body()},
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="visitor",
    ),  # fmt: skip
    _preflight("chat/rating"),
    Operation(
        "negotiate",
        "POST",
        "SignalR connection info for the widget.",
        VISITOR,
        errors=(*COMMON_ERRORS, 403),
        tag="visitor",
    ),  # fmt: skip
    _preflight("negotiate"),
    # --- agents (Teams) ---
    Operation("agent/me", "GET", "The signed-in agent.", AGENT, tag="agent"),
    Operation("agent/negotiate", "POST", "SignalR connection info for the console.", AGENT, tag="agent"),
    Operation(
        "agent/sessions",
        "GET",
        "Sessions for agents, newest activity first.",
        AGENT,
        params=(_LIMIT, _CURSOR, Param("status"), Param("claimedBy")),
        tag="agent",
    ),  # fmt: skip
    Operation(
        "agent/sessions/{id}/messages",
        "GET",
        "A session's messages after ?after=.",
        AGENT,
        params=(_AFTER,),
        tag="agent",
    ),  # fmt: skip
    Operation(
        "agent/sessions/{id}/claim",
        "POST",
        "Claim a session (seat-gated, atomic).",
        AGENT,
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="agent",
    ),  # fmt: skip
    Operation(
        "agent/sessions/{id}/message",
        "POST",
        "The owning agent's reply.",
        AGENT,
        request=Body(agent.AgentMessageIn),
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="agent",
    ),  # fmt: skip
    Operation(
        "agent/sessions/{id}/close",
        "POST",
        "Close a session (owning agent).",
        AGENT,
        request=Body(agent.CloseIn),
        request_required=False,
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="agent",
    ),  # fmt: skip
    Operation(
        "agent/sessions/{id}/typing",
        "POST",
        "The owning agent is typing.",
        AGENT,
        request=Body(agent.TypingIn),
        responses={202: Body()},
        errors=(*COMMON_ERRORS, 403),
        tag="agent",
    ),
    # --- admin (key or dashboard cookie) ---
    Operation(
        "cost",
        "GET",
        "Tokens and cost per bucket.",
        ADMIN,
        params=(Param("window"), Param("bucketHours", schema={"type": "integer"})),
        tag="admin",
    ),  # fmt: skip
    Operation(
        "sessions",
        "GET",
        "Sessions by cost or last activity.",
        ADMIN,
        params=(_LIMIT, _CURSOR, Param("sortBy")),
        tag="admin",
    ),  # fmt: skip
    Operation(
        "sessions/search",
        "GET",
        "Full-text search over every message.",
        ADMIN,
        params=(Param("q"), _LIMIT, _CURSOR),
        tag="admin",
    ),  # fmt: skip
    Operation(
        "sessions/{id}/transcript",
        "GET",
        "One session's messages with cost.",
        ADMIN,
        params=(_AFTER, _LIMIT),
        tag="admin",
    ),  # fmt: skip
    Operation(
        "sessions/{id}/timeline",
        "GET",
        "A session's messages and audit events.",
        ADMIN,
        params=(_LIMIT, _CURSOR),
        tag="admin",
    ),  # fmt: skip
    Operation(
        "dashboard",
        "GET",
        "The dashboard page (401 with the sign-in page for a browser).",
        ADMIN,
        responses={200: _PAGE},
        errors=(404, 429, 503),
        tag="pages",
    ),  # fmt: skip
    Operation("ops/session", "GET", "Whether the caller is signed in, and the CSRF token.", ADMIN, tag="admin"),
    Operation(
        "ops/signin",
        "POST",
        "Exchange the admin key for a dashboard cookie.",
        request=Body(admin.SignInIn),
        errors=(*COMMON_ERRORS, 401),
        tag="admin",
    ),  # fmt: skip
    Operation("ops/signout", "POST", "End the dashboard session.", ADMIN, errors=(*COMMON_ERRORS, 403), tag="admin"),
    Operation(
        "ops/rotate-key",
        "POST",
        "A new admin key, shown once.",
        ADMIN,
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="admin",
    ),  # fmt: skip
    Operation(
        "teams-app.zip",
        "GET",
        "This deployment's Teams app package.",
        ADMIN,
        responses={200: Body(media="application/zip", schema={"type": "string"})},
        tag="admin",
    ),  # fmt: skip
    Operation("teams-setup", "GET", "The guided Teams setup page.", ADMIN, responses={200: _PAGE}, tag="admin"),
    Operation("teams-setup/checks", "GET", "The Teams setup's live checks; done when all pass.", ADMIN, tag="admin"),
    Operation(
        "teams-setup/checks",
        "POST",
        "The Teams setup's live checks, with a token Teams issued to test (never stored).",
        ADMIN,
        request=Body(admin.TokenCheckIn),
        request_required=False,
        errors=(*COMMON_ERRORS, 403),
        tag="admin",
    ),  # fmt: skip
    Operation(
        "config",
        "GET",
        "The effective runtime configuration and its ETag.",
        ADMIN,
        responses={200: Body(), 304: Body()},
        params=(Param("If-None-Match", "header"),),
        tag="config",
    ),
    Operation(
        "config",
        "PATCH",
        "A JSON merge patch of the configuration (If-Match required).",
        ADMIN,
        request=Body(control.PatchIn),
        params=(Param("If-Match", "header"), _IDEMPOTENCY),
        errors=(*COMMON_ERRORS, 403, 412, 428),
        tag="config",
    ),  # fmt: skip
    Operation(
        "config/presets/{name}",
        "POST",
        "Apply a preset.",
        ADMIN,
        params=(Param("If-Match", "header"), _IDEMPOTENCY),
        errors=(*COMMON_ERRORS, 403, 412),
        tag="config",
    ),  # fmt: skip
    Operation(
        "audit",
        "GET",
        "Audit events, newest first, filtered.",
        ADMIN,
        params=(Param("sessionId"), Param("event"), Param("actor"), Param("from"), Param("to"), _LIMIT, _CURSOR),
        tag="audit",
    ),  # fmt: skip
    Operation(
        "audit/stats", "GET", "Counts by event over 24 h or 7 d.", ADMIN, params=(Param("window"),), tag="audit"
    ),  # fmt: skip
    Operation(
        "analytics",
        "GET",
        "Conversations, handoffs, CSAT, cost and agents per bucket.",
        ADMIN,
        params=(Param("from"), Param("to"), Param("bucket")),
        tag="analytics",
    ),  # fmt: skip
    # --- knowledge (admin) ---
    Operation(
        "knowledge/sources", "GET", "The sources, oldest first.", ADMIN, params=(_LIMIT, _CURSOR), tag="knowledge"
    ),  # fmt: skip
    Operation(
        "knowledge/sources",
        "POST",
        "Add a source (JSON; a file upload as multipart/form-data).",
        ADMIN,
        request=Body(knowledge.SourceIn),
        responses={201: Body()},
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="knowledge",
    ),  # fmt: skip
    Operation("knowledge/sources/{id}", "GET", "One source.", ADMIN, tag="knowledge"),
    Operation(
        "knowledge/sources/{id}",
        "PATCH",
        "Change a source's title, enabled, refresh.",
        ADMIN,
        request=Body(knowledge.SourcePatch),
        errors=(*COMMON_ERRORS, 403),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/sources/{id}",
        "DELETE",
        "Remove a source and its content.",
        ADMIN,
        responses=_NO_CONTENT,
        errors=(*COMMON_ERRORS, 403),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/sources/{id}/sync",
        "POST",
        "Fetch or read a source again.",
        ADMIN,
        responses={202: Body()},
        errors=(*COMMON_ERRORS, 403),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/sources/{id}/pages",
        "GET",
        "A source's pages as last synced.",
        ADMIN,
        params=(_LIMIT, _CURSOR),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/search",
        "GET",
        "The best chunks for ?q=.",
        ADMIN,
        params=(Param("q"), Param("top", schema={"type": "integer"})),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/test",
        "POST",
        "Try a question on the bot.",
        ADMIN,
        request=Body(knowledge.QuestionIn),
        errors=(*COMMON_ERRORS, 403, 409),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/gaps", "GET", "Unanswered questions, grouped.", ADMIN, params=(_LIMIT, _CURSOR), tag="knowledge"
    ),  # fmt: skip
    Operation(
        "knowledge/gaps/{groupId}/dismiss",
        "POST",
        "Hide a group of questions.",
        ADMIN,
        errors=(*COMMON_ERRORS, 403),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/drafts",
        "GET",
        "Draft Q&As from agents' notes.",
        ADMIN,
        params=(Param("status"), _LIMIT),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/drafts/{id}",
        "PATCH",
        "Reword a draft.",
        ADMIN,
        request=Body(drafts.DraftPatch),
        errors=(*COMMON_ERRORS, 403),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/drafts/{id}",
        "DELETE",
        "Discard a draft.",
        ADMIN,
        responses={200: Body(), 204: Body()},
        errors=(*COMMON_ERRORS, 403),
        tag="knowledge",
    ),  # fmt: skip
    Operation(
        "knowledge/drafts/{id}/approve",
        "POST",
        "Approve a draft as a Q&A source.",
        ADMIN,
        responses={200: Body(), 201: Body()},
        errors=(*COMMON_ERRORS, 403),
        tag="knowledge",
    ),  # fmt: skip
    # --- webhooks (admin) ---
    _hook("webhooks", "GET", "Every webhook endpoint.", responses={200: Body(hooks.EndpointList)}),
    _hook(
        "webhooks",
        "POST",
        "Register an endpoint; its secret is in this answer only.",
        request=Body(hooks.EndpointIn),
        responses={201: Body(hooks.EndpointWithSecret)},
        errors=(*COMMON_ERRORS, 403),
    ),  # fmt: skip
    _hook("webhooks/{id}", "GET", "One endpoint.", responses={200: Body(hooks.EndpointOut)}),
    _hook(
        "webhooks/{id}",
        "PATCH",
        "Change url, events, enabled, description (merge).",
        request=Body(hooks.EndpointPatch),
        responses={200: Body(hooks.EndpointOut)},
        errors=(*COMMON_ERRORS, 403),
    ),  # fmt: skip
    _hook("webhooks/{id}", "DELETE", "Remove an endpoint.", responses=_NO_CONTENT, errors=(*COMMON_ERRORS, 403)),
    _hook(
        "webhooks/{id}/rotate-secret",
        "POST",
        "A new secret; the old one signs too for graceHours.",
        request=Body(hooks.RotateIn),
        request_required=False,
        responses={200: Body(hooks.EndpointWithSecret)},
        errors=(*COMMON_ERRORS, 403),
    ),  # fmt: skip
    _hook(
        "webhooks/{id}/deliveries",
        "GET",
        "The endpoint's deliveries, newest first.",
        responses={200: Body(hooks.DeliveryList)},
        params=(_LIMIT, _CURSOR),
    ),  # fmt: skip
    _hook(
        "webhooks/{id}/deliveries/{deliveryId}/retry",
        "POST",
        "Attempt a delivery again now.",
        responses={200: Body(hooks.DeliveryOut)},
        errors=(*COMMON_ERRORS, 403),
    ),  # fmt: skip
    _hook(
        "webhooks/{id}/test",
        "POST",
        "Send a signed webhook.test event now.",
        responses={200: Body(hooks.DeliveryOut)},
        errors=(*COMMON_ERRORS, 403),
    ),  # fmt: skip
    # --- approval cards (agents) ---
    _static("agent-approvals.js", "The console's approval cards script.", _ANY),
    Operation(
        "agent/approvals",
        "GET",
        "Approval cards, oldest first (?status=pending by default).",
        AGENT,
        params=(
            Param("status", schema={"type": "string", "enum": list(card_approvals.STATUSES)}),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": 200}),
            _CURSOR,
        ),
        tag="agent",
    ),  # fmt: skip
    Operation(
        "agent/approvals/{id}/send",
        "POST",
        "Send the card's reply as drafted, or with the agent's edit as text (409 once handled).",
        AGENT,
        request=Body(approvals.SendIn),
        request_required=False,
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="agent",
    ),  # fmt: skip
    Operation(
        "agent/approvals/{id}/dismiss",
        "POST",
        "Drop the card: nothing is sent (409 once handled).",
        AGENT,
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="agent",
    ),  # fmt: skip
    *(
        Operation(
            f"agent/approvals/{{id}}/{action}",
            "POST",
            summary,
            AGENT,
            request=Body(approvals.InstructionIn),
            params=(_IDEMPOTENCY,),
            errors=(*COMMON_ERRORS, 403),
            tag="agent",
        )
        for action, summary in (
            ("rephrase", "The bot drafts the reply again following the instruction (a new card)."),
            ("tell-ai", "An instruction the bot follows for the rest of the conversation; it drafts again."),
        )
    ),  # fmt: skip
    # --- the agent desk: saved replies (admins manage, agents read), colleagues, notes, transfer, search ---
    Operation(
        "replies",
        "GET",
        "Every saved reply (agents with their Teams token, or admins).",
        AGENT_OR_ADMIN,
        tag="agent-desk",
    ),  # fmt: skip
    Operation(
        "replies",
        "POST",
        "Add a saved reply (409 when its shortcut is taken).",
        ADMIN,
        request=Body(agent_desk.ReplyIn),
        responses={201: Body()},
        errors=(*COMMON_ERRORS, 403),
        tag="agent-desk",
    ),  # fmt: skip
    Operation(
        "replies/{id}",
        "PATCH",
        'Change a saved reply\'s title, text or shortcut ("" removes the shortcut).',
        ADMIN,
        request=Body(agent_desk.ReplyPatch),
        errors=(*COMMON_ERRORS, 403),
        tag="agent-desk",
    ),  # fmt: skip
    Operation(
        "replies/{id}",
        "DELETE",
        "Remove a saved reply.",
        ADMIN,
        responses=_NO_CONTENT,
        errors=(*COMMON_ERRORS, 403),
        tag="agent-desk",
    ),  # fmt: skip
    Operation("agent/colleagues", "GET", "The other agents who opened the console.", AGENT, tag="agent-desk"),
    Operation(
        "agent/sessions/{id}/notes",
        "GET",
        "A conversation's private notes, oldest first (never shown to the visitor).",
        AGENT,
        tag="agent-desk",
    ),  # fmt: skip
    Operation(
        "agent/sessions/{id}/notes",
        "POST",
        "Add a private note to a conversation.",
        AGENT,
        request=Body(agent_desk.NoteIn),
        responses={201: Body()},
        tag="agent-desk",
    ),  # fmt: skip
    Operation(
        "agent/sessions/{id}/transfer",
        "POST",
        "Hand a claimed conversation to a colleague (owner only; the seat rules apply to the colleague).",
        AGENT,
        request=Body(agent_desk.TransferIn),
        params=(_IDEMPOTENCY,),
        errors=(*COMMON_ERRORS, 403),
        tag="agent-desk",
    ),  # fmt: skip
    Operation(
        "agent/search",
        "GET",
        "The caller's own and waiting conversations whose messages match ?q=.",
        AGENT,
        params=(
            Param("q", schema={"type": "string", "minLength": 1, "maxLength": 200}, required=True),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": 50}),
            _CURSOR,
        ),
        tag="agent-desk",
    ),  # fmt: skip
    # --- channels: the providers' webhooks (raw bodies: the signature covers the bytes as sent) ---
    Operation(
        "channels", "GET", "Which channels are connected, their webhook URLs and last events.", ADMIN, tag="channels"
    ),  # fmt: skip
    *(
        Operation(
            f"channels/{name}",
            "POST",
            summary,
            request=Body(media=media, schema={"type": "object"} if media == JSON else {"type": "string"}),
            responses={200: Body(media="text/xml", schema={"type": "string"}) if name == "twilio" else Body()},
            params=params,
            errors=(*COMMON_ERRORS, 401),
            tag="channels",
        )
        for name, media, summary, params in (
            ("acs", JSON, "Event Grid events (SMS, WhatsApp) and its validation handshake.", (Param("token"),)),
            ("whatsapp", JSON, "Meta WhatsApp Cloud API notifications.", (Param("X-Hub-Signature-256", "header"),)),
            (
                "twilio",
                FORM,
                "Twilio's incoming message (answered with empty TwiML).",
                (Param("X-Twilio-Signature", "header"),),
            ),
            ("telegram", JSON, "A Telegram bot's update.", (Param("X-Telegram-Bot-Api-Secret-Token", "header"),)),
            (
                "email",
                MULTIPART,
                "SendGrid Inbound Parse: one signed email.",
                (Param(email_channel.SIGNATURE_HEADER, "header"), Param(email_channel.TIMESTAMP_HEADER, "header")),
            ),
        )
    ),  # fmt: skip
    Operation(
        "channels/acs",
        "OPTIONS",
        "Event Grid's CloudEvents validation handshake.",
        responses={200: Body(media="text/plain", schema={"type": "string"})},
        params=(Param("token"), Param("WebHook-Request-Origin", "header")),
        errors=(*COMMON_ERRORS, 401),
        tag="channels",
    ),  # fmt: skip
    Operation(
        "channels/whatsapp",
        "GET",
        "Meta's verification handshake: hub.challenge back when hub.verify_token matches.",
        responses={200: _TEXT},
        params=(Param("hub.mode"), Param("hub.verify_token"), Param("hub.challenge")),
        errors=(*COMMON_ERRORS, 401, 403),
        tag="channels",
    ),  # fmt: skip
    _static("channels/media/{name}", "A stored channel media file.", _ANY),
    # --- this document ---
    Operation("openapi.json", "GET", "This document.", tag="reference"),
    _static("docs", "A plain reference page of this document."),
)


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document (built once per worker: the routes don't change while it runs)."""
    return document(operations(), title=TITLE, version=VERSION,
                    description="Every route of the support desk: visitors, agents and admins.")  # fmt: skip


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def openapi_json(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI 3.1 document of this API."""
    return json_response(openapi_document(), headers={"Cache-Control": "public, max-age=300"})


@bp.route(route="docs", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def docs(req: func.HttpRequest) -> func.HttpResponse:
    """A reference page listing every operation, rendered on the server as escaped text (no scripts, no CDN)."""
    return func.HttpResponse(
        render_docs(openapi_document()), mimetype="text/html", charset="utf-8",
        headers={"Cache-Control": "public, max-age=300", "Content-Security-Policy": _PAGE_POLICY},
    )  # fmt: skip


def render_docs(spec: dict[str, Any]) -> str:
    """The reference page: each operation with who may call it, its body's schema, and its answers."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>", esc(spec["info"]["title"]), "</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.5rem;overflow:auto}"
        "h2{margin-top:2rem;border-top:1px solid #ddd;padding-top:1rem}</style>",
        "<h1>", esc(spec["info"]["title"]), "</h1><p>Machine-readable: <a href='openapi.json'>openapi.json</a> ",
        "(OpenAPI ", esc(spec["openapi"]), "). Every path is under <code>/api</code>.</p>",
    ]  # fmt: skip
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            who = ", ".join(name for req in op["security"] for name in req) or "anyone"
            parts += ["<h2><code>", esc(method.upper()), " /api", esc(path), "</code></h2><p>", esc(op["summary"]),
                      "</p><p>Credentials: ", esc(who), "</p>"]  # fmt: skip
            body = op.get("requestBody")
            if body:
                for media, content in body["content"].items():
                    parts += ["<p>Body (", esc(media), "):</p><pre>", esc(json.dumps(content["schema"], indent=1)),
                              "</pre>"]  # fmt: skip
            answers = ", ".join(f"{status} {answer['description']}" for status, answer in op["responses"].items())
            parts += ["<p>Answers: ", esc(answers), "</p>"]
    parts.append("<h2>Schemas</h2><pre>")
    parts.append(esc(json.dumps(spec["components"]["schemas"], indent=1)))
    parts.append("</pre></html>")
    return "".join(parts)
