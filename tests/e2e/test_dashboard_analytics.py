"""The dashboard's Analytics view in headless Chromium at 1366 px: empty states in words, figures after a
conversation, charts that follow the window's width, a refused range beside its field; statuses in words;
key rotation in Settings behind a confirmation that says what stops working."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.async_api import Page, ViewportSize, expect

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.e2e.axe import serious_violations
from tests.fixtures.browser import RESULTS, PageFactory
from tests.support import ADMIN_KEY, host_env, new_visitor, say, settled

pytestmark = pytest.mark.e2e
WIDE: ViewportSize = {"width": 1366, "height": 850}
NARROW: ViewportSize = {"width": 900, "height": 850}


@pytest.fixture(scope="module")
def quiet() -> Iterator[Azurite]:
    """An Azurite of its own, where nothing has happened yet."""
    azurite = start_azurite()
    yield azurite
    azurite.stop()


@pytest.fixture(scope="module")
def host(quiet: Azurite, start_host: Callable[..., Host]) -> Host:
    """The product on that Azurite."""
    started = start_host(host_env(quiet))
    with started.client() as api:
        assert api.get("/health").status_code == 200
    return started


async def _overflow(tab: Page) -> int:
    return int(await tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


async def test_analytics_view_empty_then_counted(host: Host, quiet: Azurite, page: PageFactory) -> None:
    tab = await page("analytics", viewport=WIDE)
    await tab.goto(f"{host.base_url}/dashboard?code={ADMIN_KEY}#analytics")
    await expect(tab.locator("#analytics-view")).to_be_visible()
    await expect(tab.locator("#an-cards .an-card")).to_have_count(8)
    await expect(tab.locator("#an-chart-cost")).to_contain_text("No AI cost yet: the offline bot is free")
    await expect(tab.locator("#an-chart-volume")).to_contain_text("No conversations in this period yet")
    await expect(tab.locator("#an-agents-empty")).to_be_visible()
    assert await _overflow(tab) <= 0
    first_card = tab.locator("#an-cards .an-card").first
    await first_card.locator("summary").click()
    await expect(first_card.locator(".how p")).to_contain_text("the visitor wrote at least one message")
    RESULTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(RESULTS / "dashboard-analytics-empty-1366.png"), full_page=True)
    assert await serious_violations(tab) == []

    with host.client() as api:
        visitor = new_visitor(api)
        assert say(api, visitor, "What are your opening hours?").status_code == 200
        settled(quiet, visitor.session_id)
    await tab.locator("#an-form button[type=submit]").click()
    await expect(first_card.locator(".an-value")).to_have_text("1")
    await expect(tab.locator("#an-chart-volume canvas").first).to_be_attached()
    await expect(tab.locator("#an-chart-cost")).to_contain_text("the offline bot is free")  # still no cost
    assert await _overflow(tab) <= 0
    await tab.screenshot(path=str(RESULTS / "dashboard-analytics-1366.png"), full_page=True)
    assert await serious_violations(tab) == []  # with figures and charts

    wide = await tab.locator("#an-chart-volume canvas").first.evaluate("c => c.getBoundingClientRect().width")
    await tab.set_viewport_size(NARROW)
    await tab.wait_for_function(
        "w => document.querySelector('#an-chart-volume canvas').getBoundingClientRect().width < w", arg=wide - 100
    )  # redrawn for the narrower window
    assert await _overflow(tab) <= 0
    await tab.set_viewport_size(WIDE)

    await tab.locator("#an-from").fill("2026-03-02")
    await tab.locator("#an-to").fill("2026-03-01")
    await tab.locator("#an-form button[type=submit]").click()
    await expect(tab.locator('[data-error-for="from"]')).to_contain_text("'from'")
    assert not page.errors, page.errors


async def test_statuses_in_words_and_rotation_behind_a_confirmation(host: Host, page: PageFactory) -> None:
    with host.client() as api:
        assert say(api, new_visitor(api), "Hello there").status_code == 200
    tab = await page("settings", viewport=WIDE)
    await tab.goto(f"{host.base_url}/dashboard?code={ADMIN_KEY}")
    await expect(tab.locator("#sessions-body tr").first).to_be_visible()
    statuses = await tab.locator("#sessions-body tr td:nth-child(2)").all_text_contents()
    assert statuses and set(statuses) <= {"With the bot", "Waiting for a person", "With an agent", "Closed"}
    await expect(tab.locator("header #rotate")).to_have_count(0)  # no longer in the header

    await tab.locator('#views [data-view="settings"]').click()
    await tab.locator("#rotate").click()
    dialog = tab.locator("#rotate-dialog")
    await expect(dialog).to_be_visible()
    for words in ("current admin key", "?code=", "scripts", "signed-in dashboard"):
        await expect(dialog).to_contain_text(words)
    assert await _overflow(tab) <= 0
    assert await serious_violations(tab) == []  # the confirmation dialog
    await tab.locator("#rotate-cancel").click()
    await expect(dialog).to_be_hidden()
    still = httpx.get(f"{host.base_url}/analytics", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert still.status_code == 200  # cancelled: the key still works
    assert not page.dialogs and not page.errors, (page.dialogs, page.errors)
