"""Checks of the Teams sign-in setup the admin does by hand (the setup page's "Check the setup").

The Entra app registration can't come with the deployment: it is a directory object (Microsoft
Graph), not an Azure resource, so an ARM template can't create it, and a Marketplace managed
application is granted rights on its managed resource group only, never on the customer's
directory; its Application ID URI must also carry this deployment's host name, known only once the
app exists. So the admin registers it, and these checks look at what the desk can see: the
settings, the Application ID URI Teams will ask tokens for, and that Microsoft Entra knows the
tenant and serves its signing keys. The registration itself (scope, pre-authorized Teams clients)
is only visible to Entra: opening the tab in Teams is the final test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.identity.teams import MULTI_TENANT, AuthSettings

if TYPE_CHECKING:
    import httpx

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$", re.IGNORECASE)
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$")
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Check:
    """One line of the result: what was checked, whether it holds, and what to do if not."""

    name: str
    ok: bool
    detail: str

    def public(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def expected_app_id_uri(host: str, client_id: str) -> str:
    """The Application ID URI Teams asks tokens for: ``api://<host>/<client id>`` (the manifest's resource)."""
    return f"api://{host}/{client_id}"


def check_settings(host: str, auth: AuthSettings) -> list[Check]:
    """What the settings alone tell (pure)."""
    client_id, tenant = auth.client_id.strip(), auth.tenant_id.strip()
    host_ok = bool(_HOST.match(host)) and not host.startswith(("localhost", "127."))
    client_ok = bool(_GUID.match(client_id))
    tenant_ok = bool(_GUID.match(tenant) or _DOMAIN.match(tenant))
    checks = [
        Check(
            "Host name",
            host_ok,
            f"Teams reaches the desk at {host}."
            if host_ok
            else f"{host or '(none)'} is not a public host name: set PUBLIC_HOST or open this page at the app.",
        ),
        Check(
            "AAD_APP_CLIENT_ID",
            client_ok,
            "Set." if client_ok else "Set it to the app registration's Application (client) ID (step 6).",
        ),
        Check(
            "AAD_APP_TENANT_ID",
            tenant_ok,
            "Set."
            if tenant_ok
            else "Set it to your Directory (tenant) ID (step 6): without it agents of any organization could sign in.",
        ),
    ]
    if client_ok:
        expected = expected_app_id_uri(host, client_id.lower())
        configured = auth.app_id_uri.strip()
        same = not configured or configured.lower() == expected.lower()
        checks.append(
            Check(
                "Application ID URI",
                same,
                f"Teams asks for tokens for {expected}: set exactly this URI in Expose an API (step 2)."
                if same
                else f"AAD_APP_ID_URI is {configured}, but Teams asks for {expected}: clear the setting or correct it.",
            )
        )
    return checks


async def check_entra(auth: AuthSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> list[Check]:
    """Whether Microsoft Entra knows the tenant (its OpenID configuration) and serves signing keys."""
    import httpx

    tenant = auth.tenant_id.strip()
    parts = urlsplit(auth.jwks_url)
    authority = f"{parts.scheme}://{parts.netloc}"
    checks: list[Check] = []
    async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, transport=transport) as client:
        if tenant and tenant.lower() not in MULTI_TENANT:
            try:
                response = await client.get(f"{authority}/{tenant}/v2.0/.well-known/openid-configuration")
                issuer = str(response.json().get("issuer", "")) if response.status_code == 200 else ""
            except (httpx.HTTPError, ValueError):
                checks.append(Check("Tenant", False, f"{authority} could not be reached; try again."))
            else:
                if issuer:
                    checks.append(Check("Tenant", True, f"Microsoft Entra knows it (issuer {issuer})."))
                else:
                    checks.append(Check("Tenant", False, f"Microsoft Entra does not know the tenant {tenant}."))
        try:
            response = await client.get(auth.jwks_url)
            keys = response.json().get("keys", []) if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            keys = []
        checks.append(
            Check("Signing keys", bool(keys), f"{len(keys)} keys." if keys else f"{auth.jwks_url} served no keys.")
        )
    return checks
