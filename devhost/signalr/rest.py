"""The emulator's data-plane REST API v1: sends, group membership, existence checks, health.

https://github.com/Azure/azure-signalr/blob/dev/docs/rest-api.md (return codes follow the
official emulator's controller, ``SignalRServiceEmulatorWebApi.cs``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from devhost.signalr.client import HUB_PATTERN, bearer, verify
from devhost.signalr.hub import HubState, frame

GROUP_PATTERN = re.compile(r"^\S{1,1024}$")
MAX_BODY_BYTES = 1024 * 1024

Handler = Callable[[Request, HubState, str], Awaitable[Response]]


def _status(code: int, text: str = "") -> Response:
    return PlainTextResponse(text, status_code=code)


def _found(present: bool) -> Response:
    return _status(200 if present else 404)


def _guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Check the Bearer token, then the hub and group names, before the handler runs."""

    async def endpoint(request: Request) -> Response:
        if verify(bearer(request), request.app.state.access_key) is None:
            return _status(401, "Unauthorized.")
        hub = request.path_params["hub"]
        if not HUB_PATTERN.match(hub):
            return _status(400, "Invalid hub name.")
        group = request.path_params.get("group")
        if group is not None and not GROUP_PATTERN.match(group):
            return _status(400, "Invalid group name.")
        return await handler(request, request.app.state.hub, hub.lower())

    return endpoint


async def _payload(request: Request) -> tuple[str, list[Any]] | Response:
    if not request.headers.get("content-type", "").lower().startswith("application/json"):
        return _status(415, "Content-Type must be application/json.")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _status(413, "Body is larger than 1 MB.")
    try:
        message = json.loads(body)
    except ValueError:
        return _status(400, "Body is not JSON.")
    if not isinstance(message, dict) or not isinstance(message.get("target"), str) or not message["target"]:
        return _status(400, "Body needs a target.")
    arguments = message.get("arguments") or []
    if not isinstance(arguments, list):
        return _status(400, "arguments must be an array.")
    return message["target"], arguments


def _excluded(request: Request) -> set[str]:
    return set(request.query_params.getlist("excluded"))


async def broadcast(request: Request, state: HubState, hub: str) -> Response:
    """POST /api/v1/hubs/{hub}."""
    payload = await _payload(request)
    if isinstance(payload, Response):
        return payload
    state.deliver(state.hub_connections(hub), *payload, _excluded(request))
    return _status(202)


async def send_to_user(request: Request, state: HubState, hub: str) -> Response:
    """POST /api/v1/hubs/{hub}/users/{user}."""
    payload = await _payload(request)
    if isinstance(payload, Response):
        return payload
    state.deliver(state.user_connections(hub, request.path_params["user"]), *payload, set())
    return _status(202)


async def send_to_connection(request: Request, state: HubState, hub: str) -> Response:
    """POST /api/v1/hubs/{hub}/connections/{id}."""
    payload = await _payload(request)
    if isinstance(payload, Response):
        return payload
    connection = state.connection(hub, request.path_params["id"])
    state.deliver([connection] if connection else [], *payload, set())
    return _status(202)


async def send_to_group(request: Request, state: HubState, hub: str) -> Response:
    """POST /api/v1/hubs/{hub}/groups/{group}."""
    payload = await _payload(request)
    if isinstance(payload, Response):
        return payload
    state.deliver(state.group_connections(hub, request.path_params["group"]), *payload, _excluded(request))
    return _status(202)


async def connection_exists(request: Request, state: HubState, hub: str) -> Response:
    """GET/HEAD /api/v1/hubs/{hub}/connections/{id}."""
    return _found(state.connection(hub, request.path_params["id"]) is not None)


async def close_connection(request: Request, state: HubState, hub: str) -> Response:
    """DELETE /api/v1/hubs/{hub}/connections/{id}: send a Close message, then close the socket."""
    connection = state.connection(hub, request.path_params["id"])
    if connection is not None:
        reason = request.query_params.get("reason")
        connection.send(frame({"type": 7, "error": reason} if reason else {"type": 7}))
        connection.close()
    return _status(202)


