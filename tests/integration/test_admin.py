"""Admin authentication over real HTTP: the three credential forms, refusals, rotation, cookies, CSRF, throttling.

Failed keys are counted per client address, so tests that send wrong keys connect from their own
loopback address (127.0.x.y); the host sees a distinct client, as the Azure front end would.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.support import ADMIN_KEY, host_env, tables

_addresses = (f"127.0.{a}.{b}" for a, b in itertools.product(range(10, 250), range(2, 250)))

# Every admin route, as (method, path); each must refuse missing, wrong and old credentials.
ADMIN_ROUTES = [
    ("GET", "/dashboard"),
    ("GET", "/cost?window=24h"),
    ("GET", "/cost?window=7d&bucketHours=24"),
    ("GET", "/sessions?sortBy=cost&limit=5"),
    ("GET", "/sessions?sortBy=lastActivity"),
    ("GET", "/sessions/search?q=hello"),
    ("GET", "/sessions/00000000-0000-0000-0000-000000000000/transcript"),
    ("GET", "/ops/session"),
    ("POST", "/ops/signout"),
    ("POST", "/ops/rotate-key"),
    ("GET", "/teams-app.zip"),
    ("GET", "/teams-setup"),
    ("GET", "/teams-setup/checks"),
    ("POST", "/teams-setup/checks"),
]
CREDENTIALS = ["missing", "wrong-bearer", "wrong-code", "old-bearer", "old-code", "old-cookie", "forged-cookie"]


def client(host: Host, *, address: str | None = None) -> httpx.Client:
    """A client for ``host``, connecting from its own loopback address when given one."""
    transport = httpx.HTTPTransport(local_address=address) if address else None
    return httpx.Client(base_url=host.base_url, timeout=30, transport=transport)


def new_address() -> str:
    """A loopback address no other test connects from."""
    return next(_addresses)


def sign_in(api: httpx.Client, key: str) -> str:
    """Sign in (the client keeps the cookie); returns the CSRF token."""
    response = api.post("/ops/signin", json={"key": key})
    assert response.status_code == 200, response.text
    return response.json()["csrfToken"]


@pytest.fixture(scope="module")
def admin_host(app: Host) -> Host:
    """The product on the shared Azurite, with the test admin key."""
    return app


@dataclass
class Rotated:
    """A host whose key was rotated: the old key and cookie, and the new key."""

    host: Host
    old_key: str
    old_cookie: str
    new_key: str


@pytest.fixture(scope="module")
def rotated(start_host: Callable[..., Host]) -> Iterator[Rotated]:
    """A host on its own Azurite, signed in with the first key and then rotated by key."""
    azurite = start_azurite()
    try:
        host = start_host(host_env(azurite))
        with client(host) as api:
            sign_in(api, ADMIN_KEY)
            old_cookie = api.cookies["sd_admin"]
            rotation = api.post("/ops/rotate-key", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            assert rotation.status_code == 200, rotation.text
            yield Rotated(host, ADMIN_KEY, old_cookie, rotation.json()["adminKey"])
    finally:
        azurite.stop()


def test_each_auth_form_is_accepted(admin_host: Host) -> None:
    with client(admin_host) as api:
        assert api.get("/cost", params={"code": ADMIN_KEY}).status_code == 200
        assert api.get("/cost", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
        assert api.get("/cost").status_code == 401
        csrf = sign_in(api, ADMIN_KEY)
        assert api.get("/cost").status_code == 200
        session = api.get("/ops/session").json()
        assert session["method"] == "cookie" and session["csrfToken"] == csrf
        page = api.get("/dashboard", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "Content-Security-Policy" in page.headers


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_every_admin_route_refuses_missing_wrong_and_old_keys(
    rotated: Rotated, method: str, path: str, credential: str
) -> None:
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    sep = "&" if "?" in path else "?"
    if credential == "wrong-bearer":
        headers["Authorization"] = "Bearer sdk_not-the-key"
    elif credential == "wrong-code":
        path += f"{sep}code=sdk_not-the-key"
    elif credential == "old-bearer":
        headers["Authorization"] = f"Bearer {rotated.old_key}"
    elif credential == "old-code":
        path += f"{sep}code={rotated.old_key}"
    elif credential == "old-cookie":
        cookies["sd_admin"] = rotated.old_cookie
    elif credential == "forged-cookie":
        version, _, rest = rotated.old_cookie.partition(".")[2].partition(".")
        cookies["sd_admin"] = f"v1.{int(version) + 1}.{rest}"  # a newer version, old signature
    with client(rotated.host, address=new_address()) as api:
        api.cookies.update(cookies)
        response = api.request(method, path, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "set-cookie" not in response.headers


def test_rotation_takes_effect_at_once(rotated: Rotated) -> None:
    assert rotated.new_key != rotated.old_key and rotated.new_key.startswith("sdk_")
    with client(rotated.host, address=new_address()) as api:
        assert api.get("/cost", headers={"Authorization": f"Bearer {rotated.new_key}"}).status_code == 200
        assert api.get("/cost", headers={"Authorization": f"Bearer {rotated.old_key}"}).status_code == 401
        api.cookies["sd_admin"] = rotated.old_cookie
        assert api.get("/cost").status_code == 401
    # Rotating from a signed-in dashboard: that dashboard gets a fresh cookie, the key changes again.
    with client(rotated.host, address=new_address()) as api:
        csrf = sign_in(api, rotated.new_key)
        before = api.cookies["sd_admin"]
        again = api.post("/ops/rotate-key", headers={"X-CSRF-Token": csrf})
        assert again.status_code == 200, again.text
        body = again.json()
        assert {"adminKey", "rotatedAt", "csrfToken"} <= body.keys()
        assert api.cookies["sd_admin"] != before
        assert api.get("/cost").status_code == 200  # the new cookie works
        assert api.get("/cost", headers={"Authorization": f"Bearer {rotated.new_key}"}).status_code == 401
        assert api.get("/cost", params={"code": body["adminKey"]}).status_code == 200
        api.cookies.clear()
        api.cookies["sd_admin"] = before
        assert api.get("/cost").status_code == 401
    rotated.new_key = body["adminKey"]


def test_cookie_flags_in_development(admin_host: Host) -> None:
    with client(admin_host) as api:
        response = api.post("/ops/signin", json={"key": ADMIN_KEY})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("sd_admin=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age", "expires"} <= flags
    assert "SameSite=Strict" in cookie and "Path=/api" in cookie and "Max-Age=28800" in cookie
    assert "secure" not in flags  # plain http on localhost
    assert set(response.json()) == {"csrfToken", "expiresAt"}
    assert ADMIN_KEY not in admin_host.log()


def test_cookie_is_secure_in_production(azurite: Azurite, start_host: Callable[..., Host]) -> None:
    host = start_host(host_env(azurite, AZURE_FUNCTIONS_ENVIRONMENT="Production"))
    with client(host) as api:
        response = api.post("/ops/signin", json={"key": ADMIN_KEY})
        assert response.status_code == 200, response.text
        cookie = response.headers["set-cookie"]
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        signed_out = api.post("/ops/signout", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert "Max-Age=0" in signed_out.headers["set-cookie"] and "; Secure" in signed_out.headers["set-cookie"]


def test_cookie_posts_need_the_csrf_token(admin_host: Host) -> None:
    with client(admin_host) as api:
        csrf = sign_in(api, ADMIN_KEY)
        missing = api.post("/ops/signout")
        assert missing.status_code == 403 and missing.json()["type"].endswith("csrf-failed")
        assert api.post("/ops/signout", headers={"X-CSRF-Token": csrf[:-2] + "xx"}).status_code == 403
        assert api.post("/ops/rotate-key").status_code == 403  # nothing rotated without the token
        assert api.get("/cost").status_code == 200  # reads need no token
        signed_out = api.post("/ops/signout", headers={"X-CSRF-Token": csrf})
        assert signed_out.status_code == 200
        assert "Max-Age=0" in signed_out.headers["set-cookie"]
    with client(admin_host) as api:
        # Key-authenticated POSTs carry no cookie, so no CSRF token is needed.
        assert api.post("/ops/signout", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200


def test_repeated_wrong_keys_are_slowed_down(admin_host: Host) -> None:
    attacker = new_address()
    with client(admin_host, address=attacker) as api:
        statuses = [api.get("/cost", params={"code": f"sdk_guess-{i}"}).status_code for i in range(10)]
        assert statuses == [401] * 10
        throttled = api.get("/cost", params={"code": "sdk_guess-11"})
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        # Past the limit wrong keys keep getting 429, but the right key is never refused, in any form:
        # the owner may share the address (a NAT, the local host) with whoever got it wrong.
        assert api.get("/cost", params={"code": ADMIN_KEY}).status_code == 200
        assert api.post("/ops/signin", json={"key": ADMIN_KEY}).status_code == 200
        assert api.get("/cost", params={"code": "sdk_guess-12"}).status_code == 429
    with client(admin_host, address=new_address()) as api:
        assert api.get("/cost", params={"code": ADMIN_KEY}).status_code == 200  # other clients are unaffected


def test_signin_refuses_a_wrong_key(admin_host: Host) -> None:
    with client(admin_host, address=new_address()) as api:
        response = api.post("/ops/signin", json={"key": "sdk_wrong"})
        assert response.status_code == 401 and "set-cookie" not in response.headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert api.post("/ops/signin", json={}).status_code == 422
        assert api.post("/ops/signin", content=b"key=x", headers={"Content-Type": "text/plain"}).status_code == 415


def test_dashboard_asks_a_browser_to_sign_in(admin_host: Host) -> None:
    with client(admin_host) as api:
        page = api.get("/dashboard", headers={"Accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 401
        assert page.headers["content-type"].startswith("text/html")
        assert 'id="signin-form"' in page.text and "/api/vendor/uplot.js" in page.text
        assert "frame-ancestors" in page.headers["content-security-policy"]
        script = api.get("/dashboard/dashboard.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert api.get("/dashboard/secrets.txt").status_code == 404


CLIENT_ID = "6f1c2a4e-0000-4c5e-9d7a-3b2f1e0d9c8b"


def test_teams_app_package_is_built_for_this_deployment(azurite: Azurite, start_host: Callable[..., Host]) -> None:
    import io
    import json
    import struct
    import zipfile

    host = start_host(host_env(azurite, AAD_APP_CLIENT_ID=CLIENT_ID, PUBLIC_HOST="desk.contoso.example"))
    with client(host) as api:
        response = api.get("/teams-app.zip", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        again = api.get("/teams-app.zip", params={"code": ADMIN_KEY})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    assert again.content == response.content  # the same app id each time, so Teams updates one app
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["webApplicationInfo"] == {"id": CLIENT_ID, "resource": f"api://desk.contoso.example/{CLIENT_ID}"}
    assert manifest["validDomains"] == ["desk.contoso.example"]
    assert manifest["staticTabs"][0]["contentUrl"] == "https://desk.contoso.example/api/agent"
    for name, size in (("color.png", 192), ("outline.png", 32)):
        png = archive.read(name)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (size, size)


def test_teams_app_needs_the_client_id_and_the_setup_page_says_so(admin_host: Host) -> None:
    with client(admin_host) as api:
        missing = api.get("/teams-app.zip", params={"code": ADMIN_KEY})
        assert missing.status_code == 409 and missing.json()["type"].endswith("teams-not-configured")
        page = api.get("/teams-setup", params={"code": ADMIN_KEY})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "AAD_APP_CLIENT_ID is not set yet" in page.text and "access_as_user" in page.text
    assert "content-security-policy" in page.headers


def test_a_retried_rotation_with_its_idempotency_key_gets_the_same_new_key(
    fresh_azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    host = start_host(host_env(fresh_azurite))
    old = {"Authorization": f"Bearer {ADMIN_KEY}"}
    key = str(uuid.uuid4())
    with client(host) as api:
        first = api.post("/ops/rotate-key", headers={**old, "Idempotency-Key": key})
        assert first.status_code == 200, first.text
        new_key = first.json()["adminKey"]
        # The answer was lost: the caller retries with what it had, the old key and the same Idempotency-Key.
        again = api.post("/ops/rotate-key", headers={**old, "Idempotency-Key": key})
        assert again.status_code == 200, again.text
        assert again.json()["adminKey"] == new_key and again.json()["keyVersion"] == first.json()["keyVersion"]
        assert api.get("/cost", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
        assert api.get("/cost", headers=old).status_code == 401  # rotated once, not twice
        # The replay is sealed: nothing stored reveals the new key.
        stored = [dict(e) for e in tables(fresh_azurite).get_table_client("meta").list_entities()]
        assert not any(new_key in str(value) for entity in stored for value in entity.values())
        # Anyone else presenting the key gets nothing from it; the new key's holder is told it was used.
        assert (
            api.post("/ops/rotate-key", headers={"Authorization": "Bearer wrong", "Idempotency-Key": key}).status_code
            == 401
        )
        used = api.post("/ops/rotate-key", headers={"Authorization": f"Bearer {new_key}", "Idempotency-Key": key})
        assert used.status_code == 409 and used.json()["type"].endswith("/already-rotated")


def test_pages_are_framed_only_where_they_belong_and_never_carry_the_key(admin_host: Host) -> None:
    with client(admin_host) as api:
        setup = api.get("/teams-setup", params={"code": ADMIN_KEY})
        dashboard = api.get("/dashboard", params={"code": ADMIN_KEY})
        agent = api.get("/agent")
    assert setup.status_code == dashboard.status_code == agent.status_code == 200
    for admin_page in (setup, dashboard):
        csp = admin_page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "teams.microsoft.com" not in csp
        assert admin_page.headers["x-content-type-options"] == "nosniff"
        assert admin_page.headers["x-frame-options"] == "DENY"
    assert ADMIN_KEY not in setup.text  # the package link works with the cookie the page sets
    assert "sd_admin=" in setup.headers["set-cookie"] and 'href="teams-app.zip"' in setup.text
    console_csp = agent.headers["content-security-policy"]
    assert "https://teams.microsoft.com" in console_csp  # the agent console is the one Teams tab
    for page in (setup, dashboard, agent):
        connect = page.headers["content-security-policy"].split("connect-src ")[1].split(";")[0]
        assert connect.split() == ["'self'"]  # no SignalR configured here: nothing else to reach
