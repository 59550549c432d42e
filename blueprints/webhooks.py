"""Outbound webhook endpoints (admin key or dashboard cookie) and the queue trigger that delivers to them."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.identity.admin import require_admin
from shared.storage.tables import WEBHOOKS_QUEUE
from shared.storage.webhooks import DeliveryNotice
from shared.web.http import NO_STORE, decode_cursor, encode_cursor, endpoint, json_response, query_int, read_json
from shared.webhooks import endpoints
from shared.webhooks.delivery import attempt
from shared.webhooks.models import EndpointIn, EndpointPatch, RotateIn

bp = func.Blueprint()
log = logging.getLogger(__name__)

_MAX_BODY = 8 * 1024
_DELIVERIES = "webhook-deliveries"


def _id(req: func.HttpRequest) -> str:
    return req.route_params.get("id", "")


@bp.route(route="webhooks", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def webhooks(req: func.HttpRequest) -> func.HttpResponse:
    """GET: every endpoint. POST: register one; the answer (201) carries its secret, shown this once."""
    await require_admin(req)
    if req.method.upper() == "POST":
        created = await endpoints.create(read_json(req, EndpointIn, max_bytes=_MAX_BODY))
        return json_response(created, 201, headers={**NO_STORE, "Location": f"/api/webhooks/{created['id']}"})
    return json_response(await endpoints.list_endpoints(), headers=NO_STORE)


@bp.route(route="webhooks/{id}", methods=["GET", "PATCH", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def webhook(req: func.HttpRequest) -> func.HttpResponse:
    """One endpoint: GET it, PATCH ``url``/``events``/``enabled``/``description`` (merge), DELETE it."""
    await require_admin(req)
    method = req.method.upper()
    if method == "PATCH":
        patch = read_json(req, EndpointPatch, max_bytes=_MAX_BODY)
        return json_response(await endpoints.change(_id(req), patch), headers=NO_STORE)
    if method == "DELETE":
        await endpoints.remove(_id(req))
        return func.HttpResponse(status_code=204, headers=dict(NO_STORE))
    return json_response(endpoints.public(await endpoints.load(_id(req))), headers=NO_STORE)


@bp.route(route="webhooks/{id}/rotate-secret", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def webhook_rotate(req: func.HttpRequest) -> func.HttpResponse:
    """A new secret (shown once); the old one also signs for ``graceHours`` (default 24)."""
    await require_admin(req)
    body = read_json(req, RotateIn, max_bytes=1024, optional=True)
    return json_response(await endpoints.rotate_secret(_id(req), body.graceHours), headers=NO_STORE)


@bp.route(route="webhooks/{id}/deliveries", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def webhook_deliveries(req: func.HttpRequest) -> func.HttpResponse:
    """The endpoint's deliveries, newest first: status, response code, duration, next retry, attempts."""
    await require_admin(req)
    limit = query_int(req, "limit", default=50, low=1, high=200)
    after = decode_cursor(req.params.get("cursor"), _DELIVERIES)
    items, next_key = await endpoints.list_deliveries(_id(req), limit, after)
    page = {"deliveries": items, "nextCursor": encode_cursor(next_key, _DELIVERIES) if next_key else None}
    return json_response(page, headers=NO_STORE)


@bp.route(route="webhooks/{id}/deliveries/{deliveryId}/retry", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def webhook_retry(req: func.HttpRequest) -> func.HttpResponse:
    """Attempt a delivery again now; the answer is the delivery after that attempt."""
    await require_admin(req)
    delivery = await endpoints.retry(_id(req), req.route_params.get("deliveryId", ""))
    return json_response(delivery, headers=NO_STORE)


@bp.route(route="webhooks/{id}/test", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def webhook_test(req: func.HttpRequest) -> func.HttpResponse:
    """Send a signed ``webhook.test`` event now; the answer is its delivery."""
    await require_admin(req)
    return json_response(await endpoints.send_test(_id(req)), headers=NO_STORE)


@bp.queue_trigger(arg_name="msg", queue_name=WEBHOOKS_QUEUE, connection="AzureWebJobsStorage")
async def webhook_delivery(msg: func.QueueMessage) -> None:
    """Attempt one delivery; its retries are new messages, so raising (a Storage outage) only retries this one."""
    try:
        notice = DeliveryNotice.decode(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        log.warning("webhooks message %s is not a delivery notice; dropped", msg.id)
        return
    await attempt(notice)
