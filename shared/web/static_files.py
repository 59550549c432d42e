"""Serving the app's own static files (widget, pages, bundled libraries) with caching headers."""

from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

import azure.functions as func

from shared.errors import Problem

STATIC_ROOT = Path(__file__).resolve().parents[2] / "static"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class StaticFile:
    """A file's bytes, gzipped bytes and validator, read once per worker."""

    body: bytes
    gzipped: bytes
    etag: str
    content_type: str


@functools.lru_cache(maxsize=64)
def load(relative: str) -> StaticFile:
    """Read a file under ``static/`` (404 problem when absent or outside it)."""
    path = (STATIC_ROOT / relative).resolve()
    if STATIC_ROOT not in path.parents or not path.is_file():
        raise Problem(404, f"No file {relative}.", kind="not-found")
    body = path.read_bytes()
    content_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return StaticFile(body, gzip.compress(body, 9), f'"{hashlib.sha256(body).hexdigest()[:32]}"', content_type)


def serve(
    req: func.HttpRequest, relative: str, *, max_age: int = 300, extra_headers: dict[str, str] | None = None
) -> func.HttpResponse:
    """The file, gzipped when the client accepts it, 304 when its ETag matches."""
    file = load(relative)
    charset = "; charset=utf-8" if file.content_type.startswith("text/") else ""
    headers = {
        "Content-Type": file.content_type + charset,
        "Cache-Control": f"public, max-age={max_age}",
        "ETag": file.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        **(extra_headers or {}),
    }
    if req.headers.get("if-none-match") == file.etag:
        return func.HttpResponse(status_code=304, headers=headers)
    if "gzip" in (req.headers.get("accept-encoding") or ""):
        headers["Content-Encoding"] = "gzip"
        return func.HttpResponse(file.gzipped, headers=headers)
    return func.HttpResponse(file.body, headers=headers)


# Where a Teams tab lives: only the agent console may be framed there.
TEAMS_FRAME_ANCESTORS = (
    "https://teams.microsoft.com https://*.teams.microsoft.com https://*.office.com https://*.cloud.microsoft"
)


def _realtime_origins() -> str:
    """The SignalR Service origins a page's client connects to (HTTP for negotiate, WS for the socket)."""
    from urllib.parse import urlsplit

    from shared.realtime.client import get_realtime

    info = get_realtime().info
    if info is None:
        return ""
    base = urlsplit(info.client_base)
    socket = "wss" if base.scheme == "https" else "ws"
    return f" {base.scheme}://{base.netloc} {socket}://{base.netloc}"


def page_headers(*, frame_ancestors: str = "'none'") -> dict[str, str]:
    """Headers of a page that shows message text: scripts and connections only from this app (and
    its SignalR Service), no framing except by ``frame_ancestors``."""
    headers = {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            f"connect-src 'self'{_realtime_origins()}; frame-ancestors {frame_ancestors}"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    if frame_ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    return headers


def agent_page_headers() -> dict[str, str]:
    """The agent console's: it is a Teams tab, so Teams and Office may frame it."""
    return page_headers(frame_ancestors=f"'self' {TEAMS_FRAME_ANCESTORS}")
