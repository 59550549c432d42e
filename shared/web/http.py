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
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

import azure.functions as func
from pydantic import AfterValidator, BaseModel, Field, ValidationError

from shared.errors import TITLES as _TITLES
from shared.errors import Problem
from shared.storage.errors import StorageUnavailable
from shared.storage.values import is_safe_key

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://supportdesk.dev/problems/"
CORRELATION_HEADER = "x-correlation-id"
NO_STORE = {"Cache-Control": "no-store"}  # for every response that carries per-user or live data
# Bodies are flat objects; deeper nesting is refused before parsing (json recurses once per level).
MAX_JSON_DEPTH = 32
MAX_CURSOR_KEY = 1024  # Table storage's limit on a key, and every cursor key is one
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


def incoming_correlation_id(req: func.HttpRequest) -> str:
    """The caller's ``x-correlation-id`` when it is usable, else a new one."""
    given = (req.headers.get(CORRELATION_HEADER) or "").strip()
    # Echo a caller's id only when it is short printable ASCII, so it is safe in logs and any header encoding.
    if given and len(given) <= 128 and given.isascii() and given.isprintable():
        return given
    return str(uuid.uuid4())


def endpoint(handler: Handler) -> Handler:
    """Wrap a handler: correlation id in and out, problems and crashes as RFC 7807 bodies."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        token = _correlation_id.set(incoming_correlation_id(req))
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

    With ``optional``, an empty body counts as ``{}``. Nesting deeper than :data:`MAX_JSON_DEPTH`
    is a 400 found without parsing, so a body of brackets can't exhaust the parser's recursion.
    """
    body = req.get_body() or b""
    if optional and not body.strip():
        body = b"{}"
    if len(body) > max_bytes:
        raise Problem(413, f"The request body is {len(body)} bytes; the limit is {max_bytes}.")
    content_type = (req.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if content_type and not (content_type == "application/json" or content_type.endswith("+json")):
        raise Problem(415, f"Send the body as application/json, not {content_type}.")
    if json_too_deep(body):
        raise _malformed(_TOO_DEEP)
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _malformed(f"is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _malformed("must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from exc
    except RecursionError as exc:
        raise _malformed(_TOO_DEEP) from exc


def _malformed(message: str) -> Problem:
    """A 400 naming the body: "The body <message>."."""
    return Problem(400, f"The body {message}.", kind="malformed-json", errors=[{"field": "body", "message": message}])


_TOO_DEEP = f"nests arrays and objects more than {MAX_JSON_DEPTH} deep"
_JSON_STRUCTURE = re.compile(rb'[][{}"\\]')  # the only bytes that open, close or escape anything


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in ``body`` nest more than ``limit`` deep (brackets in strings don't count).

    Cheap, without parsing: a body with few brackets is answered by counting them; otherwise only the
    brackets, quotes and backslashes are visited, once each (linear even for hostile input), and the
    walk stops at the first level too deep. Malformed JSON gets an answer that parsing refuses anyway.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, -1
    for match in _JSON_STRUCTURE.finditer(body):
        at = match.start()
        byte = body[at]
        if in_string:
            if at == escaped:
                continue
            if byte == 0x5C:  # backslash: the next byte is escaped
                escaped = at + 1
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif byte in b"]}":
            depth -= 1
    return False


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


_INTEGER = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only: int() would also take " 5", "+5", "5_0" and "٥"


def query_int(req: func.HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or a 422 naming it."""
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw) if _INTEGER.fullmatch(raw) else low - 1
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
        if not isinstance(key, str) or data.get("o", "") != ordering:
            raise ValueError("not this ordering's cursor")
        # Every cursor continues after a stored key: anything Storage couldn't hold is forged.
        if not is_safe_key(key, MAX_CURSOR_KEY) or not key.isprintable():
            raise ValueError("not a key")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, RecursionError) as exc:
        raise invalid_query("cursor", "is not a cursor from a previous page of this listing") from exc
    return key
