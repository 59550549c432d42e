"""This deployment's Teams app: the package and the setup page, from settings and the deployment record."""

from __future__ import annotations

from shared.config import get_settings
from shared.errors import Problem
from shared.identity.teams import get_auth_settings
from shared.ops.bootstrap import current_record
from shared.ops.teams_package import deployment_app_id, deployment_package, public_host, render_teams_setup_page

PACKAGE_ROUTE = "teams-app.zip"


def _host(request_host: str) -> str:
    return public_host(get_settings().public_host, request_host)


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
    settings = get_settings()
    try:
        return await deployment_package(
            _host(request_host),
            client_id,
            deployment_app_id(record.deployment_id),
            app_version=settings.app_version,
            name=settings.teams_app_name,
            privacy_url=settings.privacy_url,
            terms_url=settings.terms_url,
        )
    except ValueError as exc:
        # A setting (client id, host) is malformed: say which, as configuration, not a crash.
        raise Problem(409, f"The Teams app can't be built: {exc}", kind="teams-not-configured") from exc


async def setup_page(request_host: str, *, check: bool = False) -> str:
    """The step-by-step Teams setup page (its package link works with the dashboard's cookie).

    ``check`` adds the results of :mod:`shared.ops.teams_check` (the settings, and a look at Microsoft
    Entra's OpenID configuration and keys).
    """
    auth = get_auth_settings()
    host = _host(request_host)
    results = None
    if check:
        from shared.ops import teams_check

        found = teams_check.check_settings(host, auth) + await teams_check.check_entra(auth)
        results = [(c.name, c.ok, c.detail) for c in found]
    return render_teams_setup_page(
        host,
        auth.client_id,
        tenant_id=auth.tenant_id,
        package_url=PACKAGE_ROUTE,
        app_name=get_settings().teams_app_name,
        checks=results,
    )