async def group_exists(request: Request, state: HubState, hub: str) -> Response:
    """GET/HEAD /api/v1/hubs/{hub}/groups/{group}."""
    return _found(bool(state.group_connections(hub, request.path_params["group"])))


async def user_exists(request: Request, state: HubState, hub: str) -> Response:
    """GET/HEAD /api/v1/hubs/{hub}/users/{user}."""
    return _found(bool(state.user_connections(hub, request.path_params["user"])))


async def connection_group(request: Request, state: HubState, hub: str) -> Response:
    """PUT/DELETE a connection's membership of a group."""
    connection = state.connection(hub, request.path_params["id"])
    if connection is None:
        return _status(404)
    if request.method == "PUT":
        state.add_connection_to_group(connection, request.path_params["group"])
    else:
        state.remove_connection_from_group(connection, request.path_params["group"])
    return _status(200)


async def connection_leave_all(request: Request, state: HubState, hub: str) -> Response:
    """DELETE /api/v1/hubs/{hub}/connections/{id}/groups."""
    connection = state.connection(hub, request.path_params["id"])
    if connection is None:
        return _status(404)
    for group in list(connection.groups):
        state.remove_connection_from_group(connection, group)
    return _status(200)


async def user_group(request: Request, state: HubState, hub: str) -> Response:
    """GET/HEAD (is member), PUT (?ttl=seconds) or DELETE a user's membership of a group."""
    group, user = request.path_params["group"], request.path_params["user"]
    if request.method in ("GET", "HEAD"):
        return _found(state.user_in_group(hub, group, user))
    if request.method == "DELETE":
        state.remove_user_from_group(hub, group, user)
        return _status(202)
    ttl_text = request.query_params.get("ttl")
    try:
        ttl = float(ttl_text) if ttl_text is not None else None
    except ValueError:
        return _status(400, "ttl must be a number of seconds.")
    if ttl is not None and not (math.isfinite(ttl) and ttl >= 0):
        return _status(400, "ttl must be a finite, non-negative number of seconds.")
    state.add_user_to_group(hub, group, user, ttl)
    return _status(202)


async def user_leave_all(request: Request, state: HubState, hub: str) -> Response:
    """DELETE /api/v1/hubs/{hub}/users/{user}/groups."""
    state.remove_user_from_all_groups(hub, request.path_params["user"])
    return _status(200)


async def health(request: Request) -> Response:
    """GET/HEAD /api/v1/health."""
    return _status(200)


_HUB = "/api/v1/hubs/{hub}"
_MEMBERSHIP = ["GET", "PUT", "DELETE"]
routes = [
    Route("/api/v1/health", health, methods=["GET"]),
    Route(_HUB, _guarded(broadcast), methods=["POST"]),
    Route(_HUB + "/users/{user}", _guarded(send_to_user), methods=["POST"]),
    Route(_HUB + "/users/{user}", _guarded(user_exists), methods=["GET"]),
    Route(_HUB + "/users/{user}/groups", _guarded(user_leave_all), methods=["DELETE"]),
    Route(_HUB + "/users/{user}/groups/{group}", _guarded(user_group), methods=_MEMBERSHIP),
    Route(_HUB + "/connections/{id}", _guarded(send_to_connection), methods=["POST"]),
    Route(_HUB + "/connections/{id}", _guarded(connection_exists), methods=["GET"]),
    Route(_HUB + "/connections/{id}", _guarded(close_connection), methods=["DELETE"]),
    Route(_HUB + "/connections/{id}/groups", _guarded(connection_leave_all), methods=["DELETE"]),
    Route(_HUB + "/connections/{id}/groups/{group}", _guarded(connection_group), methods=["PUT", "DELETE"]),
    Route(_HUB + "/groups/{group}", _guarded(send_to_group), methods=["POST"]),
    Route(_HUB + "/groups/{group}", _guarded(group_exists), methods=["GET"]),
    Route(_HUB + "/groups/{group}/connections/{id}", _guarded(connection_group), methods=["PUT", "DELETE"]),
    Route(_HUB + "/groups/{group}/users/{user}", _guarded(user_group), methods=_MEMBERSHIP),
]
