"""CORS for the widget's endpoints: only the configured website origins (``*`` in Development)."""

from __future__ import annotations

import functools
import inspect
from urllib.parse import urlsplit

import azure.functions as func

from shared.config import get_settings
from shared.errors import Problem
from shared.web.http import CORRELATION_HEADER, Handler, endpoint

ALLOWED_HEADERS = (
    "authorization, content-type, idempotency-key, x-correlation-id, x-requested-with, x-signalr-user-agent"
)
EXPOSED_HEADERS = "x-correlation-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining"


def own_origin(req: func.HttpRequest) -> str:
    """The app's own origin (pages it serves itself, like the demo, are always allowed)."""
    parts = urlsplit(req.url)
    host = req.headers.get("x-forwarded-host") or req.headers.get("host") or parts.netloc
    scheme = req.headers.get("x-forwarded-proto") or parts.scheme
    return f"{scheme}://{host}"


def origin_allowed(req: func.HttpRequest) -> bool:
    """True when the request's Origin may use the widget endpoints (or it has none)."""
    origin = (req.headers.get("origin") or "").rstrip("/")
    if not origin:
        return True
    allowed = get_settings().origins
    return "*" in allowed or origin in allowed or origin == own_origin(req)


def _cors_headers(req: func.HttpRequest) -> dict[str, str]:
    origin = req.headers.get("origin")
    if not origin or not origin_allowed(req):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }


@endpoint
async def preflight(req: func.HttpRequest) -> func.HttpResponse:
    """A CORS preflight: 204 with the grants for an allowed Origin, else a 403 problem (no grants)."""
    headers = _cors_headers(req)
    if not headers:
        detail = (
            "This website is not allowed to use the chat widget."
            if req.headers.get("origin")
            else "A CORS preflight must send the Origin header."
        )
        raise Problem(403, detail, kind="origin-not-allowed")
    headers.update(
        {
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        }
    )
    return func.HttpResponse(status_code=204, headers=headers)


def with_cors(handler: Handler) -> Handler:
    """Answer preflights and add CORS headers to every response (problems included).

    Preflights go through :func:`~shared.web.http.endpoint` too, so they carry the correlation id.
    """

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        if req.method == "OPTIONS":
            return await preflight(req)
        response = await handler(req)
        for key, value in _cors_headers(req).items():
            response.headers[key] = value
        if CORRELATION_HEADER in response.headers:
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    wrapper.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    return wrapper
