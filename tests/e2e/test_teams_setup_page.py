"""The guided Teams setup page in headless Chromium at 1366 and 390 px: numbered steps with the dashboard's
styling, every value with a copy button that copies it whole, the values following the typed client id,
the live checks all passing under the dev identity (a fake Microsoft Entra for discovery) and the done
state showing; nothing overflows sideways and the buttons are 44 px tall."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.async_api import Page, ViewportSize, expect

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.fakes.http_server import FakeServer
from tests.fixtures.browser import RESULTS, PageFactory
from tests.integration.test_teams_setup_check import CLIENT_ID, HOST, entra, finished_setup_env
from tests.support import ADMIN_KEY

pytestmark = pytest.mark.e2e
WIDE: ViewportSize = {"width": 1366, "height": 850}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def fake_entra() -> Iterator[FakeServer]:
    """Microsoft Entra's discovery endpoints."""
    server = FakeServer(entra).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def storage() -> Iterator[Azurite]:
    """An Azurite of its own."""
    azurite = start_azurite()
    yield azurite
    azurite.stop()


@pytest.fixture(scope="module")
def host(storage: Azurite, fake_entra: FakeServer, start_host: Callable[..., Host]) -> Host:
    """A deployment whose admin did every step."""
    return start_host(finished_setup_env(storage, fake_entra.url))


async def _overflow(tab: Page) -> int:
    return int(await tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


async def test_the_guided_setup_copies_values_and_shows_done(host: Host, page: PageFactory) -> None:
    tab = await page("teams-setup", viewport=WIDE, permissions=["clipboard-read", "clipboard-write"])
    await tab.goto(f"{host.base_url}/teams-setup?code={ADMIN_KEY}")
    await expect(tab.locator(".steps > li")).to_have_count(7)
    # The dashboard's look: its style sheet applied (the card's white background and border).
    assert await tab.locator(".step").first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"

    # The live checks: every one passes under the dev identity, and the done state says so.
    await expect(tab.locator("#done")).to_be_visible()
    await expect(tab.locator("#verdict")).to_have_text("Every check passes.")
    items = tab.locator("#check-list li")
    await expect(items.filter(has_text="Sign-in token")).to_contain_text("Issuer and audience match")
    assert await tab.locator("#check-list li.fail").count() == 0 and await items.count() >= 7

    # Copy buttons copy the value beside them, whole.
    app_id_uri = f"api://{HOST}/{CLIENT_ID}"
    row = tab.locator(".copyrow", has_text="Application ID URI")
    await expect(row.locator(".value")).to_have_text(app_id_uri)
    await row.locator("button.copy").click()
    await expect(row.locator("button.copy")).to_have_text("Copied")
    assert await tab.evaluate("navigator.clipboard.readText()") == app_id_uri
    setting = tab.locator(".copyrow", has_text="AAD_APP_TENANT_ID").locator("button.copy")
    await setting.click()
    assert await tab.evaluate("navigator.clipboard.readText()") == "AAD_APP_TENANT_ID"

    # The values follow the client id the admin types (as text: markup stays text).
    other = "0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
    await tab.fill("#client-id", other.upper())
    await expect(row.locator(".value")).to_have_text(f"api://{HOST}/{other}")
    await expect(tab.locator(".copyrow", has_text="Authorized scope").locator(".value")).to_have_text(
        f"api://{HOST}/{other}/access_as_user"
    )
    await tab.fill("#client-id", "<img src=x onerror=alert(1)>")
    await expect(row.locator(".value")).to_have_text(f"api://{HOST}/<Application (client) ID>")
    await tab.fill("#client-id", CLIENT_ID)

    # A pasted token for nothing: the check fails, the done state goes away; "Check again" brings it back.
    await tab.locator("details summary").click()
    await tab.fill("#token", "not-a-token")
    await tab.click("#check-token")
    await expect(items.filter(has_text="Sign-in token")).to_contain_text("The bearer token is not a JWT.")
    await expect(tab.locator("#done")).to_be_hidden()
    await tab.fill("#token", "")
    await tab.click("#run-checks")
    await expect(tab.locator("#done")).to_be_visible()

    assert await _overflow(tab) <= 0
    RESULTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(RESULTS / "teams-setup-1366.png"), full_page=True)

    # A phone: no sideways scroll, each value inside the screen, buttons big enough to touch.
    await tab.set_viewport_size(PHONE)
    await expect(tab.locator("#done")).to_be_visible()
    assert await _overflow(tab) <= 0
    for box in [await b.bounding_box() for b in await tab.locator("button.copy, #run-checks").all()]:
        assert box is not None and box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    for box in [await v.bounding_box() for v in await tab.locator(".copyrow .value").all()]:
        assert box is not None and box["x"] + box["width"] <= 390
    await tab.screenshot(path=str(RESULTS / "teams-setup-390.png"), full_page=True)
    assert not page.errors and not page.dialogs, (page.errors, page.dialogs)
