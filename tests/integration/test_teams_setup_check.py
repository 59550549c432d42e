"""The Teams setup page's live checks: the settings, Microsoft Entra (a fake one), the package and a test token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from shared.identity.devidentity import DevSignIn, make_dev_identity
from shared.identity.teams import AuthSettings
from shared.ops.teams_check import check_settings
from shared.ops.teams_setup_page import render_teams_setup_page
from tests.conftest import Host
from tests.fakes.http_server import FakeServer, Recorded, Reply, json_reply
from tests.support import ADMIN_KEY, host_env

CLIENT_ID = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
HOST = "desk.contoso.example"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def entra(request: Recorded) -> Reply:
    """Microsoft Entra's discovery: one known tenant, and the common signing keys."""
    if request.path == f"/{TENANT_ID}/v2.0/.well-known/openid-configuration":
        return json_reply(200, {"issuer": f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"})
    if request.path == "/common/discovery/v2.0/keys":
        return json_reply(200, {"keys": [{"kid": "k1", "kty": "RSA", "n": "AQAB", "e": "AQAB"}]})
    return json_reply(400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."})


@pytest.fixture()
def fake_entra() -> Iterator[FakeServer]:
    """A fake login endpoint on loopback."""
    server = FakeServer(entra).start()
    yield server
    server.stop()


def finished_setup_env(azurite: Azurite, entra_url: str, **extra: str) -> dict[str, str]:
    """A deployment whose admin did every step (the dev identity stands in for Teams' tokens)."""
    settings = {"AAD_APP_CLIENT_ID": CLIENT_ID, "AAD_APP_TENANT_ID": TENANT_ID, "PUBLIC_HOST": HOST,
                "AAD_JWKS_URL": f"{entra_url}/common/discovery/v2.0/keys"}  # fmt: skip
    return host_env(azurite, **{**settings, **extra})


def run_checks(host: Host, token: str | None = None) -> dict[str, Any]:
    if token is None:
        response = httpx.get(host.base_url + "/teams-setup/checks", headers=ADMIN, timeout=30)
    else:
        response = httpx.post(host.base_url + "/teams-setup/checks", headers=ADMIN, json={"token": token}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def test_a_finished_setup_checks_out(
    fresh_azurite: Azurite, start_host: Callable[..., Host], fake_entra: FakeServer
) -> None:
    host = start_host(finished_setup_env(fresh_azurite, fake_entra.url))
    result = run_checks(host)
    found = by_name(result)
    assert result["done"] is True, result
    assert (
        found["Tenant"]["detail"]
        == f"Microsoft Entra knows it (issuer https://login.microsoftonline.com/{TENANT_ID}/v2.0)."
    )
    assert f"Teams asks for tokens for api://{HOST}/{CLIENT_ID}" in found["Application ID URI"]["detail"]
    assert found["Signing keys"]["detail"] == "1 keys."
    assert found["Teams app package"]["ok"] and f"api://{HOST}/{CLIENT_ID}" in found["Teams app package"]["detail"]
    # Under the dev identity the desk mints its own test token: its issuer and audience are the real checks'.
    assert found["Sign-in token"] == {
        "name": "Sign-in token", "ok": True, "detail": "Issuer and audience match: it signs in Setup check.",
    }  # fmt: skip
    # Only Entra's paths: a host of an earlier test may still call its stopped Azurite's port, which
    # this fake can be given again.
    asked = [r.path for r in fake_entra.requests if not r.path.startswith("/devstoreaccount1/")]
    assert asked == [
        f"/{TENANT_ID}/v2.0/.well-known/openid-configuration",
        "/common/discovery/v2.0/keys",
    ]


def test_a_token_for_another_app_is_marked(
    fresh_azurite: Azurite, start_host: Callable[..., Host], fake_entra: FakeServer, tmp_path: Path
) -> None:
    key_file = str(tmp_path / "dev-identity.pem")  # the host and this test sign with the same dev key
    host = start_host(finished_setup_env(fresh_azurite, fake_entra.url, DEV_IDENTITY_KEY_FILE=key_file))

    def token_for(client_id: str) -> str:
        settings = AuthSettings.model_validate({
            "AZURE_FUNCTIONS_ENVIRONMENT": "Development", "AAD_APP_CLIENT_ID": client_id,
            "AAD_APP_TENANT_ID": TENANT_ID, "DEV_IDENTITY_KEY_FILE": key_file,
        })  # fmt: skip
        return make_dev_identity(settings=settings).mint(
            DevSignIn(name="Pat", email="pat@example.com"), settings=settings
        )

    ours = run_checks(host, token_for(CLIENT_ID))
    assert ours["done"] is True and by_name(ours)["Sign-in token"]["detail"].endswith("it signs in Pat.")
    theirs = run_checks(host, token_for("9e8d7c6b-5a49-4382-a170-f6e5d4c3b2a1"))  # issued for another app
    assert theirs["done"] is False
    assert by_name(theirs)["Sign-in token"] == {
        "name": "Sign-in token", "ok": False,
        "detail": "The token was issued for another application (audience mismatch).",
    }  # fmt: skip
    garbage = by_name(run_checks(host, "not-a-token"))["Sign-in token"]
    assert garbage == {"name": "Sign-in token", "ok": False, "detail": "The bearer token is not a JWT."}


def test_a_wrong_tenant_and_app_id_uri_are_marked(
    fresh_azurite: Azurite, start_host: Callable[..., Host], fake_entra: FakeServer
) -> None:
    other = "0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
    host = start_host(finished_setup_env(fresh_azurite, fake_entra.url, AAD_APP_TENANT_ID=other,
                                         AAD_APP_ID_URI=f"api://old-host.example/{CLIENT_ID}"))  # fmt: skip
    result = run_checks(host)
    found = by_name(result)
    assert result["done"] is False
    assert found["Tenant"]["detail"] == f"Microsoft Entra does not know the tenant {other}."
    assert (
        f"AAD_APP_ID_URI is api://old-host.example/{CLIENT_ID}, but Teams asks for api://{HOST}/{CLIENT_ID}"
        in found["Application ID URI"]["detail"]
    )
    refused = httpx.get(host.base_url + "/teams-setup/checks", timeout=30)
    assert refused.status_code == 401  # admins only


def test_the_page_says_why_the_template_cannot_register_the_app() -> None:
    page = render_teams_setup_page(HOST, CLIENT_ID)
    assert "a deployment template\ncan't create it" in page or "a deployment template can't create it" in page
    assert 'id="checks"' in page and 'id="done" class="done" hidden' in page  # the script fills them in


def test_the_settings_checks_alone() -> None:
    auth = AuthSettings.model_validate({"AAD_APP_CLIENT_ID": "not-a-guid", "AAD_APP_TENANT_ID": ""})
    found = {c.name: c for c in check_settings("localhost:7071", auth)}
    assert not found["Host name"].ok and not found["AAD_APP_CLIENT_ID"].ok and not found["AAD_APP_TENANT_ID"].ok
    assert "Application ID URI" not in found  # nothing to compare without a client id
