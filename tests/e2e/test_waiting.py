"""Waiting for a person in the widget: the place in line, messages while waiting, back to the assistant.

Real Chromium on the demo page against the real app, live (SignalR emulator) and by polling. While a
visitor waits for a person, ``POST /api/chat`` stores the message and answers 202 with no bot reply,
and ``DELETE /api/chat/handoff`` gives the conversation back to the bot (409 ``already-claimed`` when
an agent took it first).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import Page, Response, Route, expect

from devhost.azurite import Azurite
from devhost.signalr import Emulator
from tests.conftest import Host
from tests.fixtures.browser import PageFactory
from tests.support import host_env

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

PLACE = re.compile(r"You're (next|\d+(st|nd|rd|th) in line)")
WAITED = re.compile(r"[Ww]aiting (less than a minute|\d+ minutes?)")


@pytest.fixture(scope="module")
def live_host(azurite: Azurite, start_host: Callable[..., Host], signalr: Emulator) -> Host:
    """The product with real-time pushes through the shared SignalR emulator."""
    return start_host(host_env(azurite, SIGNALR_CONNECTION_STRING=signalr.connection_string))


async def _open_chat(page: PageFactory, host: Host, name: str) -> Page:
    """The demo page with the chat open; its clock is Playwright's, so a test can move time on."""
    visitor = await page(name)
    await visitor.clock.install()
    await visitor.goto(f"{host.base_url}/demo")
    launcher = visitor.locator("support-desk-widget .launcher")
    await launcher.click()
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    await expect(visitor.get_by_label("Your message")).to_be_focused()
    return visitor


def _is(method: str, path: str) -> Callable[[Response], bool]:
    return lambda response: response.request.method == method and response.url.endswith(path)


async def _ask_for_a_person(visitor: Page) -> dict[str, object]:
    """Press "Talk to a person"; the handoff's answer."""
    async with visitor.expect_response(_is("POST", "/api/chat/handoff")) as handed:
        await visitor.get_by_role("button", name="Talk to a person").click()
    response = await handed.value
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["status"] == "human_requested"
    return body


async def _expect_waiting(visitor: Page) -> None:
    """The waiting state: a person on the way, the place in line, the time waited, a way back."""
    banner = visitor.locator("support-desk-widget .banner")
    await expect(banner).to_contain_text("on the way")
    await expect(banner).to_contain_text(PLACE)
    await expect(banner).to_contain_text(WAITED)
    await expect(visitor.get_by_role("status")).to_contain_text(PLACE)  # the live region
    await expect(visitor.get_by_role("button", name="Continue with the assistant")).to_be_visible()
    await expect(visitor.get_by_role("button", name="Talk to a person")).to_be_hidden()


