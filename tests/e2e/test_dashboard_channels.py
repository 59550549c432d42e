"""The dashboard's Channels view in headless Chromium at 1366, 390 and 320 px: with Telegram configured its
card says connected and shows the webhook URL, the others name the app settings they miss (never values),
the ACS URL's token stays masked until revealed and is copied whole; a signed Telegram update and a widget
conversation appear as the last events after a reload; nothing overflows sideways."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.async_api import Page, ViewportSize, expect

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.fakes import channel_apis
from tests.fakes.http_server import FakeServer
from tests.fixtures.browser import RESULTS, PageFactory
from tests.support import ADMIN_KEY, eventually, host_env, new_visitor, say

pytestmark = pytest.mark.e2e
WIDE: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
SMALLEST: ViewportSize = {"width": 320, "height": 640}
TELEGRAM_TOKEN = "123456:dashboard-telegram-token"
TELEGRAM_SECRET = "dashboard_secret-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
TITLES = ["Web widget", "SMS (ACS)", "WhatsApp (ACS)", "WhatsApp (Meta)", "Twilio (SMS, WhatsApp)", "Telegram",
          "Email (SendGrid)"]  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    """Telegram's Bot API (the bot's replies go there)."""
    server = channel_apis.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def quiet() -> Iterator[Azurite]:
    """An Azurite of its own, where no channel event has happened yet."""
    azurite = start_azurite()
    yield azurite
    azurite.stop()


@pytest.fixture(scope="module")
def host(quiet: Azurite, fake: FakeServer, start_host: Callable[..., Host]) -> Host:
    """Telegram connected; ACS half set up (its resource but neither a number nor a WhatsApp channel)."""
    return start_host(
        host_env(
            quiet,
            TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
            TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET,
            TELEGRAM_API_URL=fake.url,
            ACS_ENDPOINT=fake.url,
        )
    )


def _listed(host: Host) -> dict[str, dict[str, Any]]:
    with host.client(headers=ADMIN) as api:
        response = api.get("/channels")
    assert response.status_code == 200, response.text
    return {c["id"]: c for c in response.json()["channels"]}


async def _overflow(tab: Page) -> int:
    return int(await tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


async def _missing(tab: Page, card: str) -> list[str]:
    return [t.strip() for t in await tab.locator(f'[data-channel="{card}"] .ch-missing li').all_text_contents()]


async def test_channels_view(host: Host, fake: FakeServer, page: PageFactory) -> None:
    listed = _listed(host)
    telegram_url = listed["telegram"]["webhookUrl"]
    acs_url = listed["acs"]["webhookUrl"]
    token = acs_url.split("token=", 1)[1]
    assert telegram_url.endswith("/api/channels/telegram") and len(token) >= 32

    tab = await page("channels", viewport=WIDE, permissions=["clipboard-read", "clipboard-write"])
    await tab.goto(f"{host.base_url}/dashboard?code={ADMIN_KEY}#channels")
    view = tab.locator("#channels-view")
    await expect(view).to_be_visible()
    await expect(tab.locator('#views [data-view="channels"]')).to_have_attribute("aria-current", "true")
    await expect(view.locator(".ch-card h3")).to_have_text(TITLES)

    telegram = view.locator('[data-channel="telegram"]')
    await expect(telegram.locator(".ch-badge")).to_have_text("Connected")
    await expect(telegram.locator(".ch-url")).to_have_text(telegram_url)
    await expect(telegram.locator(".ch-missing")).to_have_count(0)
    await expect(telegram.locator(".ch-hint")).to_contain_text("secret_token")
    await expect(telegram.locator(".ch-last")).to_have_text("No event received yet.")
    await expect(view.locator('[data-channel="web"] .ch-badge')).to_have_text("Always on")
    await expect(view.locator('[data-channel="web"] .ch-url')).to_contain_text("/api/widget.js")
    await expect(view.locator("#ch-note")).to_contain_text("1 of 6 messaging channels connected")

    # The others: not connected, each naming what it misses (ACS: only its own half, the resource is set).
    for card in ("acs-sms", "acs-whatsapp", "whatsapp", "twilio", "email"):
        await expect(view.locator(f'[data-channel="{card}"] .ch-badge')).to_have_text("Not connected")
    assert await _missing(tab, "acs-sms") == ["ACS_PHONE_NUMBER"]
    assert await _missing(tab, "acs-whatsapp") == ["ACS_WHATSAPP_CHANNEL_ID"]
    assert await _missing(tab, "twilio") == ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"]
    assert await _missing(tab, "whatsapp") == [
        "META_APP_SECRET", "META_VERIFY_TOKEN", "META_ACCESS_TOKEN", "META_PHONE_NUMBER_ID",
    ]  # fmt: skip
    assert await _missing(tab, "email") == ["SENDGRID_API_KEY", "SENDGRID_INBOUND_PUBLIC_KEY", "SUPPORT_EMAIL_FROM"]
    await expect(view.locator('[data-channel="whatsapp"] .ch-hint')).to_contain_text("verify token")

    # Names of settings, never their values; the ACS token masked until revealed (by keyboard), copied whole.
    text = await tab.locator("body").inner_text()
    assert TELEGRAM_SECRET not in text and TELEGRAM_TOKEN not in text and token not in text
    sms = view.locator('[data-channel="acs-sms"]')
    reveal = sms.locator('[data-action="reveal"]')
    await reveal.focus()
    await tab.keyboard.press("Enter")
    await expect(reveal).to_have_attribute("aria-pressed", "true")
    await expect(sms.locator(".ch-url")).to_have_text(acs_url)
    await tab.keyboard.press("Space")
    await expect(sms.locator(".ch-url")).not_to_contain_text(token)
    await sms.locator('[data-action="copy"]').click()
    await expect(sms.locator(".ch-status")).to_have_text("Copied.")
    assert await tab.evaluate("navigator.clipboard.readText()") == acs_url

    assert await _overflow(tab) <= 0
    RESULTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(RESULTS / "dashboard-channels-1366.png"), full_page=True)

    # A signed Telegram update, and a widget conversation: after a reload both are the last events.
    chat_id = int(str(uuid.uuid4().int)[:9])
    update = {
        "update_id": chat_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "text": "What is your return policy?",
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "T"},
        },
    }
    with host.client() as api:
        sent = api.post("/channels/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
        assert sent.status_code == 200, sent.text
        assert say(api, new_visitor(api), "Hello from the website").status_code == 200
    eventually(lambda: _listed(host)["telegram"]["lastEvent"], what="the Telegram event recorded")
    eventually(
        lambda: [
            b for b in channel_apis.sent(fake, f"/bot{TELEGRAM_TOKEN}/sendMessage") if b["chat_id"] == str(chat_id)
        ],
        what="the bot's Telegram reply",
    )  # the conversation ran through (so nothing is left running when the host stops)
    await tab.reload()
    await expect(telegram.locator(".ch-last")).to_contain_text("Last event:")
    await expect(telegram.locator(".ch-last")).to_contain_text("Telegram message")
    assert (
        await telegram.locator(".ch-last time").get_attribute("datetime")
        == _listed(host)["telegram"]["lastEvent"]["at"]
    )
    await expect(view.locator('[data-channel="web"] .ch-last')).to_contain_text("Widget conversation")
    await expect(view.locator('[data-channel="twilio"] .ch-last')).to_have_text("No event received yet.")
    await tab.screenshot(path=str(RESULTS / "dashboard-channels-event-1366.png"), full_page=True)

    # A phone, and the narrowest window: one column, every card readable, nothing wider than the screen.
    for size, name in ((PHONE, "390"), (SMALLEST, "320")):
        await tab.set_viewport_size(size)
        await expect(telegram.locator(".ch-url")).to_be_visible()
        assert await _overflow(tab) <= 0, name
        boxes = [await card.bounding_box() for card in await view.locator(".ch-card").all()]
        assert all(b is not None and b["x"] >= 0 and b["x"] + b["width"] <= size["width"] for b in boxes), name
        await tab.screenshot(path=str(RESULTS / f"dashboard-channels-{name}.png"), full_page=True)
    assert not page.errors and not page.dialogs, (page.errors, page.dialogs)
