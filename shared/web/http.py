"""HTTP helpers shared by every handler: RFC 7807 problems, JSON bodies, correlation ids.

Handlers are wrapped with :func:`endpoint`, which gives every response an ``x-correlation-id``
and turns :class:`Problem` and unexpected exceptions into ``application/problem+json``.
https://www.rfc-editor.org/rfc/rfc7807
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import functools
import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

import azure.functions as func
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from shared.errors import TITLES as _TITLES
from shared.errors import Problem
from shared.storage.errors import StorageUnavailable

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://supportdesk.dev/problems/"
CORRELATION_HEADER = "x-correlation-id"
NO_STORE = {"Cache-Control": "no-store"}  # for every response that carries per-user or live data
_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")

ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def correlation_id() -> str:
    """The current request's correlation id (empty outside a request)."""
    return _correlation_id.get()


def json_response(
    body: Any,
    status: int = 200,
    *,
    headers: Mapping[str, str] | None = None,
) -> func.HttpResponse:
    """A JSON response with the correlation id header."""
    all_headers = {CORRELATION_HEADER: correlation_id(), **(headers or {})}
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers=all_headers,
    )


def problem_body(
    status: int,
    detail: str,
    *,
    instance: str,
    kind: str | None = None,
    title: str | None = None,
    correlation: str = "",
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a problem (pure, shared with devhost's own 404/405)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (kind or _TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
        "correlationId": correlation,
    }
    body.update(extensions or {})
    return body


def problem_response(problem: Problem, instance: str) -> func.HttpResponse:
    """Render a :class:`Problem` as ``application/problem+json``."""
    body = problem_body(
        problem.status,
        problem.detail,
        instance=instance,
        kind=problem.kind,
        title=problem.title,
        correlation=correlation_id(),
        extensions=problem.extensions,
    )
    return func.HttpResponse(
        json.dumps(body, default=str),
        status_code=problem.status,
        mimetype="application/problem+json",
        charset="utf-8",
        headers={CORRELATION_HEADER: correlation_id(), **problem.headers},
    )


def request_path(req: func.HttpRequest) -> str:
    """The path of the request URL, for the problem's ``instance``."""
    url = req.url
    after_scheme = url.split("://", 1)[-1]
    path = "/" + after_scheme.split("/", 1)[1] if "/" in after_scheme else "/"
    return path.split("?", 1)[0]


def _incoming_correlation_id(req: func.HttpRequest) -> str:
    given = (req.headers.get(CORRELATION_HEADER) or "").strip()
    # Echo a caller's id only when it is short and printable, so it is safe in logs and headers.
    if given and len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())


def endpoint(handler: Handler) -> Handler:
    """Wrap a handler: correlation id in and out, problems and crashes as RFC 7807 bodies."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        token = _correlation_id.set(_incoming_correlation_id(req))
        try:
            response = await handler(req)
            if CORRELATION_HEADER not in response.headers:
                response.headers[CORRELATION_HEADER] = correlation_id()
            return response
        except Problem as problem:
            return problem_response(problem, request_path(req))
        except StorageUnavailable:
            unavailable = Problem(
                503, "Storage is unavailable; retry shortly.", kind="storage-unavailable", headers={"Retry-After": "5"}
            )
            return problem_response(unavailable, request_path(req))
        except Exception:
            log.exception("unhandled error in %s (correlation %s)", handler.__name__, correlation_id())
            return problem_response(
                Problem(500, "An unexpected error occurred; quote the correlation id to support."),
                request_path(req),
            )
        finally:
            _correlation_id.reset(token)

    # Keep the signature visible to the Functions indexer, which binds by parameter name.
    wrapper.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    return wrapper


def read_json(req: func.HttpRequest, model: type[ModelT], *, max_bytes: int, optional: bool = False) -> ModelT:
    """Parse the body into ``model``: 413 when too large, 415/400 when not JSON, 422 when invalid.

    With ``optional``, an empty body counts as ``{}``.
    """
    body = req.get_body() or b""
    if optional and not body.strip():
        body = b"{}"
    if len(body) > max_bytes:
        raise Problem(413, f"The request body is {len(body)} bytes; the limit is {max_bytes}.")
    content_type = (req.headers.get("content-type") or "application/json").split(";")[0].strip()
    if content_type and not (content_type == "application/json" or content_type.endswith("+json")):
        raise Problem(415, f"Send the body as application/json, not {content_type}.")
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}.", kind="malformed-json") from exc
    if not isinstance(data, dict):
        raise Problem(400, "The body must be a JSON object.", kind="malformed-json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from exc


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    return value


# A chat message as visitors and agents send it: 1 to 4000 characters, not only whitespace.
MessageText = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_not_blank)]


def validation_problem(exc: ValidationError) -> Problem:
    """A 422 naming every failed field."""
    errors = [
        {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]
    fields = ", ".join(error["field"] for error in errors)
    return Problem(422, f"Invalid fields: {fields}.", kind="validation-error", errors=errors)


def bearer_credential(authorization: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <credential>`` header; None when there is none."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def invalid_query(name: str, message: str) -> Problem:
    """A 422 naming the query parameter ``name``: "Query parameter 'name' <message>."."""
    return Problem(
        422,
        f"Query parameter '{name}' {message}.",
        kind="validation-error",
        errors=[{"field": name, "message": message}],
    )


def query_int(req: func.HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or a 422 naming it."""
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise invalid_query(name, f"must be an integer from {low} to {high}")
    return value


def encode_cursor(key: str, ordering: str = "") -> str:
    """An opaque page cursor: the next page continues after ``key`` in ``ordering``."""
    return base64.urlsafe_b64encode(json.dumps({"k": key, "o": ordering}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, ordering: str = "") -> str | None:
    """The key inside a cursor made by :func:`encode_cursor` for the same ordering; else a 422."""
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key = data["k"]
        if not isinstance(key, str) or not key or data.get("o", "") != ordering:
            raise ValueError("not this ordering's cursor")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_query("cursor", "is not a cursor from a previous page of this listing") from exc
    return key