@pytest.mark.parametrize("mode", ["live", "polling"])
async def test_wait_for_a_person_then_continue_with_the_assistant(
    page: PageFactory, request: pytest.FixtureRequest, mode: str
) -> None:
    """Ask for a person, write while waiting (no bot reply), then go back to the bot, which answers."""
    host: Host = request.getfixturevalue("live_host" if mode == "live" else "app")
    visitor = await _open_chat(page, host, f"waiting-{mode}")
    box = visitor.get_by_label("Your message")
    log = visitor.get_by_role("log")
    banner = visitor.locator("support-desk-widget .banner")

    handed = await _ask_for_a_person(visitor)
    queue = handed["queue"]
    assert isinstance(queue, dict) and queue["position"] >= 1 and queue["waitingSince"]
    await _expect_waiting(visitor)
    await expect(banner).to_contain_text("less than a minute")
    await visitor.clock.fast_forward("03:05")  # the time waited is counted on the visitor's side
    await expect(banner).to_contain_text(re.compile(r"waiting [34] minutes"))

    # A tap target of at least 44 px, with a focus ring visible from the keyboard.
    carry_on = visitor.get_by_role("button", name="Continue with the assistant")
    box_size = await carry_on.bounding_box()
    assert box_size and box_size["height"] >= 44
    await box.press("ArrowLeft")  # a keyboard interaction first, so focus() shows the ring
    await carry_on.focus()
    assert await carry_on.evaluate("b => getComputedStyle(b).outlineStyle") == "solid"
    assert await carry_on.evaluate("b => parseFloat(getComputedStyle(b).outlineWidth)") >= 2
    await box.focus()

    # A message while waiting: stored for the team (202), no bot reply, nothing left spinning.
    bots_before = await log.locator(".msg.bot[data-seq]").count()
    async with visitor.expect_response(_is("POST", "/api/chat")) as posted:
        await box.fill("My order 4711 arrived with a broken tent pole.")
        await box.press("Enter")
    response = await posted.value
    assert response.status == 202, await response.text()
    body = await response.json()
    assert body["status"] == "queued-for-agent" and body["sessionStatus"] == "human_requested"
    assert body.get("reply") is None and body["agentName"] is None
    assert body["queue"]["position"] >= 1
    sent = log.locator(".msg.visitor[data-seq]").filter(has_text="broken tent pole")
    await expect(sent).to_have_count(1)
    await expect(sent).not_to_have_class(re.compile(r"\bpending\b"))
    await expect(sent).to_contain_text("Sent")
    await expect(box).to_have_value("")
    await expect(visitor.locator("support-desk-widget .typing")).to_be_hidden()
    await expect(visitor.locator("support-desk-widget .error")).to_be_hidden()
    await _expect_waiting(visitor)
    await visitor.wait_for_timeout(4_000)  # past a poll (and any push): still no answer from the bot
    assert await log.locator(".msg.bot[data-seq]").count() == bots_before
    await expect(visitor.locator("support-desk-widget .typing")).to_be_hidden()

    # Still waiting after a reload: the session comes back from localStorage, with the place in line.
    await visitor.reload()
    launcher = visitor.locator("support-desk-widget .launcher")
    await expect(launcher).to_be_visible()
    if await launcher.get_attribute("aria-expanded") != "true":
        await launcher.click()
    await expect(sent).to_have_count(1)
    await _expect_waiting(visitor)

    # Back to the assistant: the request is withdrawn and the bot answers again.
    async with visitor.expect_response(_is("DELETE", "/api/chat/handoff")) as cancelled:
        await visitor.get_by_role("button", name="Continue with the assistant").click()
    response = await cancelled.value
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "open"
    await expect(banner).to_be_hidden()
    await expect(visitor.get_by_role("button", name="Continue with the assistant")).to_be_hidden()
    await expect(visitor.get_by_role("button", name="Talk to a person")).to_be_visible()
    await expect(visitor.get_by_role("status")).to_contain_text("assistant")
    await expect(box).to_be_focused()  # focus isn't stranded on the button that went away

    await box.fill("How long does shipping take?")
    await box.press("Enter")
    await expect(log.locator(".msg.bot[data-seq]").last).to_contain_text("business days", timeout=20_000)
    await expect(visitor.locator("support-desk-widget .typing")).to_be_hidden()
    await expect(banner).to_be_hidden()
    assert page.errors == [] and page.dialogs == []


async def test_continue_after_an_agent_claimed_shows_the_agent(page: PageFactory, app: Host) -> None:
    """An agent claims the session just before the visitor presses "Continue": 409, the agent has joined."""
    visitor = await _open_chat(page, app, "claimed-first")
    handed = await _ask_for_a_person(visitor)
    session_id = handed["sessionId"]
    await _expect_waiting(visitor)

    async def claim_first(route: Route) -> None:
        if route.request.method == "DELETE":
            async with httpx.AsyncClient(base_url=app.base_url, timeout=30) as api:
                signed_in = await api.post("/dev/token", json={"name": "Casey Agent", "email": "casey@contoso.example"})
                assert signed_in.status_code == 200, signed_in.text
                auth = {"Authorization": f"Bearer {signed_in.json()['accessToken']}"}
                claimed = await api.post(f"/agent/sessions/{session_id}/claim", headers=auth)
                assert claimed.status_code == 200, claimed.text
        await route.continue_()

    await visitor.route(re.compile(r".*/api/chat/handoff$"), claim_first)
    async with visitor.expect_response(_is("DELETE", "/api/chat/handoff")) as cancelled:
        await visitor.get_by_role("button", name="Continue with the assistant").click()
    response = await cancelled.value
    assert response.status == 409, await response.text()
    assert (await response.json())["type"].endswith("already-claimed")

    banner = visitor.locator("support-desk-widget .banner")
    await expect(banner).to_contain_text("Casey Agent", timeout=12_000)
    await expect(visitor.get_by_role("status")).to_contain_text("joined")
    await expect(visitor.get_by_role("button", name="Continue with the assistant")).to_be_hidden()
    await expect(visitor.locator("support-desk-widget .error")).to_be_hidden()
    await expect(visitor.get_by_label("Your message")).to_be_focused()
    assert page.errors == [] and page.dialogs == []
