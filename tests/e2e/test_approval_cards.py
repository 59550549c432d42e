"""Approval cards in two browsers: the visitor asks, the agent console shows the drafted reply with
its sources, the agent edits and sends it, and the visitor's widget receives the edited text live."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator

import pytest
from playwright.async_api import expect

from devhost.azurite import Azurite
from devhost.processes import Server, free_port, spawn
from tests.conftest import Host
from tests.fixtures.browser import PageFactory
from tests.support import KNOWLEDGE

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

SIGNALR_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"  # the emulator's well-known development key


@pytest.fixture(scope="module")
def signalr_emulator() -> Iterator[Server]:
    """The project's SignalR Service emulator on a free port."""
    port = free_port()
    server = spawn("signalr", [sys.executable, "-m", "devhost.signalr", "--port", str(port)], port=port)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def approving_app(module_azurite: Azurite, start_host: Callable[..., Host], signalr_emulator: Server) -> Host:
    """The product holding every bot reply for an agent's approval, live through the emulator."""
    return start_host(
        {
            "AzureWebJobsStorage": module_azurite.connection_string,
            "ALLOWED_ORIGINS": "https://shop.example",
            "KNOWLEDGE_TEXT": KNOWLEDGE,
            "AUTONOMY": "approve",
            "SIGNALR_CONNECTION_STRING": (
                f"Endpoint=http://127.0.0.1;Port={signalr_emulator.port};AccessKey={SIGNALR_KEY};Version=1.0;"
            ),
        }
    )


async def test_the_agent_edits_and_sends_a_held_reply_the_visitor_sees_live(
    page: PageFactory, approving_app: Host
) -> None:
    host = approving_app
    agent = await page("agent", viewport={"width": 320, "height": 800})  # usable at 320 px
    await agent.goto(f"{host.base_url}/agent")
    await agent.get_by_label("Name").fill("Alex Approver")
    await agent.get_by_label("Email").fill("alex@contoso.example")
    await agent.get_by_role("button", name="Sign in").click()
    await expect(agent.locator("#live")).to_have_text("Live")
    await expect(agent.get_by_text("No reply waits for approval.")).to_be_visible()

    visitor = await page("visitor")
    await visitor.goto(f"{host.base_url}/demo")
    await visitor.locator("support-desk-widget .launcher").click()
    box = visitor.get_by_label("Your message")
    await box.fill("How long does shipping take?")
    await box.press("Enter")
    await expect(visitor.locator("support-desk-widget .typing")).to_contain_text("A reply is being prepared")
    log = visitor.get_by_role("log")
    await expect(log.locator(".msg.visitor[data-seq]")).to_contain_text("How long does shipping take?")
    assert await log.locator(".msg.bot[data-seq]").count() == 0  # nothing sent before the agent approves

    card = agent.locator(".card").filter(has_text="How long does shipping take?")
    await expect(card).to_be_visible(timeout=10_000)
    draft = card.get_by_label("Reply to approve")
    await expect(draft).to_have_value(re.compile("business days"))  # the bot's draft, from the FAQ
    await expect(card.locator(".card-sources")).to_contain_text("Knowledge base")  # the source behind the draft
    width = await agent.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"the console scrolls sideways at 320 px ({width} px)"

    edited = "Hi! Shipping takes 3 to 5 business days, <b>express</b> arrives the next day."
    await draft.fill(edited)
    await card.get_by_role("button", name="Send").click()
    await expect(card).to_have_count(0)

    from_bot = log.locator(".msg.bot[data-seq]")
    await expect(from_bot).to_contain_text("express</b> arrives the next day", timeout=5_000)
    await expect(visitor.locator("support-desk-widget .typing")).to_be_hidden()
    assert await visitor.locator("support-desk-widget b").count() == 0  # text stays text
    assert await agent.locator(".card b").count() == 0

    # What became of it, under "Recently handled": the edited reply the visitor got, and who sent it.
    await agent.get_by_text("Recently handled").click()
    handled = agent.locator(".handled-list li").first
    await expect(handled).to_contain_text("Sent (edited)")
    await expect(handled).to_contain_text("by an agent")
    await expect(handled).to_contain_text("Sent: " + edited)
    assert await agent.locator(".handled-list b").count() == 0
    width = await agent.evaluate("document.documentElement.scrollWidth")
    assert width <= 320, f"the console scrolls sideways at 320 px ({width} px)"
    assert page.dialogs == [] and page.errors == []
