"""The widget shows a bot answer's sources as safe links, in a real Chromium against the real app."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest
from playwright.async_api import Page, Route, expect

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.fixtures.browser import PageFactory
from tests.fixtures.knowledge import put_page_source
from tests.support import host_env

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

XSS_TITLE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def cited_app(start_host: Callable[..., Host]) -> Iterator[Host]:
    """The product on an Azurite of its own, knowing one help page with a URL."""
    azurite: Azurite = start_azurite()
    try:
        put_page_source(azurite, "Boot care", "Wax leather boots twice a season.", "https://shop.example/care", "boots")
        yield start_host(host_env(azurite))
    finally:
        azurite.stop()


async def _ask(visitor: Page, question: str) -> None:
    box = visitor.get_by_label("Your message")
    await box.fill(question)
    await box.press("Enter")


async def test_the_widget_links_the_source_of_an_answer_and_keeps_it(page: PageFactory, cited_app: Host) -> None:
    visitor = await page("visitor")
    await visitor.goto(f"{cited_app.base_url}/demo")
    await visitor.locator("support-desk-widget .launcher").click()
    await _ask(visitor, "How often should I wax leather boots?")
    answer = visitor.get_by_role("log").locator(".msg.bot[data-seq]").last
    await expect(answer).to_contain_text("Wax leather boots twice a season.", timeout=20_000)
    link = answer.get_by_role("link", name="Boot care")
    await expect(link).to_have_attribute("href", "https://shop.example/care#boots")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(answer.get_by_role("list", name="Sources")).to_be_visible()

    await _ask(visitor, "How long does shipping take?")  # the knowledge setting: a source without a URL
    setting = visitor.get_by_role("log").locator(".msg.bot[data-seq]").last
    await expect(setting).to_contain_text("3 to 5 business days", timeout=20_000)
    await expect(setting.locator(".src li")).to_have_text("Knowledge base")
    assert await setting.locator(".src a").count() == 0

    await visitor.reload()  # the history brings the citations back
    launcher = visitor.locator("support-desk-widget .launcher")
    if await launcher.get_attribute("aria-expanded") != "true":
        await launcher.click()
    first = visitor.get_by_role("log").locator(".msg.bot[data-seq]").first
    await expect(first.get_by_role("link", name="Boot care")).to_have_attribute(
        "href", "https://shop.example/care#boots"
    )
    assert page.errors == [] and page.dialogs == []


async def test_hostile_citations_are_never_links_or_markup(page: PageFactory, cited_app: Host) -> None:
    """Whatever a reply carries (a javascript: URL, markup in a title), the widget shows only text."""
    visitor = await page("hostile")

    async def poisoned(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        response = await route.fetch()
        body = await response.json()
        body["reply"]["citations"] = [
            {"sourceId": "a", "title": XSS_TITLE, "url": "javascript:alert(1)"},
            {"sourceId": "b", "title": "Data page", "url": "data:text/html,<script>alert(1)</script>"},
            {"sourceId": "c", "title": "Relative", "url": "/api/demo"},
            {"sourceId": "d", "title": "Fine", "url": "https://shop.example/fine"},
        ]
        await route.fulfill(response=response, body=json.dumps(body))

    await visitor.route(re.compile(r".*/api/chat$"), poisoned)
    await visitor.goto(f"{cited_app.base_url}/demo")
    await visitor.locator("support-desk-widget .launcher").click()
    await _ask(visitor, "How often should I wax leather boots?")
    answer = visitor.get_by_role("log").locator(".msg.bot[data-seq]").last
    sources = answer.locator(".src li")
    await expect(sources).to_have_count(4, timeout=20_000)
    await expect(sources.nth(0)).to_have_text(XSS_TITLE)  # the markup as text
    links = answer.locator(".src a")
    await expect(links).to_have_count(1)  # only the https one
    await expect(links).to_have_attribute("href", "https://shop.example/fine")
    assert await visitor.locator("support-desk-widget img").count() == 0
    assert await visitor.locator("img").count() == 0
    await sources.nth(0).click()  # a plain text item: clicking it runs nothing
    assert page.dialogs == [] and page.errors == []
