"""Problem: a refusal or failure the caller should see, with its HTTP status and RFC 7807 kind.

Domain code raises it (a claim lost to another agent is a 409 ``already-claimed``); ``shared.web``
renders it as ``application/problem+json``. The storage layer never raises it: it raises
:class:`shared.storage.errors.StorageUnavailable`, which the web layer maps to a 503.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error the client should see, rendered as an RFC 7807 problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or TITLES.get(status, "error").lower().replace(" ", "-")
        self.title = title or TITLES.get(status, "Error")
        self.headers = dict(headers or {})
        self.extensions = extensions
