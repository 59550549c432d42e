"""The dashboard's Knowledge page in headless Chromium against the real app: a file dropped on the page and a
website become ready while the list updates itself, the widget answers from them and cites them; a question
tried on the page; a content gap answered in one click; deletion, switches, paging, narrow screens; and
every hostile title and question shown as text."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from playwright.async_api import Page, expect

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.fixtures.browser import RESULTS, PageFactory
from tests.knowledge_site import Site
from tests.support import ADMIN_KEY, host_env, new_visitor, say, settled, tables

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

T = TypeVar("T")
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
MARKUP = '<img src=x onerror="window.__pwned=1"><b>Snowshoe rental</b>'
QUESTION = '<img src=x onerror="window.__pwned=2"> Do you rent kayaks?'
MAX_FILE_BYTES = 4096
MANUAL = (
    "# Glacier Lantern X2 manual\n\n"
    "## Battery\n\n"
    "The battery of the Glacier Lantern X2 lasts 40 hours on one charge; a full charge takes 3 hours over USB-C.\n\n"
    "## Cleaning\n\n"
    "Wipe the lantern with a damp cloth. Never put it in a dishwasher.\n"
)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """The shop's help site, on loopback."""
    instance = Site().start()
    instance.html(
        "/help/warranty",
        "Glacier warranty",
        "<h1>Glacier Lantern warranty</h1><p>The Glacier Lantern X2 carries a three-year warranty covering the "
        "hinge and the glass.</p>",
    )
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def desk(start_host: Callable[..., Host]) -> Iterator[tuple[Host, Azurite]]:
    """The product on an Azurite of its own, allowed to crawl loopback, with a small file limit."""
    azurite = start_azurite()
    try:
        env = host_env(azurite, KNOWLEDGE_ALLOW_PRIVATE_URLS="true", KNOWLEDGE_MAX_FILE_BYTES=str(MAX_FILE_BYTES))
        yield start_host(env), azurite
    finally:
        azurite.stop()


