"""The emulator's ASGI app: CORS for browsers, the client endpoints and the REST API."""

from __future__ import annotations

import logging
import re

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from devhost.signalr import DEFAULT_ACCESS_KEY, rest
from devhost.signalr.client import client_socket, negotiate
from devhost.signalr.hub import HubState

DEFAULT_PING_SECONDS = 15.0

_SECRET_QUERY = re.compile(r"(access_token|id)=[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Blank ``access_token=`` and ``id=`` (the connection token) in server log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record without the secrets; always keep it."""
        message = record.getMessage()
        if "=" in message:
            record.msg, record.args = _SECRET_QUERY.sub(r"\1=***", message), None
        return True


def create_app(*, access_key: str = DEFAULT_ACCESS_KEY, ping_seconds: float = DEFAULT_PING_SECONDS) -> Starlette:
    """A fresh emulator with empty state."""
    if not access_key:
        raise ValueError("the emulator needs an AccessKey to verify tokens")
    if ping_seconds <= 0:
        raise ValueError("ping_seconds must be positive")
    routes = [
        Route("/client/negotiate", negotiate, methods=["POST"]),
        WebSocketRoute("/client/", client_socket),
        WebSocketRoute("/client", client_socket),
        *rest.routes,
    ]
    # Browser clients send credentials (withCredentials defaults to true), so the origin is echoed, never '*'.
    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origin_regex=".*",
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.hub = HubState()
    app.state.access_key = access_key
    app.state.ping_seconds = ping_seconds
    return app
