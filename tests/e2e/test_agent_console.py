"""The agent console and the widget talking to each other in two browsers, live and by polling."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, expect

from devhost.azurite import Azurite
from devhost.processes import Server, free_port, spawn
from tests.conftest import Host
from tests.fixtures.browser import PageFactory
from tests.support import KNOWLEDGE

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# The emulator's well-known development key (as in local.settings.sample.json).
SIGNALR_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"


@pytest.fixture(scope="module")
def signalr_emulator() -> Iterator[Server]:
    """The project's SignalR Service emulator on a free port."""
    port = free_port()
    server = spawn("signalr", [sys.executable, "-m", "devhost.signalr", "--port", str(port)], port=port)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_app(azurite: Azurite, start_host: Callable[..., Host], signalr_emulator: Server) -> Host:
    """The product with real-time pushes through the emulator."""
    return start_host(
        {
            "AzureWebJobsStorage": azurite.connection_string,
            "ALLOWED_ORIGINS": "https://shop.example",
            "KNOWLEDGE_TEXT": KNOWLEDGE,
            "SIGNALR_CONNECTION_STRING": (
                f"Endpoint=http://127.0.0.1;Port={signalr_emulator.port};AccessKey={SIGNALR_KEY};Version=1.0;"
            ),
        }
    )


async def _handed_off_visitor(host: Host) -> dict[str, str]:
    """A visitor session made over the API: one question, then a request for a person."""
    async with httpx.AsyncClient(base_url=host.base_url, timeout=30) as api:
        opened = await api.post("/widget/session", json={})
        assert opened.status_code == 201, opened.text
        session = opened.json()
        auth = {"Authorization": f"Bearer {session['token']}"}
        asked = await api.post(
            "/chat", json={"message": "My tent pole snapped", "sessionId": session["sessionId"]}, headers=auth
        )
        assert asked.status_code == 200, asked.text
        handed = await api.post("/chat/handoff", json={"sessionId": session["sessionId"]}, headers=auth)
        assert handed.status_code == 200, handed.text
        assert handed.json()["status"] == "human_requested"
    return {"sessionId": session["sessionId"], "token": session["token"], "expiresAt": session["expiresAt"]}


async def _widget_with_session(page: PageFactory, host: Host, stored: dict[str, str]) -> Page:
    """The demo page whose widget already holds ``stored`` in localStorage, as after an earlier visit."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(host.base_url))
    key = json.dumps(f"supportdesk-widget:{origin}")
    script = f"localStorage.setItem({key}, {json.dumps(json.dumps(stored))});"
    visitor = await page("visitor", init_script=script)
    await visitor.goto(f"{host.base_url}/demo?utm_source=mail&token=s3cret#help")
    await visitor.locator("support-desk-widget .launcher").click()
    await expect(visitor.get_by_role("log").locator(".msg.visitor[data-seq]").first).to_contain_text("tent pole")
    return visitor


async def _signed_in_agent(page: PageFactory, host: Host, name: str) -> Page:
    agent = await page("agent", viewport={"width": 1100, "height": 720})
    await agent.goto(f"{host.base_url}/agent")
    await agent.get_by_label("Name").fill(name)
    await agent.get_by_label("Email").fill("alex@contoso.example")
    await agent.get_by_role("button", name="Sign in").click()
    await expect(agent.locator("#me")).to_contain_text(name)
    return agent


@pytest.mark.parametrize("mode", ["live", "polling"])
async def test_agent_claims_and_chats_with_visitor(
    page: PageFactory, request: pytest.FixtureRequest, mode: str
) -> None:
    """Dev sign-in, claim a handed-off session, exchange messages both ways, close it."""
    host: Host = request.getfixturevalue("live_app" if mode == "live" else "app")
    wait = 5_000 if mode == "live" else 12_000
    stored = await _handed_off_visitor(host)
    session_id = stored["sessionId"]

    agent = await _signed_in_agent(page, host, "Alex Agent")
    await expect(agent.locator("#live")).to_have_text("Live" if mode == "live" else "Updating every few seconds")
    row = agent.locator(f'.row[data-session-id="{session_id}"]')
    await expect(row).to_be_visible(timeout=wait)
    await expect(row).to_contain_text("Waiting")
    await row.click()
    await expect(agent.get_by_role("log").locator(".msg.visitor").first).to_contain_text("My tent pole snapped")
    await agent.get_by_role("button", name="Claim").click()
    reply = agent.get_by_label("Reply to the visitor")
    await expect(reply).to_be_visible()
    await expect(agent.get_by_role("button", name="Close conversation")).to_be_visible()

    visitor = await _widget_with_session(page, host, stored)
    await expect(visitor.locator("support-desk-widget .banner")).to_contain_text("Alex Agent", timeout=wait)
    # The widget loaded on the demo page: the agent sees where the visitor is, linked, query string dropped.
    where = agent.locator("#chat-page a")
    await expect(where).to_have_text("Contoso Outdoor - Gear for every trail", timeout=wait)
    assert await where.get_attribute("href") == f"{host.base_url}/demo"
    # A single-page site moves on without loading a page: the agent hears of it within seconds.
    await visitor.evaluate("history.pushState({}, '', 'demo/pricing?plan=pro'); document.title = 'Pricing'")
    await expect(where).to_have_text("Pricing", timeout=15_000)
    assert await where.get_attribute("href") == f"{host.base_url}/demo/pricing"

    await reply.fill("Hi, I'm Alex. <b>Which</b> tent model is it?")
    await reply.press("Enter")
    from_agent = visitor.get_by_role("log").locator(".msg.agent")
    await expect(from_agent).to_contain_text("<b>Which</b> tent model is it?", timeout=wait)
    await expect(from_agent).to_contain_text("Alex Agent")

    box = visitor.get_by_label("Your message")
    await box.fill("The Summit 2P, bought in May.")
    await box.press("Enter")
    await expect(box).to_have_value("")
    await expect(agent.get_by_role("log").locator(".msg.visitor").last).to_contain_text("Summit 2P", timeout=wait)

    await agent.get_by_role("button", name="Close conversation").click()
    await expect(visitor.locator("support-desk-widget .banner")).to_contain_text("closed", timeout=wait)
    start_over = visitor.get_by_role("button", name="Start new conversation")
    await expect(start_over).to_be_visible()
    await expect(visitor.get_by_label("Your message")).to_be_disabled()
    await start_over.click()
    await expect(visitor.get_by_role("log").locator(".msg[data-seq]")).to_have_count(0)
    await expect(visitor.get_by_label("Your message")).to_be_enabled()

    assert await agent.locator("b").count() == 0
    assert await visitor.locator("support-desk-widget b").count() == 0
    assert page.dialogs == [] and page.errors == []
