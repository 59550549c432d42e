"""Development-only sign-in for agents: the local JWKS, a sign-in page and a token endpoint.

Every route answers 404 unless ``AZURE_FUNCTIONS_ENVIRONMENT=Development``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import azure.functions as func

from shared.identity.devidentity import DevSignIn, dev_tenant_id, get_dev_identity, render_signin_page
from shared.identity.teams import get_auth_settings
from shared.web.http import NO_STORE, Problem, endpoint, json_response, read_json, validation_problem

bp = func.Blueprint()

_MAX_FORM_BYTES = 4096


def _require_development() -> None:
    # Same body as any unknown path, so production does not even reveal the routes exist.
    if not get_auth_settings().is_development:
        raise Problem(404, "No such endpoint.", kind="not-found")


def _read_form(req: func.HttpRequest) -> DevSignIn:
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return read_json(req, DevSignIn, max_bytes=_MAX_FORM_BYTES)
    body = req.get_body() or b""
    if len(body) > _MAX_FORM_BYTES:
        raise Problem(413, f"The request body is {len(body)} bytes; the limit is {_MAX_FORM_BYTES}.")
    from pydantic import ValidationError

    try:
        return DevSignIn.model_validate(dict(parse_qsl(body.decode("utf-8", errors="replace"))))
    except ValidationError as exc:
        raise validation_problem(exc) from exc


@bp.route(route="dev/jwks", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def dev_jwks(req: func.HttpRequest) -> func.HttpResponse:
    """The dev identity's public keys."""
    _require_development()
    return json_response(get_dev_identity().jwks(), headers=NO_STORE)


@bp.route(route="dev/signin", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def dev_signin(req: func.HttpRequest) -> func.HttpResponse:
    """The dev sign-in page."""
    _require_development()
    settings = get_auth_settings()
    return func.HttpResponse(
        render_signin_page(client_id=settings.client_id, tenant_id=dev_tenant_id(settings)),
        mimetype="text/html",
        charset="utf-8",
        headers=NO_STORE,
    )


@bp.route(route="dev/token", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def dev_token(req: func.HttpRequest) -> func.HttpResponse:
    """A token shaped like a Teams SSO token for the posted name and email."""
    _require_development()
    form = _read_form(req)
    return json_response(get_dev_identity().sign_in(form, settings=get_auth_settings()), headers=NO_STORE)
