"""Teams SSO token validation, without network: keys are handed to the validator directly."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest
from jwt import PyJWK, PyJWKClientConnectionError, PyJWKClientError

from shared.errors import Problem
from shared.identity.devidentity import DEV_CLIENT_ID, DEV_TENANT_ID, DevSignIn, dev_oid, make_dev_identity
from shared.identity.teams import (
    Agent,
    AuthSettings,
    TeamsTokenValidator,
    accepted_audience,
    authenticate_agent,
    make_jwks_client,
    make_validator,
)
from tests.fakes import jwks as fake
from tests.fakes.jwks import SigningKey


def _settings(**values: Any) -> AuthSettings:
    base = {"environment": "Production", "client_id": fake.CLIENT_ID, "tenant_id": fake.TENANT_ID}
    return AuthSettings(**{**base, **values})


def _validator(key: SigningKey, **values: Any) -> TeamsTokenValidator:
    return TeamsTokenValidator(settings=_settings(**values), jwks_client=None, trusted_keys={key.kid: key.public_key})


async def _refused(validator: TeamsTokenValidator, token: str, status: int = 401) -> Problem:
    with pytest.raises(Problem) as caught:
        await validator.verify(token)
    assert caught.value.status == status
    return caught.value


@pytest.mark.parametrize("version", [1, 2])
async def test_valid_tokens_of_both_versions_pass(signing_key: SigningKey, version: int) -> None:
    agent = await _validator(signing_key).verify(fake.sign(fake.teams_claims(version=version), signing_key))
    assert agent == Agent(fake.AGENT_OID, fake.TENANT_ID, "ada@contoso.example", "ada@contoso.example", "Ada Agent")
    assert agent.public() == {
        "oid": fake.AGENT_OID,
        "upn": "ada@contoso.example",
        "email": "ada@contoso.example",
        "tenantId": fake.TENANT_ID,
        "name": "Ada Agent",
    }


def test_audience_forms() -> None:
    ok = [fake.CLIENT_ID, f"api://{fake.HOST}/{fake.CLIENT_ID}", f"api://other.example:8443/{fake.CLIENT_ID}"]
    bad = ["00000000-0000-0000-0000-000000000000", f"api:///{fake.CLIENT_ID}x", f"https://{fake.HOST}/{fake.CLIENT_ID}"]
    assert all(accepted_audience(aud, client_id=fake.CLIENT_ID) for aud in ok)
    assert not any(accepted_audience(aud, client_id=fake.CLIENT_ID) for aud in bad)
    assert accepted_audience(
        "https://desk.example/api", client_id=fake.CLIENT_ID, app_id_uri="https://desk.example/api"
    )
    assert not accepted_audience(fake.CLIENT_ID, client_id="")


async def test_configured_app_id_uri_and_audience_lists(signing_key: SigningKey) -> None:
    validator = _validator(signing_key, app_id_uri="https://desk.example/api")
    assert await validator.verify(fake.sign(fake.teams_claims(aud="https://desk.example/api"), signing_key))
    listed = fake.teams_claims(aud=["someone-else", fake.CLIENT_ID])
    assert await validator.verify(fake.sign(listed, signing_key))


@dataclass(frozen=True)
class FROM_NOW:  # noqa: N801 - reads as a value in the table below
    """A claim time this many seconds after the moment the test runs."""

    seconds: int

    def at(self) -> int:
        return int(time.time()) + self.seconds


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({"aud": "9d9e9f00-1111-4222-8333-444455556666"}, "wrong-audience"),
        ({"aud": f"api://{fake.HOST}/someone-else"}, "wrong-audience"),
        ({"tenant_id": fake.OTHER_TENANT_ID}, "wrong-tenant"),
        ({"iss": f"https://sts.windows.net/{fake.OTHER_TENANT_ID}/"}, "wrong-issuer"),
        ({"iss": "https://evil.example/v2.0"}, "wrong-issuer"),
        ({"lifetime": -120}, "token-expired"),
        ({"scp": "User.Read"}, "missing-scope"),
        ({"scp": None, "roles": ["Admin"]}, "missing-scope"),
        ({"oid": None}, "invalid-token"),
        ({"tid": None}, "invalid-token"),
        ({"exp": None}, "invalid-token"),
        ({"nbf": FROM_NOW(600)}, "invalid-token"),
    ],
)
async def test_bad_claims_are_refused(signing_key: SigningKey, overrides: dict[str, Any], kind: str) -> None:
    # Times relative to now are worked out when the test runs, not when it was collected (a long
    # suite would otherwise let "ten minutes from now" pass before the test starts).
    overrides = {name: value.at() if isinstance(value, FROM_NOW) else value for name, value in overrides.items()}
    problem = await _refused(_validator(signing_key), fake.sign(fake.teams_claims(**overrides), signing_key))
    assert problem.kind == kind
    assert problem.headers["WWW-Authenticate"].startswith("Bearer")


async def test_expiry_has_sixty_seconds_of_leeway(signing_key: SigningKey) -> None:
    assert await _validator(signing_key).verify(fake.sign(fake.teams_claims(lifetime=-30), signing_key))


async def test_any_tenant_when_the_tenant_setting_is_multi_tenant(signing_key: SigningKey) -> None:
    other = fake.sign(fake.teams_claims(tenant_id=fake.OTHER_TENANT_ID, version=1), signing_key)
    for tenant in ("", "common", "organizations"):
        agent = await _validator(signing_key, tenant_id=tenant).verify(other)
        assert agent.tid == fake.OTHER_TENANT_ID
    # The issuer must still name the token's own tenant.
    mismatched = fake.teams_claims(tenant_id=fake.OTHER_TENANT_ID, iss=f"https://sts.windows.net/{fake.TENANT_ID}/")
    assert (await _refused(_validator(signing_key, tenant_id="common"), fake.sign(mismatched, signing_key))).kind == (
        "wrong-issuer"
    )


async def test_forged_algorithms_are_refused(signing_key: SigningKey) -> None:
    validator = _validator(signing_key)
    claims = fake.teams_claims()
    for token in (fake.unsigned(claims, signing_key.kid), fake.hs256_with_public_key(claims, signing_key)):
        assert (await _refused(validator, token)).kind == "bad-alg"


async def test_signature_by_another_key_with_the_same_kid_is_refused(signing_key: SigningKey) -> None:
    impostor = SigningKey(fake.new_key().private_key, signing_key.kid)
    problem = await _refused(_validator(signing_key), fake.sign(fake.teams_claims(), impostor))
    assert problem.kind == "bad-signature"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 20000, "e30.e30.", ""])
async def test_malformed_tokens_are_refused(signing_key: SigningKey, token: str) -> None:
    await _refused(_validator(signing_key), token)


async def test_unknown_key_without_a_jwks_is_refused(signing_key: SigningKey) -> None:
    stranger = fake.new_key()
    assert (await _refused(_validator(signing_key), fake.sign(fake.teams_claims(), stranger))).kind == "unknown-key"


class _Jwks:
    """A key source standing in for PyJWKClient: a key set, or an error to raise."""

    def __init__(self, *, keys: list[SigningKey] | None = None, error: Exception | None = None) -> None:
        self.keys = {key.kid: PyJWK(key.jwk()) for key in keys or []}
        self.error = error
        self.calls = 0

    def get_signing_key(self, kid: str) -> PyJWK:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if kid not in self.keys:
            raise PyJWKClientError(f'Unable to find a signing key that matches: "{kid}"')
        return self.keys[kid]


async def test_keys_from_the_jwks_and_its_failures(signing_key: SigningKey) -> None:
    token = fake.sign(fake.teams_claims(), signing_key)
    found = _Jwks(keys=[signing_key])
    assert await TeamsTokenValidator(settings=_settings(), jwks_client=found).verify(token)
    assert found.calls == 1
    missing = TeamsTokenValidator(settings=_settings(), jwks_client=_Jwks())
    assert (await _refused(missing, token)).kind == "unknown-key"
    down = _Jwks(error=PyJWKClientConnectionError("Fail to fetch data from the url"))
    problem = await _refused(TeamsTokenValidator(settings=_settings(), jwks_client=down), token, 503)
    assert problem.headers["Retry-After"]
    empty = _Jwks(error=PyJWKClientError("The JWKS endpoint did not contain any signing keys"))
    await _refused(TeamsTokenValidator(settings=_settings(), jwks_client=empty), token, 503)
    # Forged algorithms never reach the JWKS.
    await _refused(TeamsTokenValidator(settings=_settings(), jwks_client=down), fake.unsigned({}, "k"))
    assert down.calls == 1


async def test_unconfigured_client_id_is_503(signing_key: SigningKey) -> None:
    token = fake.sign(fake.teams_claims(), signing_key)
    await _refused(_validator(signing_key, client_id=""), token, 503)


def _request(authorization: str | None) -> func.HttpRequest:
    headers = {} if authorization is None else {"Authorization": authorization}
    return func.HttpRequest("GET", "http://localhost/api/whoami", headers=headers, body=b"")


@pytest.mark.parametrize(
    ("header", "kind"),
    [(None, "missing-token"), ("", "missing-token"), ("Basic abc", "malformed-token"), ("Bearer", "malformed-token")],
)
async def test_authorization_header_is_required(signing_key: SigningKey, header: str | None, kind: str) -> None:
    with pytest.raises(Problem) as caught:
        await authenticate_agent(_request(header), validator=_validator(signing_key))
    assert (caught.value.status, caught.value.kind) == (401, kind)


async def test_authenticate_agent_reads_the_bearer_token(signing_key: SigningKey) -> None:
    token = fake.sign(fake.teams_claims(), signing_key)
    agent = await authenticate_agent(_request(f"bearer  {token} "), validator=_validator(signing_key))
    assert agent.oid == fake.AGENT_OID


def test_settings_and_factories_refuse_bad_config() -> None:
    with pytest.raises(ValueError, match="AAD_JWKS_URL"):
        make_jwks_client(settings=_settings(jwks_url="http://login.example/keys"))
    assert make_jwks_client(settings=_settings(jwks_url="http://127.0.0.1:9/keys"))
    with pytest.raises(ValueError, match="AAD_APP_TENANT_ID"):
        make_validator(settings=_settings(tenant_id="contoso.onmicrosoft.com"))
    with pytest.raises(ValueError, match="Development"):
        make_dev_identity(settings=_settings())


def test_settings_read_app_setting_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AAD_APP_CLIENT_ID", "cid")
    monkeypatch.setenv("AAD_APP_TENANT_ID", "Common")
    monkeypatch.setenv("AAD_JWKS_URL", "")
    monkeypatch.setenv("AZURE_FUNCTIONS_ENVIRONMENT", "Production")
    settings = AuthSettings()
    assert (settings.client_id, settings.multi_tenant, settings.is_development) == ("cid", True, False)
    assert settings.jwks_url == "https://login.microsoftonline.com/common/discovery/v2.0/keys"


async def test_dev_tokens_pass_only_in_development(tmp_path: Any) -> None:
    dev_settings = AuthSettings(environment="Development", client_id="", tenant_id="", dev_identity_key_file="")
    identity = make_dev_identity(settings=dev_settings)
    form = DevSignIn(name="Dev Agent", email="Dev@Example.com")
    body = identity.sign_in(form, settings=dev_settings)
    assert body["agent"]["oid"] == dev_oid("dev@example.com")
    assert body["agent"]["tenantId"] == DEV_TENANT_ID
    validator = make_validator(settings=dev_settings)
    # The factory trusts the worker's own dev key; this test's key is a different one.
    assert identity.kid not in validator._trusted
    trusted = TeamsTokenValidator(
        settings=dev_settings,
        jwks_client=None,
        trusted_keys={identity.kid: identity.public_key},
        client_id=DEV_CLIENT_ID,
    )
    agent = await trusted.verify(body["accessToken"])
    assert agent.public() == body["agent"]
    production = make_validator(settings=_settings())
    assert production._trusted == {}
    await _refused(TeamsTokenValidator(settings=_settings(), jwks_client=None), body["accessToken"])


def test_dev_key_file_is_reused(tmp_path: Any) -> None:
    settings = AuthSettings(environment="Development", dev_identity_key_file=str(tmp_path / "dev-key.pem"))
    first, second = make_dev_identity(settings=settings), make_dev_identity(settings=settings)
    assert first.kid == second.kid
    assert first.jwks()["keys"][0]["kid"] == first.kid
    assert (tmp_path / "dev-key.pem").stat().st_mode & 0o077 == 0
