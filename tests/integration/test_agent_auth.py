"""Agent sign-in over real HTTP: a devhost serving ``GET /api/whoami`` against a fake Entra JWKS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from shared.identity.devidentity import dev_oid
from tests.conftest import Host
from tests.fakes import jwks as fake
from tests.fakes.http_server import FakeServer, json_reply
from tests.fakes.jwks import SigningKey

APP = "tests.fakes.identity_app:app"


@pytest.fixture(scope="module")
def dev_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dev identity key shared by the Development and Production hosts below."""
    return tmp_path_factory.mktemp("devkey") / "dev-identity.pem"


@pytest.fixture(scope="module")
def dev_host(start_host: Callable[..., Host], identity_settings: dict[str, str], dev_key_file: Path) -> Host:
    """The identity app in Development."""
    return start_host({**identity_settings, "DEV_IDENTITY_KEY_FILE": str(dev_key_file)}, app=APP)


@pytest.fixture(scope="module")
def prod_host(start_host: Callable[..., Host], identity_settings: dict[str, str], dev_key_file: Path) -> Host:
    """The identity app in Production, pointed at the same dev key file (which it must ignore)."""
    env = {**identity_settings, "DEV_IDENTITY_KEY_FILE": str(dev_key_file), "AZURE_FUNCTIONS_ENVIRONMENT": "Production"}
    return start_host(env, app=APP)


@pytest.fixture()
def client(dev_host: Host) -> Iterator[httpx.Client]:
    """A client for the Development host."""
    with dev_host.client() as http:
        yield http


def _whoami(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/whoami", headers={"Authorization": f"Bearer {token}"})


def _assert_401(response: httpx.Response, kind: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["type"].endswith("/" + kind)
    assert response.json()["correlationId"]


@pytest.mark.parametrize("version", [1, 2])
def test_valid_teams_tokens_sign_in(client: httpx.Client, mint_token: Callable[..., str], version: int) -> None:
    response = _whoami(client, mint_token(version=version))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "oid": fake.AGENT_OID,
        "upn": "ada@contoso.example",
        "email": "ada@contoso.example",
        "tenantId": fake.TENANT_ID,
        "name": "Ada Agent",
    }


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({"aud": "9d9e9f00-1111-4222-8333-444455556666"}, "wrong-audience"),
        ({"tenant_id": fake.OTHER_TENANT_ID}, "wrong-tenant"),
        ({"lifetime": -300}, "token-expired"),
        ({"scp": "User.Read"}, "missing-scope"),
    ],
)
def test_bad_tokens_are_401(client: httpx.Client, mint_token: Callable[..., str], overrides: dict, kind: str) -> None:
    _assert_401(_whoami(client, mint_token(**overrides)), kind)


def test_forged_algorithms_are_401(client: httpx.Client, signing_key: SigningKey) -> None:
    claims = fake.teams_claims()
    _assert_401(_whoami(client, fake.unsigned(claims, signing_key.kid)), "bad-alg")
    _assert_401(_whoami(client, fake.hs256_with_public_key(claims, signing_key)), "bad-alg")


def test_missing_or_garbage_credentials_are_401(client: httpx.Client) -> None:
    _assert_401(client.get("/whoami"), "missing-token")
    _assert_401(client.get("/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"}), "malformed-token")
    _assert_401(_whoami(client, "not-a-jwt"), "malformed-token")


def test_unknown_signing_key_is_401(client: httpx.Client) -> None:
    _assert_401(_whoami(client, fake.sign(fake.teams_claims(), fake.new_key())), "unknown-key")


def test_jwks_outage_is_503(start_host: Callable[..., Host], identity_settings: dict[str, str]) -> None:
    dead = FakeServer(lambda _: json_reply(200, {"keys": []}), down=True).start()
    try:
        host = start_host({**identity_settings, "AAD_JWKS_URL": dead.url + "/keys"}, app=APP)
        token = fake.sign(fake.teams_claims(), fake.new_key())
        with host.client() as http:
            response = _whoami(http, token)
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("/identity-provider-unavailable")
        assert dead.requests, "the host should have tried the JWKS"
    finally:
        dead.stop()


def test_dev_sign_in_in_development(client: httpx.Client, dev_host: Host) -> None:
    page = client.get("/dev/signin")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'action="token"' in page.text
    keys = client.get("/dev/jwks").json()["keys"]
    assert [key["alg"] for key in keys] == ["RS256"]

    issued = client.post("/dev/token", json={"name": "Dev Agent", "email": "dev@example.com"})
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 3600
    assert body["agent"]["oid"] == dev_oid("dev@example.com")
    me = _whoami(client, body["accessToken"])
    assert me.status_code == 200, me.text
    assert me.json() == body["agent"]
    assert me.json()["tenantId"] == fake.TENANT_ID
    assert body["accessToken"].split(".")[2] not in dev_host.log()

    # The plain HTML form posts url-encoded; the same person gets the same oid.
    form = client.post("/dev/token", data={"name": "Dev Agent", "email": "DEV@example.com"})
    assert form.status_code == 200 and form.json()["agent"]["oid"] == body["agent"]["oid"]
    invalid = client.post("/dev/token", json={"name": "", "email": "nope"})
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["errors"]} == {"name", "email"}


def test_dev_identity_is_off_in_production(
    client: httpx.Client, prod_host: Host, mint_token: Callable[..., str]
) -> None:
    dev_token = client.post("/dev/token", json={"name": "Dev Agent", "email": "dev@example.com"}).json()["accessToken"]
    with prod_host.client() as prod:
        for method, path in (("GET", "/dev/jwks"), ("GET", "/dev/signin"), ("POST", "/dev/token")):
            response = prod.request(method, path, json={"name": "x", "email": "x@example.com"})
            assert response.status_code == 404, (path, response.text)
        # Same key file on disk, yet Production never trusts the dev key.
        _assert_401(_whoami(prod, dev_token), "unknown-key")
        assert _whoami(prod, mint_token()).status_code == 200
