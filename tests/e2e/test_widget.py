"""The chat widget on the demo page, in a real Chromium against the real app (no SignalR: it polls)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import Page, Route, expect

from tests.conftest import Host
from tests.fixtures.browser import PageFactory

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

XSS = "<img src=x onerror=alert(1)>"


async def _open_demo(page: PageFactory, app: Host, name: str = "visitor") -> Page:
    visitor = await page(name)
    await visitor.goto(f"{app.base_url}/demo")
    await expect(visitor.locator("support-desk-widget .launcher")).to_be_visible()
    return visitor


async def _open_with_keyboard(visitor: Page) -> None:
    launcher = visitor.locator("support-desk-widget .launcher")
    await launcher.focus()
    await visitor.keyboard.press("Enter")
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    await expect(visitor.get_by_role("dialog")).to_be_visible()
    await expect(visitor.get_by_label("Your message")).to_be_focused()


async def test_widget_chat_history_and_escaping(page: PageFactory, app: Host) -> None:
    """Open by keyboard, get the bot's answer, keep history across a reload, show markup as text."""
    visitor = await _open_demo(page, app)
    launcher = visitor.locator("support-desk-widget .launcher")

    # The page's hostile CSS (button {display:none}, * {font-size: 40px !important}) doesn't reach in.
    assert await launcher.evaluate("b => getComputedStyle(b).display") != "none"
    assert await launcher.get_attribute("aria-label") and await launcher.get_attribute("aria-expanded") == "false"
    await _open_with_keyboard(visitor)
    box = visitor.get_by_label("Your message")
    assert await box.evaluate("t => getComputedStyle(t).fontSize") == "16px"
    assert await box.evaluate("t => getComputedStyle(t).visibility") == "visible"

    await box.press_sequentially("How long does shipping take?")
    await box.press("Enter")
    log = visitor.get_by_role("log")
    await expect(log.locator(".msg.visitor[data-seq]")).to_have_text(re.compile("How long does shipping take"))
    await expect(log.locator(".msg.bot[data-seq]").first).to_contain_text("business days", timeout=20_000)
    await expect(box).to_have_value("")

    await visitor.reload()
    await expect(launcher).to_be_visible()
    if await launcher.get_attribute("aria-expanded") != "true":
        await launcher.click()
    await expect(log.locator(".msg.visitor[data-seq]").first).to_contain_text("How long does shipping take")
    await expect(log.locator(".msg.bot[data-seq]").first).to_contain_text("business days")

    await box.fill(XSS)
    await box.press("Enter")
    sent = log.locator(".msg.visitor[data-seq]").filter(has_text="onerror")
    await expect(sent).to_have_count(1)
    assert XSS in await sent.inner_text()
    await expect(log.locator(".msg.bot[data-seq]")).to_have_count(2, timeout=20_000)
    assert await visitor.locator("img").count() == 0  # light DOM and (open) shadow DOM
    assert await visitor.locator("support-desk-widget img").count() == 0
    assert page.dialogs == []

    await visitor.keyboard.press("Escape")
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await expect(visitor.get_by_role("dialog")).to_be_hidden()
    await expect(launcher).to_be_focused()
    assert page.errors == []


async def test_widget_keeps_text_on_error_and_retries_with_the_same_key(page: PageFactory, app: Host) -> None:
    """A failed send leaves the text in the box with a polite message; the retry reuses the Idempotency-Key."""
    visitor = await _open_demo(page, app, "retry")
    keys: list[str] = []
    failures = {"left": 1}

    async def flaky_chat(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        keys.append(route.request.headers.get("idempotency-key", ""))
        if failures["left"]:
            failures["left"] -= 1
            problem = {"title": "Service Unavailable", "status": 503, "detail": "The assistant is resting."}
            await route.fulfill(status=503, content_type="application/problem+json", body=json.dumps(problem))
            return
        await route.continue_()

    await visitor.route(re.compile(r".*/api/chat$"), flaky_chat)
    await _open_with_keyboard(visitor)
    box = visitor.get_by_label("Your message")
    await box.fill("What is your return policy?")
    await box.press("Enter")
    alert = visitor.locator("support-desk-widget .error")
    await expect(alert).to_be_visible()
    await expect(alert).to_contain_text("The assistant is resting.")
    await expect(box).to_have_value("What is your return policy?")

    await visitor.get_by_role("button", name="Send").click()
    await expect(visitor.get_by_role("log").locator(".msg.bot[data-seq]").first).to_contain_text(
        "30 days", timeout=20_000
    )
    await expect(box).to_have_value("")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
