"""The widget on a phone (390x844) and a laptop (1366x850), live (SignalR emulator) against the real app.

Each test asserts what a visitor meets: no sideways scrolling, touch targets of at least 44 px,
no serious or critical axe-core findings in the widget (with the demo's colour and with a light
yellow ``data-color``), a reply whose first words show while the model is still writing (a fake
OpenAI server streaming one word every 120 ms), the agent's name and initials, the unread preview,
and the rating prompt when the conversation closes (the rating is read back from Storage).
Screenshots go to ``test-results/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from devhost.azurite import Azurite
from devhost.signalr import Emulator
from tests.conftest import Host
from tests.e2e.axe import serious_violations
from tests.fakes.openai_server import FakeOpenAI, ok
from tests.fixtures.browser import RESULTS, PageFactory
from tests.support import eventually, host_env, session_header

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 850}
VIEWPORTS = [pytest.param(PHONE, id="phone"), pytest.param(LAPTOP, id="laptop")]
ANSWER = (
    "Standard shipping takes three to five business days, and express shipping arrives in one or two "
    "days for orders placed before noon on a weekday."
)
WORD_SECONDS = 0.12  # ~25 words: the whole reply takes about 3 s to write
LIGHT_YELLOW = "#fef08a"


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[FakeOpenAI]:
    """A model that writes ANSWER one word at a time."""
    server = FakeOpenAI(default=ok(ANSWER, chunk_seconds=WORD_SECONDS)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_app(azurite: Azurite, start_host: Callable[..., Host], signalr: Emulator, slow_llm: FakeOpenAI) -> Host:
    """The product with real-time pushes and the slow model."""
    env = {"SIGNALR_CONNECTION_STRING": signalr.connection_string, "LLM_PROVIDER": "openai",
           "OPENAI_BASE_URL": slow_llm.base_url, "OPENAI_API_KEY": "sk-test"}  # fmt: skip
    return start_host(host_env(azurite, **env))


async def _demo(page: PageFactory, host: Host, name: str, viewport: dict[str, int], color: str = "") -> Page:
    """The demo page (its snippet's ``data-color`` replaced by ``color``), with the launcher showing."""
    visitor = await page(name, viewport=viewport)

    async def recolour(route: Route) -> None:
        response = await route.fetch()
        body = (await response.text()).replace('data-color="#2f4f3a"', f'data-color="{color}"')
        await route.fulfill(response=response, body=body)

    if color:
        await visitor.route(re.compile(r".*/api/demo$"), recolour)
    await visitor.goto(f"{host.base_url}/demo")
    launcher = visitor.locator("support-desk-widget .launcher")
    await expect(launcher).to_be_visible()
    box = await launcher.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box  # on-screen
    assert box["y"] + box["height"] <= viewport["height"], box
    await _no_sideways_scroll(visitor)
    return visitor


async def _no_sideways_scroll(visitor: Page) -> None:
    width = await visitor.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"


async def _at_least_44(*targets: Any) -> None:
    for target in targets:
        box = await target.bounding_box()
        assert box and box["width"] >= 44 and box["height"] >= 44, (await target.evaluate("e => e.outerHTML"), box)


async def _axe(visitor: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core findings inside the widget."""
    return await serious_violations(visitor, ["support-desk-widget"])


async def _shot(visitor: Page, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    await visitor.screenshot(path=str(RESULTS / f"widget-{name}.png"))


async def _session_id(visitor: Page) -> str:
    raw = await visitor.evaluate(
        "() => Object.entries(localStorage).find(([k, v]) => k.startsWith('supportdesk-widget:') && "
        "v.includes('sessionId'))?.[1]"
    )
    return str(json.loads(raw)["sessionId"])


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_a_streamed_reply_on_a_phone_and_a_laptop(
    page: PageFactory, live_app: Host, viewport: dict[str, int]
) -> None:
    phone = viewport == PHONE
    name = "phone" if phone else "laptop"
    visitor = await _demo(page, live_app, name, viewport)
    launcher = visitor.locator("support-desk-widget .launcher")
    await launcher.click()
    dialog = visitor.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    box = visitor.get_by_label("Your message")
    await expect(box).to_be_focused()
    assert await box.evaluate("t => getComputedStyle(t).fontSize") == "16px"  # iOS does not zoom in
    if phone:  # full screen, the launcher out of the way, the page behind locked
        panel = await dialog.bounding_box()
        assert panel == {"x": 0, "y": 0, "width": 390, "height": 844}, panel
        await expect(launcher).to_be_hidden()
        assert await visitor.evaluate("() => getComputedStyle(document.body).overflow") == "hidden"
    else:
        await expect(launcher).to_have_attribute("aria-label", re.compile("^Close chat"))
    await expect(visitor.locator("support-desk-widget .sub")).to_have_text(re.compile("usually replies"))
    await _at_least_44(
        visitor.get_by_role("button", name="Close chat", exact=True),
        visitor.get_by_role("button", name="Talk to a person"),
        visitor.get_by_role("button", name="Send"),
    )

    await box.fill("How long does shipping take?")
    log = visitor.get_by_role("log")
    async with visitor.expect_response(lambda r: r.url.endswith("/api/chat")) as turn:
        await box.press("Enter")
        draft = log.locator(".msg.draft")  # the streamed text, before anything is stored
        await expect(draft).to_contain_text("Standard shipping takes", timeout=15_000)
        seen_at = await visitor.evaluate("() => performance.now()")
        partial = await draft.inner_text()
        await _shot(visitor, f"{name}-streaming")
    assert (await turn.value).status == 200
    ended_at = await visitor.evaluate("() => performance.now()")
    assert "noon on a weekday" not in partial, "the first words showed only once the reply was complete"
    assert ended_at - seen_at > 500, (seen_at, ended_at)  # shown well before the turn ended
    stored = log.locator(".msg.bot[data-seq]").last
    await expect(stored).to_contain_text(ANSWER)
    await expect(draft).to_have_count(0)  # the stored message replaced the streamed one
    await expect(log.locator(".time")).to_have_count(1)  # one time label over this short exchange
    await _no_sideways_scroll(visitor)
    assert await _axe(visitor) == []
    await _shot(visitor, f"{name}-open")

    await visitor.get_by_role("button", name="Close chat", exact=True).click()
    await expect(launcher).to_be_visible()
    await expect(launcher).to_have_attribute("aria-label", re.compile("^Open chat"))
    assert await visitor.evaluate("() => getComputedStyle(document.body).overflow") != "hidden"
    assert page.errors == [] and page.dialogs == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_a_light_custom_colour_keeps_text_readable(
    page: PageFactory, live_app: Host, slow_llm: FakeOpenAI, viewport: dict[str, int]
) -> None:
    name = "yellow-" + ("phone" if viewport == PHONE else "laptop")
    visitor = await _demo(page, live_app, name, viewport, color=LIGHT_YELLOW)
    await visitor.locator("support-desk-widget .launcher").click()
    slow_llm.script(ok("Three to five business days."))
    box = visitor.get_by_label("Your message")
    await box.fill("How long does shipping take?")
    await box.press("Enter")
    await expect(visitor.get_by_role("log").locator(".msg.bot[data-seq]")).to_contain_text("business days")
    head = visitor.locator("support-desk-widget .head")
    assert await head.evaluate("h => getComputedStyle(h).color") == "rgb(17, 24, 39)"  # dark text on yellow
    await box.focus()
    assert await _axe(visitor) == []
    await _shot(visitor, name)


async def test_unread_preview_agent_initials_and_the_rating(
    page: PageFactory, live_app: Host, azurite: Azurite
) -> None:
    visitor = await _demo(page, live_app, "rating", PHONE)
    launcher = visitor.locator("support-desk-widget .launcher")
    await launcher.click()
    async with visitor.expect_response(lambda r: r.url.endswith("/api/chat/handoff")):
        await visitor.get_by_role("button", name="Talk to a person").click()
    session_id = await _session_id(visitor)
    with httpx.Client(base_url=live_app.base_url, timeout=30) as api:
        token = api.post("/dev/token", json={"name": "Grace Hopper", "email": "grace@contoso.example"}).json()
        agent = {"Authorization": f"Bearer {token['accessToken']}"}
        assert api.post(f"/agent/sessions/{session_id}/claim", headers=agent).status_code == 200
        await expect(visitor.locator("support-desk-widget .banner")).to_contain_text("Grace Hopper")
        await visitor.get_by_role("button", name="Close chat", exact=True).click()
        sent = api.post(f"/agent/sessions/{session_id}/message", json={"content": "Hi, I can help."}, headers=agent)
        assert sent.status_code in (200, 201), sent.text
        peek = visitor.locator("support-desk-widget .peek")
        await expect(peek).to_contain_text("Hi, I can help.")
        await expect(peek).to_contain_text("Grace Hopper")
        await expect(visitor.locator("support-desk-widget .badge")).to_have_text("1")
        await expect(launcher).to_have_attribute("aria-label", re.compile(r"\(1 unread\)"))
        await _at_least_44(peek)
        await _shot(visitor, "phone-unread")
        await peek.click()
        log = visitor.get_by_role("log")
        said = log.locator(".msg.agent[data-seq]").last
        await expect(said.locator(".av")).to_have_text("GH")
        await expect(said.locator(".who")).to_contain_text("Grace Hopper")
        assert api.post(f"/agent/sessions/{session_id}/close", headers=agent).status_code == 200

    rating = visitor.get_by_role("form", name="Rate this conversation")
    await expect(rating).to_be_visible()
    four = rating.get_by_role("button", name="4 of 5, good")
    await _at_least_44(four)
    assert await _axe(visitor) == []
    await four.click()
    await rating.get_by_label("Comment (optional)").fill("Quick and friendly")
    async with visitor.expect_response(lambda r: r.url.endswith("/api/chat/rating")) as rated:
        await rating.get_by_role("button", name="Send rating").click()
    assert (await rated.value).status == 201
    await expect(log.get_by_text("Thank you for your feedback!")).to_be_visible()
    await _no_sideways_scroll(visitor)
    await _shot(visitor, "phone-rated")
    header = eventually(lambda: session_header(azurite, session_id), what="the rated session")
    assert header["rating"] == 4
    assert page.errors == [] and page.dialogs == []
