"""The OpenAPI 3.1 document, generated from a registry of operations and the pydantic models handlers validate with.

Each blueprint's routes are described by :class:`Operation` entries (``register``): the route template
and method as the Function App registers them, the request body's model, the response models where a
route has one, who may call it (admin key or dashboard cookie, visitor token, agent Teams token, or
anyone), and the statuses it answers. Every error is an RFC 7807 problem (``Problem`` schema). The
schemas are pydantic's own JSON Schema (2020-12, the dialect OpenAPI 3.1 uses), so the document and
the validation can't drift apart.
https://spec.openapis.org/oas/v3.1.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

ADMIN, VISITOR, AGENT, PUBLIC = "admin", "visitor", "agent", "public"
AGENT_OR_ADMIN = "agent-or-admin"  # read by agents (Teams token) and managed by admins: saved replies
JSON, HTML, PROBLEM = "application/json", "text/html", "application/problem+json"

# The problems any route may answer: malformed or unreadable input, a missing thing, a conflict, limits, outages.
# 405: a path whose parameter the host normalises away (a lone control character) lands on another
# route of the same prefix, which answers the method with a 405 problem.
COMMON_ERRORS = (400, 404, 405, 409, 413, 415, 422, 429, 503)
_DESCRIPTIONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 304: "Not Modified", 400: "Malformed request",
    401: "Missing or wrong credentials", 403: "Not allowed", 404: "Not found", 409: "Conflict with the current state",
    412: "The resource changed since it was read", 413: "Body too large", 415: "Unsupported media type",
    422: "Invalid fields (named in errors)", 428: "A precondition header is required", 429: "Too many requests",
    503: "A dependency is unavailable; retry",
}  # fmt: skip


class ProblemOut(BaseModel):
    """An RFC 7807 problem, with the request's correlation id; ``errors`` names each refused field."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str
    title: str
    status: int
    detail: str
    instance: str
    correlationId: str
    errors: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Body:
    """A response (or request) body: its model, or a media type with a schema of its own."""

    model: type[BaseModel] | None = None
    media: str = JSON
    schema: dict[str, Any] | None = None  # when there is no model: {"type": "object"} for JSON by default
    description: str = ""


@dataclass(frozen=True)
class Param:
    """A query or header parameter."""

    name: str
    where: str = "query"
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One route and method as served, with what it takes and answers."""

    route: str  # as registered: "webhooks/{id}/test"
    method: str
    summary: str
    security: str = PUBLIC
    request: Body | None = None
    request_required: bool = True
    responses: dict[int, Body] = field(default_factory=lambda: {200: Body()})
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = COMMON_ERRORS
    tag: str = ""


_registry: dict[tuple[str, str], Operation] = {}


def register(*operations: Operation) -> None:
    """Describe routes in the document (a blueprint calls this beside its routes)."""
    for operation in operations:
        _registry[(operation.route, operation.method.upper())] = operation


def operations() -> list[Operation]:
    """Every registered operation."""
    return list(_registry.values())


_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    ADMIN: [{"adminKey": []}, {"adminCookie": []}, {"adminCode": []}],
    VISITOR: [{"visitorToken": []}],
    AGENT: [{"agentToken": []}],
    AGENT_OR_ADMIN: [{"agentToken": []}, {"adminKey": []}, {"adminCookie": []}, {"adminCode": []}],
    PUBLIC: [],
}
SECURITY_SCHEMES = {
    "adminKey": {"type": "http", "scheme": "bearer", "description": "The admin key as a Bearer credential."},
    "adminCode": {"type": "apiKey", "in": "query", "name": "code", "description": "The admin key as ?code=."},
    "adminCookie": {
        "type": "apiKey", "in": "cookie", "name": "sd_admin",
        "description": "The dashboard's session cookie (POST /api/ops/signin); changes also send X-CSRF-Token.",
    },
    "visitorToken": {"type": "http", "scheme": "bearer", "description": "The token POST /api/widget/session issues."},
    "agentToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "A Microsoft Teams SSO access token (Entra ID, scope access_as_user).",
    },
}  # fmt: skip


def path_of(route: str) -> str:
    """An OpenAPI path from a Functions route template: constraints dropped ("{id:int}" -> "{id}")."""
    return "/" + re.sub(r"\{\*?(\w+)(?::[^}]*)?\??\}", r"{\1}", route)


def _models(ops: list[Operation]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"ProblemOut": ProblemOut}
    for op in ops:
        for body in [op.request, *op.responses.values()]:
            if body is not None and body.model is not None:
                found.setdefault(body.model.__qualname__ + body.model.__module__, body.model)
    return list(found.values())


def document(ops: list[Operation], *, title: str, version: str, description: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``ops`` (served under the ``/api`` prefix)."""
    models = _models(ops)
    keys, schemas = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )

    def schema_of(body: Body) -> dict[str, Any]:
        if body.model is not None:
            return dict(keys[(body.model, "validation")])
        if body.schema is not None:
            return body.schema
        return {"type": "object"} if body.media.endswith("json") else {"type": "string"}

    problem = {PROBLEM: {"schema": schema_of(Body(ProblemOut))}}
    paths: dict[str, dict[str, Any]] = {}
    for op in sorted(ops, key=lambda o: (o.route, o.method)):
        # A path parameter is never empty: an empty id would be another route (``/knowledge/drafts/``
        # is the list), which the document must not promise.
        names = re.findall(r"\{\*?(\w+)", op.route)
        segment = {"type": "string", "minLength": 1}
        parameters = [{"name": n, "in": "path", "required": True, "schema": dict(segment)} for n in names]
        parameters += [
            {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema,
             **({"description": p.description} if p.description else {})}
            for p in op.params
        ]  # fmt: skip
        responses: dict[str, Any] = {}
        for status, body in op.responses.items():
            described: dict[str, Any] = {"description": body.description or _DESCRIPTIONS.get(status, "OK")}
            if status not in (204, 304):
                described["content"] = {body.media: {"schema": schema_of(body)}}
            responses[str(status)] = described
        errors = set(op.errors) | ({401} if op.security != PUBLIC else set())
        for status in sorted(errors - set(op.responses)):
            responses[str(status)] = {"description": _DESCRIPTIONS.get(status, "Error"), "content": problem}
        operation: dict[str, Any] = {
            "operationId": f"{op.method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', op.route).strip('_') or 'root'}",
            "summary": op.summary,
            "security": _SECURITY[op.security],
            "responses": responses,
        }
        if op.tag:
            operation["tags"] = [op.tag]
        if parameters:
            operation["parameters"] = parameters
        if op.request is not None:
            operation["requestBody"] = {
                "required": op.request_required,
                "content": {op.request.media: {"schema": schema_of(op.request)}},
            }
        paths.setdefault(path_of(op.route), {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": "/api"}],
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}), "securitySchemes": SECURITY_SCHEMES},
    }
