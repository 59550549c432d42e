"""The agent console at 320, 400 and 1280 px, and its tools: alerts, saved replies, notes, transfer.

Each test saves screenshots to ``test-results/``. Layout checks: no horizontal overflow, 44 px
targets for what is touched, and axe-core (injected from ``node_modules``) reporting no serious or
critical violation.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import Page, expect

from devhost.azurite import Azurite
from devhost.processes import Server
from tests.conftest import Host
from tests.e2e.axe import serious_violations
from tests.e2e.test_agent_console import SIGNALR_KEY
from tests.e2e.test_agent_console import signalr_emulator as signalr_emulator  # the fixture
from tests.fixtures.browser import PageFactory
from tests.support import ADMIN_KEY, host_env

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# Records desktop notifications instead of showing them (permission granted).
NOTIFICATIONS = """
window.__notes = [];
window.Notification = class {
  constructor(title, options) { window.__notes.push({title, body: (options || {}).body}); }
};
window.Notification.permission = "granted";
window.Notification.requestPermission = () => Promise.resolve("granted");
"""


@pytest.fixture(scope="module")
def desk_app(azurite: Azurite, start_host: Callable[..., Host], signalr_emulator: Server) -> Host:
    """The product with a known admin key and real-time pushes through the emulator."""
    connection = f"Endpoint=http://127.0.0.1;Port={signalr_emulator.port};AccessKey={SIGNALR_KEY};Version=1.0;"
    return start_host(host_env(azurite, SIGNALR_CONNECTION_STRING=connection))


async def _handed_off_visitor(host: Host) -> dict[str, str]:
    """A visitor who asked for a person, then wrote while waiting (so no bot turn is involved)."""
    async with httpx.AsyncClient(base_url=host.base_url, timeout=30) as api:
        opened = await api.post("/widget/session", json={})
        assert opened.status_code == 201, opened.text
        session = opened.json()
        auth = {"Authorization": f"Bearer {session['token']}"}
        handed = await api.post("/chat/handoff", json={"sessionId": session["sessionId"]}, headers=auth)
        assert handed.status_code == 200, handed.text
        said = await api.post(
            "/chat", json={"message": "My tent pole snapped", "sessionId": session["sessionId"]}, headers=auth
        )
        assert said.status_code == 202, said.text
    return {"sessionId": session["sessionId"], "token": session["token"]}


async def _agent(page: PageFactory, host: Host, name: str, email: str, width: int) -> Page:
    agent = await page(name.split()[0].lower() + f"-{width}", viewport={"width": width, "height": 760},
                       init_script=NOTIFICATIONS)  # fmt: skip
    await agent.goto(f"{host.base_url}/agent")
    await agent.get_by_label("Name").fill(name)
    await agent.get_by_label("Email").fill(email)
    await agent.get_by_role("button", name="Sign in").click()
    await expect(agent.locator("#me")).to_contain_text(name)
    return agent


async def _no_overflow(agent: Page) -> None:
    wide = await agent.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide} px"


async def _tall_enough(agent: Page, selector: str) -> None:
    box = None
    for _ in range(5):  # the queue re-renders its rows when an update arrives: measure a settled one
        await expect(agent.locator(selector).first).to_be_visible()
        box = await agent.locator(selector).first.bounding_box()
        if box is not None:
            break
    assert box is not None, selector
    assert box["height"] >= 44 and box["width"] >= 44, (selector, box)


async def _axe(agent: Page) -> None:
    found = await serious_violations(agent)
    assert found == [], found


@pytest.mark.parametrize("width", [320, 400, 1280])
async def test_console_layout(page: PageFactory, desk_app: Host, width: int) -> None:
    """The queue row shows who waits and for how long; one column with a back button when narrow."""
    stored = await _handed_off_visitor(desk_app)
    agent = await _agent(page, desk_app, "Robin Agent", f"robin{width}@contoso.example", width)
    row = agent.locator(f'#sessions .row[data-session-id="{stored["sessionId"]}"]')
    await expect(row).to_be_visible(timeout=10_000)
    await expect(row.locator(".label")).to_have_text(
        re.compile(r"^[A-Z][a-z]+ [A-Z][a-z]+$")
    )  # a friendly name, not an id
    await expect(row.locator(".preview")).to_contain_text("tent pole")  # the visitor's words, not the bot's
    await expect(row.locator(".wait")).to_contain_text("waiting")
    await expect(row.locator(".chip.channel")).to_have_text("Web")
    await _no_overflow(agent)
    await _tall_enough(agent, f'#sessions .row[data-session-id="{stored["sessionId"]}"]')
    await _tall_enough(agent, "#tab-waiting")
    await row.click()
    claim = agent.get_by_role("button", name="Claim")
    await expect(claim).to_be_visible()
    title = await agent.locator("#chat-title").text_content()
    assert title == await row.locator(".label").text_content() or not await row.is_visible()
    if width < 720:
        await expect(agent.locator(".queue")).to_be_hidden()
        await _tall_enough(agent, "#back")
    await _tall_enough(agent, "#claim")
    await claim.click()
    await expect(agent.get_by_label("Reply to the visitor")).to_be_visible()
    await _tall_enough(agent, "#send")
    await _no_overflow(agent)
    box = await agent.locator("#chat-title").bounding_box()
    assert box is not None and box["width"] >= min(width - 40, 200)  # the title is not squeezed to "Convers..."
    await page.screenshot_all()
    await _axe(agent)  # the claimed conversation; the queue is checked below
    if width < 720:
        await agent.get_by_role("button", name="Back to queue").click()
        await expect(agent.locator(".queue")).to_be_visible()
        await _no_overflow(agent)
    assert page.errors == []
    await _axe(agent)


async def test_alerts_saved_reply_note_and_transfer(page: PageFactory, desk_app: Host) -> None:
    """A new waiting visitor alerts; "/" inserts a saved reply; a note stays private; a transfer reaches Sam."""
    async with httpx.AsyncClient(base_url=desk_app.base_url, timeout=30) as api:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        made = await api.post("/replies", json={"title": "Refund policy", "shortcut": "refund",
                                                "text": "Refunds take 5 working days."}, headers=admin)  # fmt: skip
        assert made.status_code in (201, 409), made.text
        bad = await api.post("/replies", json={"title": "x", "text": " "}, headers=admin)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "text"

    sam = await _agent(page, desk_app, "Sam Colleague", "sam@contoso.example", 1280)
    alex = await _agent(page, desk_app, "Alex Agent", "alex@contoso.example", 400)
    await expect(alex.locator("#live")).to_have_text("Live")

    stored = await _handed_off_visitor(desk_app)  # arrives while Alex's console is open
    await expect(alex.locator(".toast")).to_contain_text("New visitor waiting", timeout=10_000)
    notes = await alex.evaluate("window.__notes")
    assert any(n["title"] == "New visitor waiting" and "tent pole" in n["body"] for n in notes), notes
    await expect(alex).to_have_title(re.compile(r"^\(\d+\) "))

    await alex.locator(f'#sessions .row[data-session-id="{stored["sessionId"]}"]').click()
    await alex.get_by_role("button", name="Claim").click()
    reply = alex.get_by_label("Reply to the visitor")
    await reply.fill("/ref")
    await expect(alex.get_by_role("option", name="Refund policy")).to_be_visible()
    await reply.press("Enter")
    await expect(reply).to_have_value("Refunds take 5 working days.")

    secret = "Customer is a VIP, check order 4711 first"
    await alex.locator("#note-box summary").click()
    await alex.get_by_label("Private note (agents only)").fill(secret)
    await alex.get_by_role("button", name="Add note").click()
    await expect(alex.locator(".msg.note")).to_contain_text(secret)
    async with httpx.AsyncClient(base_url=desk_app.base_url, timeout=30) as api:
        seen = await api.get(f"/chat/{stored['sessionId']}/messages",
                             headers={"Authorization": f"Bearer {stored['token']}"})  # fmt: skip
        assert seen.status_code == 200, seen.text
        assert "4711" not in seen.text  # the visitor's history never carries a note

    await alex.get_by_role("button", name="Transfer").click()
    await alex.get_by_label("Hand this conversation to").select_option(label="Sam Colleague (sam@contoso.example)")
    await alex.locator("#transfer-form").get_by_role("button", name="Transfer").click()
    await expect(alex.locator("#chat-sub")).to_contain_text("claimed by Sam Colleague")
    await expect(alex.get_by_label("Reply to the visitor")).to_be_hidden()
    await expect(sam.locator(".toast")).to_contain_text("handed to you", timeout=10_000)
    await sam.locator(".toast-open", has_text="handed to you").click()
    await expect(sam.get_by_label("Reply to the visitor")).to_be_visible()
    await expect(sam.locator(".msg.note")).to_contain_text(secret)
    await page.screenshot_all()
    assert page.errors == []
