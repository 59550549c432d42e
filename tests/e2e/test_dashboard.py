"""The admin dashboard in headless Chromium: sign in, chart and totals, search, a transcript, markup as text."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import ViewportSize, expect

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.e2e.axe import serious_violations
from tests.fixtures.browser import RESULTS, PageFactory
from tests.support import ADMIN_KEY, host_env, in_storage, seed_session

pytestmark = pytest.mark.e2e
WIDE: ViewportSize = {"width": 1366, "height": 850}
VIEWS = ["overview", "analytics", "settings", "activity", "knowledge", "channels"]
MARKUP = '<img src=x onerror="window.__pwned=1"><b>bold claim</b> about my refund'


@pytest.fixture(scope="module")
def seeded(start_host: Callable[..., Host]) -> Iterator[tuple[Host, list[str]]]:
    """A host on its own Azurite with rollups and three sessions, one holding markup."""
    from shared.storage.rollups import RollupRepository

    azurite: Azurite = start_azurite()
    host = start_host(host_env(azurite))
    with host.client() as api:
        assert api.get("/health").status_code == 200
    now = datetime.now(UTC)

    async def seed() -> list[str]:
        rollups = RollupRepository()
        await rollups.add(now, calls=3, promptTokens=1200, completionTokens=300, costMicroUsd=42_000, sessions=3,
                          messages=7, handoffs=1)  # fmt: skip
        await rollups.add(now - timedelta(hours=5), calls=1, promptTokens=100, completionTokens=50, costMicroUsd=8_000)
        return [
            await seed_session(
                [("visitor", MARKUP), ("bot", "Refunds take 5 days")],
                at=now - timedelta(minutes=9),
                cost_micro=30_000,
                tokens=(800, 200),
            ),  # fmt: skip
            await seed_session(
                [("visitor", "Where is my parcel?"), ("bot", "It ships tomorrow")],
                at=now - timedelta(minutes=5),
                cost_micro=10_000,
                tokens=(300, 80),
            ),  # fmt: skip
            await seed_session([("visitor", "Hello"), ("bot", "Hi!")], at=now - timedelta(minutes=1), cost_micro=2_000),
        ]

    try:
        yield host, in_storage(azurite, seed)
    finally:
        azurite.stop()


async def test_dashboard_sign_in_chart_search_and_transcript(seeded: tuple[Host, list[str]], page: PageFactory) -> None:
    host, ids = seeded
    tab = await page("dashboard")
    await tab.goto(f"{host.base_url}/dashboard")
    await tab.locator("#signin-key").fill("sdk_wrong-key")
    await tab.locator("#signin-form button").click()
    await expect(tab.locator("#signin-error")).not_to_be_empty()
    await tab.locator("#signin-key").fill(ADMIN_KEY)
    await tab.locator("#signin-form button").click()

    await expect(tab.locator("#app")).to_be_visible()
    await expect(tab.locator("#chart canvas").first).to_be_attached()
    await expect(tab.locator("#total-cost")).to_have_text("$0.0500")
    await expect(tab.locator("#total-sessions")).to_have_text("3")
    await expect(tab.locator("#total-messages")).to_have_text("7")
    await expect(tab.locator("#total-handoff")).to_have_text("33.3%")
    await expect(tab.locator("#total-tokens")).to_have_text(re.compile(r"1[,.\u202f]?650"))
    await tab.locator("[data-window='7d']").click()
    await expect(tab.locator("[data-window='7d']")).to_have_attribute("aria-pressed", "true")
    await expect(tab.locator("#chart canvas").first).to_be_attached()

    rows = tab.locator("#sessions-body tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0).locator("td").first).to_have_text(ids[0])  # most expensive first
    await expect(tab.locator("#plan")).to_contain_text("Plan ")

    await tab.locator("#search-q").fill("BOLD claim")
    await tab.locator("#search-form button").click()
    result = tab.locator("#search-results li").first
    await expect(result.locator("mark")).to_have_text(["bold", "claim"])
    await expect(result.locator(".snippet")).to_contain_text("<b>")  # the markup shows as text
    assert await result.locator(".snippet b, .snippet img").count() == 0

    await result.locator("button.link").click()
    panel = tab.locator("#transcript")
    await expect(panel).to_be_visible()
    await expect(panel.locator("#transcript-messages li .text").first).to_have_text(MARKUP)
    assert await panel.locator("img, b").count() == 0
    await expect(panel.locator("#transcript-meta")).to_contain_text("tokens")
    await expect(panel.locator("#transcript-messages li").nth(1)).to_contain_text("800 + 200 tokens")
    assert await tab.evaluate("window.__pwned") is None
    assert page.errors == []

    RESULTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(RESULTS / "dashboard.png"), full_page=True)


async def test_every_view_at_1366_fits_and_has_no_serious_axe_finding(
    seeded: tuple[Host, list[str]], page: PageFactory
) -> None:
    """Each view in turn: no sideways scroll, a screenshot, and no serious or critical axe-core finding."""
    host, ids = seeded
    tab = await page("views", viewport=WIDE)
    await tab.goto(f"{host.base_url}/dashboard?code={ADMIN_KEY}")
    await expect(tab.locator("#sessions-body tr")).to_have_count(len(ids))
    RESULTS.mkdir(exist_ok=True)
    for view in VIEWS:
        await tab.locator(f'#views [data-view="{view}"]').click()
        panel = tab.locator(f'[data-view-panel="{view}"]')
        await expect(panel).to_be_visible()
        await expect(panel).not_to_be_empty()  # the view has drawn itself
        await expect(tab.locator(f'#views [data-view="{view}"]')).to_have_attribute("aria-current", "true")
        wide = await tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"{view} scrolls sideways by {wide} px"
        await tab.screenshot(path=str(RESULTS / f"dashboard-{view}-1366.png"), full_page=True)
        assert await serious_violations(tab) == [], view
    await tab.locator('#views [data-view="overview"]').click()
    await tab.locator("#sessions-body tr button.link").first.click()  # a transcript open
    await expect(tab.locator("#transcript")).to_be_visible()
    assert await serious_violations(tab) == [], "transcript"
    assert page.errors == []


async def test_dashboard_stays_usable_with_no_sessions(start_host: Callable[..., Host], page: PageFactory) -> None:
    azurite = start_azurite()
    try:
        host = start_host(host_env(azurite))
        tab = await page("empty")
        await tab.goto(f"{host.base_url}/dashboard?code={ADMIN_KEY}")
        await expect(tab.locator("#app")).to_be_visible()
        assert "code=" not in tab.url  # the key left the address bar
        await expect(tab.locator("#sessions-empty")).to_be_visible()
        await expect(tab.locator("#chart canvas").first).to_be_attached()
        await expect(tab.locator("#total-cost")).to_have_text("$0.0000")
        await tab.locator("#search-q").fill("anything")
        await tab.locator("#search-form button").click()
        await expect(tab.locator("#search-status")).to_have_text("No messages match.")
        assert page.errors == []
    finally:
        azurite.stop()
