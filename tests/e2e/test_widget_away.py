"""The widget outside office hours, in a browser: the visitor's choice up front, asking for a person
while the team is away (told when it is back, in the team's time and their own), and leaving an
email address (a refusal said in words, then the address confirmed and shown to agents)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.async_api import expect

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.fixtures.browser import PageFactory
from tests.support import eventually, host_env

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

CLOCK = "2026-03-03T20:00:00Z"  # a Tuesday, 21:00 in Madrid
HOURS = {"timezone": "Europe/Madrid", "weekly": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
AWAY = "We are out for the day."


@pytest.fixture(scope="module")
def away_app(start_host: Callable[..., Host]) -> Iterator[Host]:
    """A deployment whose team is away at its fixed office clock, offering the choice up front."""
    azurite: Azurite = start_azurite()
    try:
        settings = {"DEV_OFFICE_CLOCK": CLOCK, "OFFICE_HOURS": json.dumps(HOURS), "AWAY_MESSAGE": AWAY}
        yield start_host(host_env(azurite, VISITOR_CHOICE="true", **settings))
    finally:
        azurite.stop()


async def test_outside_hours_the_widget_says_when_the_team_is_back_and_takes_an_email(
    page: PageFactory, away_app: Host
) -> None:
    visitor = await page("visitor")
    await visitor.goto(f"{away_app.base_url}/demo")
    widget = visitor.locator("support-desk-widget")
    await widget.locator(".launcher").click()
    away = widget.locator(".away")
    await expect(away).to_contain_text(AWAY)
    await expect(away).to_contain_text("We're back tomorrow at 9:00 (Europe/Madrid time).")
    await expect(away).to_contain_text("Your time:")
    await expect(widget.locator(".away form")).to_be_hidden()  # an address is asked for with the request

    await widget.get_by_role("button", name="Talk to a person").first.click()
    await expect(widget.locator(".banner")).to_contain_text("Our team is away right now.")
    await expect(widget.locator(".msg.bot").last).to_contain_text("We're back tomorrow at 9:00")
    email = widget.get_by_label("Your email address")
    await email.fill("jane@localhost")  # a browser takes it; the server wants a domain with a dot
    await widget.locator(".away form button").click()
    await expect(widget.locator(".error")).to_contain_text("email")
    await email.fill("jane@example.com")
    await widget.locator(".away form button").click()
    await expect(away).to_contain_text("We'll reply to jane@example.com.")
    await expect(widget.locator(".away form")).to_be_hidden()

    session_id = await visitor.evaluate(
        "() => Object.entries(sessionStorage).concat(Object.entries(localStorage)).map(([, v]) => v).join(' ')"
    )
    with httpx.Client(base_url=away_app.base_url) as api:
        token = api.post("/dev/token", json={"name": "Morning Agent", "email": "morning@contoso.example"}).json()
        agent = {"Authorization": f"Bearer {token['accessToken']}"}

        def emails() -> list[str]:
            rows = api.get("/agent/sessions", params={"status": "human_requested"}, headers=agent).json()["sessions"]
            return [row["handoff"]["email"] for row in rows if row["sessionId"] in session_id]

        assert eventually(lambda: emails() or None, what="the waiting session in the queue") == ["jane@example.com"]
