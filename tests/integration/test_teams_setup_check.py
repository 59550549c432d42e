"""The Teams setup page's check: the settings, and Microsoft Entra (a fake one) knowing the tenant."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from devhost.azurite import Azurite
from shared.identity.teams import AuthSettings
from shared.ops.teams_check import check_settings
from shared.ops.teams_package import render_teams_setup_page
from tests.conftest import Host
from tests.fakes.http_server import FakeServer, Recorded, Reply, json_reply
from tests.support import ADMIN_KEY, host_env

CLIENT_ID = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
HOST = "desk.contoso.example"


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


def setup_page(host: Host) -> str:
    response = httpx.get(host.base_url + "/teams-setup", params={"code": ADMIN_KEY, "check": "1"}, timeout=30)
    assert response.status_code == 200
    return response.text


def test_a_finished_setup_checks_out(
    fresh_azurite: Azurite, start_host: Callable[..., Host], fake_entra: FakeServer
) -> None:
    keys = f"{fake_entra.url}/common/discovery/v2.0/keys"
    env = host_env(fresh_azurite, AAD_APP_CLIENT_ID=CLIENT_ID, AAD_APP_TENANT_ID=TENANT_ID, PUBLIC_HOST=HOST)
    host = start_host({**env, "AAD_JWKS_URL": keys})
    page = setup_page(host)
    assert "Everything the desk can see is right." in page and "&#10007;" not in page
    assert f"Microsoft Entra knows it (issuer https://login.microsoftonline.com/{TENANT_ID}/v2.0)" in page
    assert f"Teams asks for tokens for api://{HOST}/{CLIENT_ID}" in page
    assert "1 keys." in page
    assert [r.path for r in fake_entra.requests] == [
        f"/{TENANT_ID}/v2.0/.well-known/openid-configuration",
        "/common/discovery/v2.0/keys",
    ]


def test_a_wrong_tenant_and_app_id_uri_are_marked(
    fresh_azurite: Azurite, start_host: Callable[..., Host], fake_entra: FakeServer
) -> None:
    other = "0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
    host = start_host(host_env(fresh_azurite, AAD_APP_CLIENT_ID=CLIENT_ID, AAD_APP_TENANT_ID=other, PUBLIC_HOST=HOST,
                               AAD_APP_ID_URI=f"api://old-host.example/{CLIENT_ID}",
                               AAD_JWKS_URL=f"{fake_entra.url}/common/discovery/v2.0/keys"))  # fmt: skip
    page = setup_page(host)
    assert "Fix what is marked." in page
    assert f"Microsoft Entra does not know the tenant {other}." in page
    assert f"AAD_APP_ID_URI is api://old-host.example/{CLIENT_ID}, but Teams asks for api://{HOST}/{CLIENT_ID}" in page


def test_the_page_says_why_the_template_cannot_register_the_app() -> None:
    page = render_teams_setup_page(HOST, CLIENT_ID)
    assert "a deployment template can't create it" in page and 'href="teams-setup?check=1"' in page
    assert "<section" not in page  # no results until asked


def test_the_settings_checks_alone() -> None:
    auth = AuthSettings.model_validate({"AAD_APP_CLIENT_ID": "not-a-guid", "AAD_APP_TENANT_ID": ""})
    found = {c.name: c for c in check_settings("localhost:7071", auth)}
    assert not found["Host name"].ok and not found["AAD_APP_CLIENT_ID"].ok and not found["AAD_APP_TENANT_ID"].ok
    assert "Application ID URI" not in found  # nothing to compare without a client id
    hostile = render_teams_setup_page(HOST, CLIENT_ID, checks=[("<b>x</b>", False, '"><script>')])
    assert "<b>x</b>" not in hostile and "<script>" not in hostile and "&lt;b&gt;x&lt;/b&gt;" in hostile
