"""Messaging channels' webhooks (ACS through Event Grid, WhatsApp Cloud API, Twilio, Telegram, SendGrid
Inbound Parse), the signed media links agents open, and the admin's view of the channels.

Every inbound route answers 404 while its channel is not configured (as an unknown route would)
and 401 to a missing or wrong signature, before anything is read or stored.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

from shared.channels import acs, email, meta, status, telegram, twilio
from shared.channels.inbound import receive
from shared.channels.media import open_signed
from shared.channels.settings import channel_settings
from shared.config import get_settings
from shared.errors import Problem
from shared.identity.admin import require_admin
from shared.ops.bootstrap import bootstrapped
from shared.web.http import NO_STORE, endpoint, json_response

bp = func.Blueprint()

_JSON_LIMIT = 1024 * 1024  # a provider's batch of events
_EMAIL_LIMIT = 30 * 1024 * 1024  # SendGrid posts emails up to 30 MB with their attachments


def _not_connected() -> Problem:
    return Problem(404, "No such endpoint.")


def _unauthorized(what: str) -> Problem:
    return Problem(401, f"The request's {what} is missing or wrong.", kind="bad-signature")


def _body(req: func.HttpRequest, limit: int) -> bytes:
    body = req.get_body() or b""
    if len(body) > limit:
        raise Problem(413, f"The body is larger than {limit} bytes.")
    return body


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise Problem(400, "The body is not JSON.", kind="malformed-json") from exc


def _require(provider: str) -> None:
    if not channel_settings().connected(provider):
        raise _not_connected()


@bp.route(route="channels/acs", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def channel_acs(req: func.HttpRequest) -> func.HttpResponse:
    """Event Grid: the validation handshake (both schemas), then SMS and WhatsApp messages."""
    _require("acs")
    if not await acs.token_ok(req.params.get("token", "")):
        raise _unauthorized("token")
    if req.method == "OPTIONS":  # CloudEvents abuse protection: allow the origin that asks
        origin = req.headers.get("WebHook-Request-Origin", "")
        return func.HttpResponse(
            status_code=200, headers={"WebHook-Allowed-Origin": origin or "*", "WebHook-Allowed-Rate": "*"}
        )
    events = acs.events_of(_json(_body(req, _JSON_LIMIT)))
    code = acs.validation_code(events)
    if code is not None:
        return json_response({"validationResponse": code}, headers=NO_STORE)
    taken, settings = 0, channel_settings()
    for event in events:
        message = await acs.inbound(event, settings)
        if message is not None and message.address:
            taken += bool(await receive(message))
    return json_response({"received": taken}, headers=NO_STORE)


@bp.route(route="channels/whatsapp", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def channel_whatsapp(req: func.HttpRequest) -> func.HttpResponse:
    """Meta's WhatsApp Cloud API: the subscription check (GET) and signed message notifications."""
    _require("whatsapp")
    settings = channel_settings()
    if req.method == "GET":
        answer = meta.challenge(dict(req.params), settings.meta_verify_token)
        if answer is None:
            raise Problem(403, "The verify token is missing or wrong.", kind="bad-verify-token")
        return func.HttpResponse(answer, status_code=200, mimetype="text/plain")
    body = _body(req, _JSON_LIMIT)
    if not meta.signature_ok(body, req.headers.get("X-Hub-Signature-256", ""), settings.meta_app_secret):
        raise _unauthorized("X-Hub-Signature-256")
    taken = 0
    for message, ours in meta.messages_of(_json(body)):
        taken += bool(await receive(await meta.inbound(message, ours, settings)))
    return json_response({"received": taken}, headers=NO_STORE)


def _public_url(req: func.HttpRequest) -> str:
    """The URL Twilio called: on the public host when it is known (the worker may see another)."""
    host = get_settings().public_host
    if not host:
        return req.url
    query = req.url.split("?", 1)[1] if "?" in req.url else ""
    return f"https://{host}/api/channels/twilio" + (f"?{query}" if query else "")


@bp.route(route="channels/twilio", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def channel_twilio(req: func.HttpRequest) -> func.HttpResponse:
    """Twilio's incoming-message webhook (SMS and WhatsApp), answered with empty TwiML."""
    _require("twilio")
    settings = channel_settings()
    body = _body(req, _JSON_LIMIT)
    params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    signature = req.headers.get("X-Twilio-Signature", "")
    if not twilio.signature_ok(_public_url(req), params, signature, settings.twilio_auth_token):
        raise _unauthorized("X-Twilio-Signature")
    message = await twilio.inbound(params, settings)
    if message.address:
        await receive(message)
    return func.HttpResponse("<Response/>", status_code=200, mimetype="text/xml")


@bp.route(route="channels/telegram", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def channel_telegram(req: func.HttpRequest) -> func.HttpResponse:
    """A Telegram bot's webhook updates."""
    _require("telegram")
    header = req.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not telegram.secret_ok(header, channel_settings().telegram_secret_token):
        raise _unauthorized("X-Telegram-Bot-Api-Secret-Token")
    message = await telegram.inbound(_json(_body(req, _JSON_LIMIT)), channel_settings())
    taken = bool(await receive(message)) if message is not None and message.address else False
    return json_response({"received": int(taken)}, headers=NO_STORE)


@bp.route(route="channels/email", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def channel_email(req: func.HttpRequest) -> func.HttpResponse:
    """SendGrid Inbound Parse: one signed email as multipart/form-data."""
    _require("email")
    body = _body(req, _EMAIL_LIMIT)
    signature = req.headers.get(email.SIGNATURE_HEADER, "")
    timestamp = req.headers.get(email.TIMESTAMP_HEADER, "")
    if not email.signature_ok(body, signature, timestamp, channel_settings().sendgrid_inbound_public_key):
        raise _unauthorized(email.SIGNATURE_HEADER)
    if not (req.headers.get("content-type") or "").lower().startswith("multipart/form-data"):
        raise Problem(415, "Inbound Parse posts multipart/form-data.")
    form = {name: str(req.form.get(name) or "") for name in req.form.keys()}
    files = [
        (upload.filename or name, upload.content_type or "application/octet-stream", upload.read())
        for name, upload in req.files.items()
    ]
    message = email.inbound(form, files)
    if not message.address:
        raise Problem(422, "The email has no sender.", errors=[{"field": "from", "message": "is required"}])
    await receive(message)
    return json_response({"received": 1}, headers=NO_STORE)


@bp.route(route="channels/media/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def channel_media(req: func.HttpRequest) -> func.HttpResponse:
    """An image, recording or attachment a contact sent, behind its signed link."""
    found = await open_signed(req.route_params.get("name", ""), req.params.get("sig", ""))
    if found is None:
        raise Problem(404, "No such file.")
    data, content_type = found
    inline = content_type.split("/", 1)[0] in ("image", "audio", "video")
    return func.HttpResponse(
        data, status_code=200, mimetype=content_type,
        headers={"Content-Disposition": "inline" if inline else "attachment", "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "sandbox", "Cache-Control": "private, max-age=3600"},
    )  # fmt: skip


@bp.route(route="channels", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def channels_overview(req: func.HttpRequest) -> func.HttpResponse:
    """Admin: each channel, whether it is connected, the webhook URL to paste and its last event."""
    await require_admin(req)
    host = get_settings().public_host or req.url.split("://", 1)[-1].split("/", 1)[0]
    return json_response(await status.overview(host), headers=NO_STORE)
