"""The dashboard's Settings and Activity views in headless Chromium: saving, field errors, a conflict with
another admin, a preset, the audit list with a filter, and a timeline that shows markup as text."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.async_api import expect

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.fixtures.browser import RESULTS, PageFactory
from tests.support import ADMIN_KEY, host_env, new_visitor, say, settled

pytestmark = pytest.mark.e2e
MARKUP = '<img src=x onerror="window.__pwned=1"><b>bold</b> question'
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def desk(start_host: Callable[..., Host]) -> Iterator[tuple[Host, Azurite]]:
    """A host on its own Azurite."""
    azurite = start_azurite()
    try:
        yield start_host(host_env(azurite)), azurite
    finally:
        azurite.stop()


def config(host: Host) -> httpx.Response:
    with host.client(headers=ADMIN) as api:
        return api.get("/config")


async def test_settings_save_errors_conflict_and_presets(desk: tuple[Host, Azurite], page: PageFactory) -> None:
    host, _ = desk
    tab = await page("settings")
    await tab.goto(f"{host.base_url}/dashboard?code={ADMIN_KEY}#settings")
    form = tab.locator("#settings-form")
    await expect(form).to_be_visible()
    await expect(tab.locator("#overview-view")).to_be_hidden()
    await expect(tab.locator("#cfg-botEnabled")).to_be_checked()
    await expect(tab.locator("#cfg-costCaps-aiCallsPerDay")).to_have_value("2000")

    # Save: the kill switch and a cap.
    await tab.locator("#cfg-botEnabled").uncheck()
    await tab.locator("#cfg-costCaps-perDayUsd").fill("5")
    await tab.locator("#settings-save").click()
    await expect(tab.locator("#settings-status")).to_contain_text("Saved.")
    stored = config(host).json()
    assert stored["botEnabled"] is False and stored["costCaps"]["perDayUsd"] == 5
    await expect(tab.locator("[data-hint-for='costCaps.perDayUsd']")).to_contain_text("set here")

    # A field the server refuses is named beside it; nothing is stored.
    before = config(host).headers["etag"]
    await tab.locator("#cfg-officeHours").check()
    await tab.locator("#cfg-officeHours-timezone").fill("Mars/Olympus")
    await tab.locator("#cfg-officeHours-weekly-mon").fill("09:00-17:00")
    await tab.locator("#settings-save").click()
    await expect(tab.locator("[data-error-for='officeHours.timezone']")).to_contain_text("IANA time zone")
    assert config(host).headers["etag"] == before
    await tab.locator("#cfg-officeHours-timezone").fill("Europe/Madrid")
    await tab.locator("#settings-save").click()
    await expect(tab.locator("#settings-status")).to_contain_text("Saved.")
    assert config(host).json()["officeHours"]["weekly"]["mon"] == ["09:00-17:00"]

    # Another admin changes something meanwhile: saving shows the conflict; "over them" keeps both changes.
    with host.client(headers=ADMIN) as api:
        assert api.patch("/config", json={"handoffThreshold": 0.7}, headers={"If-Match": "*"}).status_code == 200
    await tab.locator("#cfg-visitorChoice").check()
    await tab.locator("#settings-save").click()
    await expect(tab.locator("#settings-conflict")).to_be_visible()
    assert config(host).json()["visitorChoice"] is False
    await tab.locator("#settings-overwrite").click()
    await expect(tab.locator("#settings-conflict")).to_be_hidden()
    await expect(tab.locator("#cfg-handoffThreshold")).to_have_value("0.7")
    changed = config(host).json()
    assert changed["visitorChoice"] is True and changed["handoffThreshold"] == 0.7

    await tab.locator("[data-preset='balanced']").click()
    await expect(tab.locator("#settings-status")).to_contain_text('Preset "balanced" applied.')
    await expect(tab.locator("#cfg-autonomy")).to_have_value("auto-after")
    assert config(host).json()["costCaps"]["perDayUsd"] == 100
    assert page.errors == []


async def test_activity_lists_filters_and_shows_a_timeline_as_text(
    desk: tuple[Host, Azurite], page: PageFactory
) -> None:
    host, azurite = desk
    with host.client(headers=ADMIN) as api:
        assert api.patch("/config", json={"botEnabled": False}, headers={"If-Match": "*"}).status_code == 200
        visitor = new_visitor(api)
        assert say(api, visitor, MARKUP).json()["handoff"] is True
        assert api.patch("/config", json={"botEnabled": True}, headers={"If-Match": "*"}).status_code == 200
    settled(azurite, visitor.session_id)

    tab = await page("activity")
    await tab.goto(f"{host.base_url}/dashboard?code={ADMIN_KEY}")
    await tab.locator("#views [data-view='activity']").click()
    await expect(tab.locator("#activity-body tr").first).to_be_visible()
    await expect(tab.locator("#activity-body")).to_contain_text("kill-switch:released")
    await expect(tab.locator("#activity-refusals")).not_to_have_text("0")

    await tab.locator("#activity-event").fill("guard:*")
    await tab.locator("#activity-form button[type='submit']").click()
    rows = tab.locator("#activity-body tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("guard:bot-off")
    await rows.first.locator("button.link").click()
    timeline = tab.locator("#activity-timeline-items li")
    await expect(timeline.first).to_contain_text("status:open")
    await expect(tab.locator("#activity-timeline-items li.visitor .text")).to_have_text(MARKUP)
    assert await tab.locator("#activity-timeline img, #activity-timeline b").count() == 0

    await tab.locator("#activity-event").fill("nonsense")
    await tab.locator("#activity-form button[type='submit']").click()
    await expect(tab.locator("#activity-error")).to_contain_text("event")
    assert await tab.evaluate("window.__pwned") is None
    assert page.errors == []
    RESULTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(RESULTS / "dashboard-activity.png"), full_page=True)
