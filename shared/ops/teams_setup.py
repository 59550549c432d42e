"""This deployment's Teams app: the package, the setup page and its live checks, from settings."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from shared.config import get_settings
from shared.errors import Problem
from shared.identity.teams import get_auth_settings, make_validator
from shared.ops.bootstrap import current_record
from shared.ops.teams_check import Check, check_entra, check_settings, expected_app_id_uri
from shared.ops.teams_package import build_teams_package, deployment_app_id, deployment_package, public_host
from shared.ops.teams_setup_page import render_teams_setup_page

PACKAGE_ROUTE = "teams-app.zip"
CHECK_NAME, CHECK_EMAIL = "Setup check", "setup-check@example.com"  # the dev identity's test token


def _host(request_host: str) -> str:
    return public_host(get_settings().public_host, request_host)


def _manifest_options() -> dict[str, Any]:
    settings = get_settings()
    return {"name": settings.teams_app_name, "privacy_url": settings.privacy_url, "terms_url": settings.terms_url}


async def package(request_host: str) -> bytes:
    """The Teams app ``.zip``; 409 when sign-in isn't configured yet (the manifest needs the client id)."""
    client_id = get_auth_settings().client_id.strip()
    if not client_id:
        raise Problem(
            409,
            "Set AAD_APP_CLIENT_ID first: the Teams app carries it. /api/teams-setup walks through it.",
            kind="teams-not-configured",
        )
    record = await current_record()
    try:
        return await deployment_package(
            _host(request_host),
            client_id,
            deployment_app_id(record.deployment_id),
            app_version=get_settings().app_version,
            **_manifest_options(),
        )
    except ValueError as exc:
        # A setting (client id, host) is malformed: say which, as configuration, not a crash.
        raise Problem(409, f"The Teams app can't be built: {exc}", kind="teams-not-configured") from exc


async def setup_page(request_host: str) -> str:
    """The guided Teams setup page (its package link works with the dashboard's cookie)."""
    auth = get_auth_settings()
    return render_teams_setup_page(
        _host(request_host),
        auth.client_id,
        tenant_id=auth.tenant_id,
        package_url=PACKAGE_ROUTE,
        app_name=get_settings().teams_app_name,
    )


async def _check_package(host: str, client_id: str) -> Check:
    """The package builds from this deployment's settings and asks Teams for tokens for the right resource."""
    record = await current_record()
    try:
        zipped = build_teams_package(host, client_id, deployment_app_id(record.deployment_id), **_manifest_options())
    except ValueError as exc:
        return Check("Teams app package", False, f"It can't be built: {exc}")
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        names = set(archive.namelist())
        manifest: dict[str, Any] = json.loads(archive.read("manifest.json"))
    resource = manifest.get("webApplicationInfo", {}).get("resource", "")
    expected = expected_app_id_uri(host, client_id.strip().lower())
    if names != {"manifest.json", "color.png", "outline.png"} or resource != expected:
        return Check("Teams app package", False, f"Its resource is {resource}, not {expected}.")
    return Check("Teams app package", True, f"Builds, with the two icons, for {expected} (step 7).")


async def _check_token(token: str | None) -> Check:
    """A token's issuer and audience, as the console's sign-in checks them (the dev identity mints one)."""
    auth = get_auth_settings()
    if not token and auth.is_development:
        from shared.identity.devidentity import DevSignIn, get_dev_identity

        token = get_dev_identity().mint(DevSignIn(name=CHECK_NAME, email=CHECK_EMAIL), settings=auth)
    if not token:
        return Check("Sign-in token", False, "Not checked yet: paste a token Teams issued for this app below.")
    try:
        agent = await make_validator(settings=auth).verify(token.strip())
    except ValueError as exc:  # a setting the validator can't be built from
        return Check("Sign-in token", False, str(exc))
    except Problem as exc:
        return Check("Sign-in token", False, exc.detail)
    return Check("Sign-in token", True, f"Issuer and audience match: it signs in {agent.name or agent.upn}.")


async def checks(request_host: str, token: str | None = None) -> dict[str, Any]:
    """Every check of the setup, and whether all pass (``done``)."""
    auth = get_auth_settings()
    host = _host(request_host)
    found = check_settings(host, auth) + await check_entra(auth)
    if auth.client_id.strip():
        found.append(await _check_package(host, auth.client_id))
    found.append(await _check_token(token))
    return {"checks": [c.public() for c in found], "done": all(c.ok for c in found)}