async def until(check: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    """Poll a synchronous ``check`` off the event loop until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.2)


def admin_get(host: Host, path: str, **params: Any) -> Any:
    with host.client(headers=ADMIN) as api:
        response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def source_titled(host: Host, title: str) -> dict[str, Any] | None:
    sources = admin_get(host, "/knowledge/sources", limit=200)["sources"]
    return next((s for s in sources if s["title"] == title), None)


async def knowledge_page(page: PageFactory, host: Host, name: str, **options: Any) -> Page:
    tab = await page(name, **options)
    await tab.goto(f"{host.base_url}/dashboard?code={ADMIN_KEY}#knowledge")
    await expect(tab.locator("#knowledge-view")).to_be_visible()
    await expect(tab.locator("#overview-view")).to_be_hidden()
    await expect(tab.locator("#views [data-view='knowledge']")).to_have_attribute("aria-current", "true")
    return tab


async def drop_file(tab: Page, name: str, text: str, media_type: str) -> None:
    """Drag a file onto the drop zone, as a browser does when one is dropped from the desktop."""
    await tab.evaluate(
        """([name, text, type]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, { type }));
            const zone = document.getElementById("kn-drop");
            for (const kind of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(kind, { bubbles: true, cancelable: true, dataTransfer: transfer }));
            }
        }""",
        [name, text, media_type],
    )


def row(tab: Page, title: str) -> Any:
    return tab.locator("#kn-sources > li").filter(has=tab.get_by_role("heading", name=title, exact=True))


async def ask_widget(visitor: Page, question: str) -> Any:
    box = visitor.get_by_label("Your message")
    await box.fill(question)
    await box.press("Enter")
    return visitor.get_by_role("log").locator(".msg.bot[data-seq]").last


async def test_a_dropped_file_and_a_website_become_ready_and_the_widget_cites_them(
    desk: tuple[Host, Azurite], site: Site, page: PageFactory
) -> None:
    host, _ = desk
    tab = await knowledge_page(page, host, "knowledge")
    source_reads: list[str] = []
    tab.on("request", lambda r: source_reads.append(r.url) if "/api/knowledge/sources/" in r.url else None)

    # A file dropped on the page: uploaded with progress, then queued -> indexing -> ready in the list.
    await tab.locator("#kn-file-title").fill("Glacier Lantern manual")
    await drop_file(tab, "glacier-lantern.md", MANUAL, "text/markdown")
    upload = tab.locator("#kn-uploads li").first
    await expect(upload).to_contain_text("glacier-lantern.md")
    await expect(upload).to_contain_text("Uploaded; indexing in the background")
    await expect(upload.locator("progress")).to_have_attribute("value", "1")
    manual = row(tab, "Glacier Lantern manual")
    await expect(manual).to_have_count(1)
    await expect(manual.locator(".kn-badge").first).to_have_text("Ready", timeout=40_000)
    await expect(manual).to_have_attribute("data-status", "ready")
    await expect(manual.locator(".kn-where")).to_contain_text("glacier-lantern.md (Markdown, 229 bytes)")
    await expect(manual.locator(".kn-facts")).to_contain_text("2 passages")  # two sections
    await expect(manual.locator(".kn-facts")).to_contain_text("last synced")
    await expect(tab.locator("#kn-live")).to_contain_text("“Glacier Lantern manual” is ready")
    stored = source_titled(host, "Glacier Lantern manual")
    assert stored is not None and stored["status"] == "ready" and stored["type"] == "file"

    # Nothing is queued or indexing any more: the page stops reading the sources.
    reads = len(source_reads)
    await asyncio.sleep(3.5)  # more than two polling periods (1.5 s)
    assert len(source_reads) == reads, source_reads[reads:]

    # A website, added with the keyboard-reachable tabs.
    await tab.locator("#kn-tab-file").focus()
    await tab.keyboard.press("ArrowRight")
    await expect(tab.locator("#kn-tab-site")).to_be_focused()
    await expect(tab.locator("#kn-panel-site")).to_be_visible()
    await expect(tab.locator("#kn-panel-file")).to_be_hidden()
    await tab.locator("#kn-site-url").fill(f"{site.url}/help/warranty")
    await tab.locator("#kn-site-pages").fill("5")
    await tab.locator("#kn-site-title").fill("Help site")
    await tab.locator("#kn-site-submit").click()
    helpsite = row(tab, "Help site")
    await expect(helpsite.locator(".kn-badge").first).to_have_text("Ready", timeout=40_000)
    await expect(helpsite.locator(".kn-facts")).to_contain_text("1 page")
    await expect(helpsite.locator(".kn-where a")).to_have_attribute("href", f"{site.url}/help/warranty")
    await helpsite.locator(".kn-pages summary").click()
    await expect(helpsite.locator(".kn-page-list li")).to_contain_text("indexed")

    # Its schedule and a sync from the list.
    await helpsite.locator("select.kn-refresh").select_option("weekly")
    await until(lambda: (source_titled(host, "Help site") or {}).get("refresh") == "weekly", "the weekly schedule")
    await helpsite.locator(".kn-sync").click()
    await expect(helpsite.locator(".kn-badge").first).to_have_text("Ready", timeout=40_000)
    await expect(helpsite.locator(".kn-facts")).to_contain_text("last sync: 1 unchanged")

    # A file too large, and a kind of file the knowledge base can't read: said in words.
    await tab.locator("#kn-tab-file").click()
    await tab.locator("#kn-file-input").set_input_files(
        [{"name": "huge.md", "mimeType": "text/markdown", "buffer": b"# Huge\n" + b"words " * 1000}]
    )
    too_large = tab.locator("#kn-uploads li").first
    await expect(too_large).to_contain_text("huge.md")
    await expect(too_large).to_contain_text(f"Too large to add. The file is 6007 bytes; the limit is {MAX_FILE_BYTES}")
    await tab.locator("#kn-file-input").set_input_files(
        [{"name": "setup.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00\x03" + bytes(300)}]
    )
    refused = tab.locator("#kn-uploads li").first
    await expect(refused).to_contain_text("The file setup.exe can't be read: .exe files are not supported")
    assert source_titled(host, "huge.md") is None and source_titled(host, "setup.exe") is None

    # The widget answers from both and names its sources; the crawled page's is a link to it.
    visitor = await page("visitor")
    await visitor.goto(f"{host.base_url}/demo")
    await visitor.locator("support-desk-widget .launcher").click()
    answer = await ask_widget(visitor, "How long does the Glacier Lantern battery last?")
    await expect(answer).to_contain_text("lasts 40 hours on one charge", timeout=20_000)
    await expect(answer.locator(".src li")).to_have_text(["Glacier Lantern manual"])
    assert await answer.locator(".src a").count() == 0  # an uploaded file has no public address to link
    warranty = await ask_widget(visitor, "What warranty does the Glacier Lantern X2 have?")
    await expect(warranty).to_contain_text("three-year warranty", timeout=20_000)
    link = warranty.get_by_role("link", name="Help site")
    await expect(link).to_have_attribute("href", re.compile(re.escape(f"{site.url}/help/warranty") + "(#.*)?$"))
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    assert page.errors == [] and page.dialogs == []


async def test_test_a_question_gaps_deletion_and_hostile_text_on_a_narrow_screen(
    desk: tuple[Host, Azurite], page: PageFactory
) -> None:
    host, azurite = desk
    with host.client(headers=ADMIN) as api:
        hostile = {
            "type": "text",
            "title": MARKUP,
            "text": "# Snowshoes\nSnowshoes rent for $15 a day at the Aspen store.",
        }
        assert api.post("/knowledge/sources", json=hostile).status_code == 201
        for n in range(50):  # more than one page of the list
            body = {"type": "text", "title": f"Filler {n:02d}", "text": f"Filler note {n} about zzfiller{n} only."}
            assert api.post("/knowledge/sources", json=body).status_code == 201
        visitor = new_visitor(api)
        assert "don't know" in say(api, visitor, QUESTION).json()["reply"]["text"]
    settled(azurite, visitor.session_id)
    total = len(admin_get(host, "/knowledge/sources", limit=200)["sources"])

    def gap() -> dict[str, Any] | None:
        groups = admin_get(host, "/knowledge/gaps")["groups"]
        return next((g for g in groups if g["question"] == QUESTION), None)

    def conversations() -> int:
        return len(list(tables(azurite).get_table_client("chats").query_entities("RowKey eq 'session'")))

    group = await until(gap, "the content gap")

    tab = await knowledge_page(page, host, "narrow", viewport={"width": 320, "height": 720})
    hostile_row = row(tab, MARKUP)
    await expect(hostile_row).to_have_count(1)  # the title as text, found by its literal characters
    await expect(tab.locator("#kn-more")).to_be_visible()  # 50 shown of more
    shown = await tab.locator("#kn-sources > li").count()
    assert shown == 50
    await tab.locator("#kn-more").click()
    await expect(tab.locator("#kn-sources > li")).to_have_count(total)
    await expect(tab.locator("#kn-more")).to_be_hidden()
    assert await tab.evaluate("document.documentElement.scrollWidth") <= 320  # nothing wider than the screen

    # Test a question: the excerpts the bot read and its cited answer, titles as text.
    before = conversations()
    await tab.locator("#kn-test-q").fill("Can I rent snowshoes?")
    await tab.locator("#kn-test-submit").click()
    answer = tab.locator("#kn-answer")
    await expect(answer.locator(".kn-answer-text")).to_have_text("Snowshoes rent for $15 a day at the Aspen store.")
    await expect(answer.locator(".kn-citations li")).to_have_text([MARKUP])
    await expect(answer.locator(".kn-answer-meta")).to_contain_text("offline bot (no AI call, free)")
    first = tab.locator("#kn-excerpts > li").first
    await expect(first.locator(".kn-excerpt-where")).to_have_text(f"[1] {MARKUP} › Snowshoes")
    await expect(first).to_contain_text("cited")
    await expect(first).to_contain_text("covers 100%")
    await expect(tab.locator("#kn-test-note")).to_contain_text("real, billed call")
    RESULTS.mkdir(exist_ok=True)
    await tab.locator("#kn-test-result").screenshot(path=str(RESULTS / "dashboard-knowledge-test-narrow.png"))
    assert conversations() == before  # trying it made no conversation

    # A content gap, shown as text, answered in one click: a Q&A source, and the group is gone.
    gap_item = tab.locator(f"#kn-gaps > li[data-gap-id='{group['id']}']")
    await expect(gap_item.locator(".kn-gap-question")).to_have_text(QUESTION)
    await expect(gap_item).to_contain_text("asked 1 time in 1 conversation")
    await expect(gap_item).to_contain_text("nothing in the knowledge covered it")
    await gap_item.get_by_role("button", name="Answer this").click()
    form = gap_item.locator("form")
    await expect(form.get_by_label("Question")).to_have_value(QUESTION)
    await expect(form.get_by_label("Answer")).to_be_focused()
    await gap_item.screenshot(path=str(RESULTS / "dashboard-knowledge-gap-narrow.png"))
    await form.get_by_role("button", name="Save as Q&A source").click()
    await expect(form.locator(".field-error").filter(has_text="Write the answer.")).to_be_visible()
    await form.get_by_label("Question").fill("Do you rent kayaks?")
    await form.get_by_label("Answer").fill("Yes: kayaks rent for $40 a day at the lake store.")
    await form.get_by_role("button", name="Save as Q&A source").click()
    await expect(gap_item.locator(".kn-saved")).to_contain_text("Saved as the Q&A source “Do you rent kayaks?”")
    await expect(row(tab, "Do you rent kayaks?").locator(".kn-badge").first).to_have_text("Ready")
    assert await asyncio.to_thread(gap) is None  # dismissed
    created = source_titled(host, "Do you rent kayaks?")
    assert created is not None and created["type"] == "qa" and created["status"] == "ready"
    await tab.locator("#kn-test-q").fill("Do you rent kayaks?")
    await tab.locator("#kn-test-submit").click()
    await expect(answer.locator(".kn-answer-text")).to_have_text("Yes: kayaks rent for $40 a day at the lake store.")

    # Switching a source off takes it out of answers; deleting asks first.
    await hostile_row.get_by_label("Used in answers").uncheck()
    await expect(hostile_row.locator(".kn-off")).to_be_visible()
    assert (source_titled(host, MARKUP) or {}).get("enabled") is False
    await hostile_row.get_by_role("button", name=f"Delete: {MARKUP}").click()
    await expect(hostile_row.locator(".kn-confirm")).to_contain_text(f"Delete “{MARKUP}”?")
    await hostile_row.get_by_role("button", name="Keep it").click()
    await expect(hostile_row.locator(".kn-confirm")).to_be_hidden()
    assert source_titled(host, MARKUP) is not None
    await hostile_row.get_by_role("button", name=f"Delete: {MARKUP}").click()
    await hostile_row.get_by_role("button", name="Delete source").click()
    await expect(hostile_row).to_have_count(0)
    assert source_titled(host, MARKUP) is None

    assert await tab.evaluate("document.documentElement.scrollWidth") <= 320
    assert await tab.locator("#knowledge-view img, #knowledge-view b").count() == 0
    assert await tab.evaluate("window.__pwned") is None
    assert page.errors == [] and page.dialogs == []
    await tab.screenshot(path=str(RESULTS / "dashboard-knowledge-narrow.png"), full_page=True)


async def test_the_page_at_full_hd(desk: tuple[Host, Azurite], page: PageFactory) -> None:
    host, _ = desk
    tab = await knowledge_page(page, host, "wide", viewport={"width": 1920, "height": 1080})
    await expect(tab.locator("#kn-sources > li").first).to_be_visible()
    assert await tab.evaluate("document.documentElement.scrollWidth") <= 1920
    RESULTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(RESULTS / "dashboard-knowledge.png"), full_page=True)
    assert page.errors == []
