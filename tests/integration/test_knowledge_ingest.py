"""url, sitemap and file sources end to end: a real devhost on its own Azurite crawls a site served on
loopback, indexes uploaded files from its queue trigger, syncs by content hash, refreshes on a timer."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.knowledge_files import make_pdf
from tests.knowledge_site import Site, docx_guide, shop
from tests.support import ADMIN_KEY, eventually, host_env, run_timer, tables

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
MAX_FILE_BYTES = 300_000


@pytest.fixture(scope="module")
def khost(module_azurite: Azurite, start_host: Callable[..., Host]) -> Host:
    """The product in Development, allowed to crawl loopback (the test sites), with a small file limit."""
    return start_host(
        host_env(module_azurite, KNOWLEDGE_ALLOW_PRIVATE_URLS="true", KNOWLEDGE_MAX_FILE_BYTES=str(MAX_FILE_BYTES))
    )


@pytest.fixture()
def kapi(khost: Host) -> Iterator[httpx.Client]:
    """A client for the product's /api with the admin key."""
    with khost.client(headers=ADMIN) as client:
        yield client


@pytest.fixture()
def site() -> Iterator[Site]:
    """An empty website on loopback."""
    instance = Site().start()
    yield instance
    instance.stop()


def word() -> str:
    """A made-up word no other test's pages contain."""
    return "zq" + uuid.uuid4().hex[:10]


def create(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/knowledge/sources", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["status"] == "queued" and created["error"] is None
    assert response.headers["location"].endswith(f"/knowledge/sources/{created['id']}")
    return created


def upload(
    api: httpx.Client, name: str, data: bytes, content_type: str, *, title: str | None = None, expect: int = 201
) -> httpx.Response:
    form = {"title": title} if title is not None else None
    response = api.post("/knowledge/sources", files={"file": (name, data, content_type)}, data=form)
    assert response.status_code == expect, response.text
    return response


def settle(api: httpx.Client, source_id: str, timeout: float = 40) -> dict[str, Any]:
    """The source once its job has ended (ready or failed)."""

    def done() -> dict[str, Any] | None:
        source: dict[str, Any] = api.get(f"/knowledge/sources/{source_id}").json()
        return source if source["status"] in ("ready", "failed") else None

    result: dict[str, Any] = eventually(done, timeout=timeout, what=f"source {source_id} to finish indexing")
    return result


def search(api: httpx.Client, q: str, top: int = 5) -> list[dict[str, Any]]:
    response = api.get("/knowledge/search", params={"q": q, "top": top})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def pages(api: httpx.Client, source_id: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"/knowledge/sources/{source_id}/pages")
    assert response.status_code == 200, response.text
    return {page["url"]: page for page in response.json()["pages"]}


def problem(response: httpx.Response, status: int, field: str) -> str:
    """The message of a problem's error naming ``field``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    messages = [error["message"] for error in body.get("errors", []) if error["field"] == field]
    assert messages, body
    return str(messages[0])


def chunk_rows(azurite: Azurite, source_id: str) -> dict[str, Any]:
    rows = tables(azurite).get_table_client("knowledgechunks").query_entities(f"PartitionKey eq '{source_id}'")
    return {row["RowKey"]: row.metadata["timestamp"] for row in rows}


def age(azurite: Azurite, source_id: str, **fields: Any) -> None:
    """Set fields of a source row directly (to make it look older, or stuck)."""
    client = tables(azurite).get_table_client("knowledgesources")
    client.update_entity({"PartitionKey": "source", "RowKey": source_id, **fields}, mode="merge")


def long_ago(days: float = 0, seconds: float = 0) -> str:
    moment = datetime.now(UTC) - timedelta(days=days, seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- crawling ------------------------------------------------------------------------------------------------


def test_a_site_is_crawled_within_robots_txt_and_search_links_to_the_page(kapi: httpx.Client, site: Site) -> None:
    brand = word()
    shop(site, brand)
    created = create(kapi, {"type": "url", "url": site.url + "/", "maxPages": 20})
    assert created["type"] == "url" and created["url"] == site.url + "/" and created["maxPages"] == 20
    assert created["title"] == site.url + "/"  # until the page names itself
    source = settle(kapi, created["id"])
    assert source["status"] == "ready", source
    assert source["title"] == f"{brand} Outdoor Shop"  # the start page's <title>
    crawled = pages(kapi, source["id"])
    assert set(crawled) == {f"{site.url}/", f"{site.url}/returns", f"{site.url}/shipping?utm=1", f"{site.url}/care"}
    assert all(page["status"] == "indexed" and page["chunks"] >= 1 for page in crawled.values())
    assert source["pages"] == 4 and source["chunks"] == sum(page["chunks"] for page in crawled.values())
    assert source["lastSync"]["added"] == 4 and source["lastSync"]["skipped"]["robots"] == 1
    assert source["lastSyncedAt"] and source["contentHash"].startswith("sha256:")

    # robots.txt was read first and honoured; nothing off the site, no images or PDFs, each page once.
    requested = site.requested("/")
    assert requested[0] == "/robots.txt"
    assert site.requested("/private/") == [] and site.requested("/logo") == [] and site.requested("/manual") == []
    assert requested.count("/returns") == 1

    hits = search(kapi, f"send back unused {brand} gear refund")
    assert hits[0]["url"] == f"{site.url}/returns" and hits[0]["sourceId"] == source["id"]
    assert hits[0]["anchor"] == "policy" and hits[0]["sourceTitle"] == f"{brand} Outdoor Shop"
    care = search(kapi, f"dry {brand} tent")
    assert care[0]["url"] == f"{site.url}/care"  # reached through the redirect from /old-care
    # Page furniture is not indexed: navigation, footer, scripts.
    for furniture in ("zznavword", "zzfooterword", "zzscriptword", "zzprivateword"):
        assert not [hit for hit in search(kapi, furniture) if hit["sourceId"] == source["id"]], furniture


def test_a_start_page_that_moves_to_another_origin_takes_the_crawl_along(kapi: httpx.Client, site: Site) -> None:
    brand = word()
    moved = site.url.replace("127.0.0.1", "localhost")  # another host: like shop.example -> www.shop.example
    site.raw("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")
    site.redirect("/", f"{moved}/home")
    site.html("/home", "Home", f"<p>The {brand} home page.</p>", ["/about", "/private/x", f"{site.url}/elsewhere"])
    site.html("/about", "About", f"<p>About the {brand} team.</p>")
    source = settle(kapi, create(kapi, {"type": "url", "url": site.url + "/"})["id"])
    assert source["status"] == "ready", source
    assert set(pages(kapi, source["id"])) == {f"{moved}/home", f"{moved}/about"}
    assert source["lastSync"]["skipped"] == {"robots": 1, "offsite": 1}  # the old origin is now another site
    hosts = [r.headers.get("Host") for r in site.server.requests if r.path == "/robots.txt"]  # type: ignore[union-attr]
    assert hosts == [site.url.removeprefix("http://"), moved.removeprefix("http://")]  # each origin's own


def test_a_source_is_queued_then_indexing_then_ready(kapi: httpx.Client, site: Site) -> None:
    brand = word()
    site.raw("/robots.txt", b"", "text/plain", status=404)  # no robots.txt: everything may be crawled
    site.html("/", "Slow help", f"<h1>Help</h1><p>The {brand} desk answers within a day.</p>")
    gate = site.hold("/")
    created = create(kapi, {"type": "url", "url": site.url})
    assert created["status"] == "queued"
    indexing = eventually(
        lambda: kapi.get(f"/knowledge/sources/{created['id']}").json()["status"] == "indexing",
        what="the source to be indexing",
    )
    assert indexing
    assert search(kapi, f"{brand} desk") == []
    gate.set()
    source = settle(kapi, created["id"])
    assert source["status"] == "ready" and source["error"] is None and source["chunks"] == 1
    assert [hit["sourceId"] for hit in search(kapi, f"{brand} desk")] == [created["id"]]


def test_max_pages_is_honoured(kapi: httpx.Client, site: Site) -> None:
    brand = word()
    site.raw("/robots.txt", b"User-agent: *\nAllow: /\n", "text/plain")
    for i in range(10):
        site.html(f"/p{i}", f"Page {i}", f"<p>{brand} fact number {i}.</p>", [f"/p{j}" for j in range(10)])
    source = settle(kapi, create(kapi, {"type": "url", "url": site.url + "/p0", "maxPages": 3})["id"])
    assert source["status"] == "ready" and source["pages"] == 3
    assert any("maxPages (3)" in warning for warning in source["warnings"]), source["warnings"]
    assert sorted(site.requested("/p")) == ["/p0", "/p1", "/p2"]
    problem(kapi.post("/knowledge/sources", json={"type": "url", "url": site.url, "maxPages": 0}), 422, "maxPages")
    problem(kapi.post("/knowledge/sources", json={"type": "url", "url": site.url, "maxPages": 501}), 422, "maxPages")
    problem(kapi.post("/knowledge/sources", json={"type": "url", "url": site.url, "maxPages": "3"}), 422, "maxPages")


def test_a_sitemap_index_is_followed_to_its_pages(kapi: httpx.Client, site: Site) -> None:
    brand = word()
    shop(site, brand)
    created = create(kapi, {"type": "sitemap", "url": site.url + "/sitemap.xml", "title": "Help centre"})
    source = settle(kapi, created["id"])
    assert source["status"] == "ready" and source["title"] == "Help centre", source
    assert set(pages(kapi, source["id"])) == {f"{site.url}/returns", f"{site.url}/care"}
    assert source["lastSync"]["skipped"] == {"robots": 1, "offsite": 1}
    assert site.requested("/private/") == [] and site.requested("/shipping") == []  # only what the sitemap lists
    assert search(kapi, f"{brand} refund")[0]["url"] == f"{site.url}/returns"


def test_sync_reindexes_only_what_changed_and_drops_what_vanished(
    kapi: httpx.Client, site: Site, module_azurite: Azurite
) -> None:
    brand = word()
    shop(site, brand)
    source = settle(kapi, create(kapi, {"type": "url", "url": site.url + "/"})["id"])
    assert source["pages"] == 4
    before = chunk_rows(module_azurite, source["id"])

    response = kapi.post(f"/knowledge/sources/{source['id']}/sync")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    again = eventually(
        lambda: (s := settle(kapi, source["id"]))["lastSyncedAt"] != source["lastSyncedAt"] and s,
        what="the sync to finish",
    )
    assert again["status"] == "ready"
    assert again["lastSync"] | {"startedAt": 0, "finishedAt": 0} == {
        "startedAt": 0, "finishedAt": 0, "pages": 4, "added": 0, "changed": 0, "unchanged": 4, "removed": 0,
        "failed": 0, "chunksWritten": 0, "skipped": {"robots": 1, "offsite": 1},
    }  # fmt: skip
    assert chunk_rows(module_azurite, source["id"]) == before  # not one chunk row rewritten

    # /returns changes, /shipping disappears (404), /care is no longer linked (the redirect goes).
    site.html("/returns", "Returns", f"<h1>Returns</h1><p>Unused {brand} gear now comes back within 60 days.</p>")
    site.remove("/shipping?utm=1")
    site.remove("/old-care")
    kapi.post(f"/knowledge/sources/{source['id']}/sync")
    third = eventually(
        lambda: (s := settle(kapi, source["id"]))["lastSyncedAt"] != again["lastSyncedAt"] and s,
        what="the second sync to finish",
    )
    assert third["lastSync"]["changed"] == 1 and third["lastSync"]["unchanged"] == 1
    assert third["lastSync"]["removed"] == 2 and third["pages"] == 2
    assert set(pages(kapi, source["id"])) == {f"{site.url}/", f"{site.url}/returns"}
    hits = [hit for hit in search(kapi, f"{brand} gear back within days", top=20) if hit["sourceId"] == source["id"]]
    assert "60 days" in hits[0]["text"] and not any("30 days" in hit["text"] for hit in hits)
    assert not any(brand in hit["text"] and "parcel" in hit["text"] for hit in search(kapi, f"{brand} parcel ships"))
    after = chunk_rows(module_azurite, source["id"])
    home = [key for key in before if key in after]
    assert home and all(after[key] == before[key] for key in home)  # the unchanged home page's rows untouched


def test_a_site_that_cannot_be_read_fails_with_an_error_a_person_can_act_on(kapi: httpx.Client, site: Site) -> None:
    site.raw("/robots.txt", b"", "text/plain", status=404)
    missing = settle(kapi, create(kapi, {"type": "url", "url": site.url + "/nothing-here"})["id"])
    assert missing["status"] == "failed" and missing["chunks"] == 0
    assert missing["error"] == f"{site.url}/nothing-here answered 404"

    site.raw("/robots.txt", b"oops", "text/plain", status=503)
    down = settle(kapi, create(kapi, {"type": "url", "url": site.url + "/"})["id"])
    assert down["status"] == "failed" and "robots.txt" in down["error"] and "503" in down["error"]

    site.raw("/robots.txt", b"User-agent: *\nDisallow: /\n", "text/plain")
    closed = settle(kapi, create(kapi, {"type": "url", "url": site.url + "/"})["id"])
    assert closed["status"] == "failed" and "robots.txt does not allow" in closed["error"]

    site.raw("/robots.txt", b"", "text/plain", status=404)
    site.raw("/sitemap.xml", b"<html>not a sitemap</html>", "text/html")
    not_sitemap = settle(kapi, create(kapi, {"type": "sitemap", "url": site.url + "/sitemap.xml"})["id"])
    assert not_sitemap["status"] == "failed" and "sitemap" in not_sitemap["error"]


def test_one_broken_page_does_not_fail_the_source_and_a_redirect_inward_is_refused(
    kapi: httpx.Client, site: Site
) -> None:
    brand = word()
    site.raw("/robots.txt", b"", "text/plain", status=404)
    site.html("/", "Home", f"<p>The {brand} shop.</p>", ["/broken", "/escape"])
    site.raw("/broken", b"oops", "text/html", status=500)
    site.redirect("/escape", "http://0.0.0.0:9/admin", status=302)
    source = settle(kapi, create(kapi, {"type": "url", "url": site.url})["id"])
    assert source["status"] == "ready" and source["pages"] == 1, source
    assert source["lastSync"]["failed"] == 2
    assert any("2 pages could not be read" in warning for warning in source["warnings"]), source["warnings"]
    crawled = pages(kapi, source["id"])
    assert crawled[f"{site.url}/broken"]["status"] == "failed" and "500" in crawled[f"{site.url}/broken"]["error"]
    escape = crawled[f"{site.url}/escape"]["error"]
    assert "redirects to http://0.0.0.0:9/admin" in escape and "unspecified address" in escape


def test_urls_that_point_inside_the_network_are_refused_up_front(kapi: httpx.Client) -> None:
    for url, reason in [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://0.0.0.0/", "unspecified"),
        ("ftp://example.com/", "http and https"),
        ("http://user:secret@example.com/", "password"),
        ("http://224.0.0.1/", "multicast"),
    ]:
        message = problem(kapi.post("/knowledge/sources", json={"type": "url", "url": url}), 422, "url")
        assert reason in message, (url, message)
    assert problem(kapi.post("/knowledge/sources", json={"type": "url"}), 422, "url")
    assert problem(kapi.post("/knowledge/sources", json={"type": "url", "url": "x", "text": "t"}), 422, "text")


def test_private_addresses_stay_refused_in_production_whatever_the_setting(
    fresh_azurite: Azurite, start_host: Callable[..., Host], site: Site
) -> None:
    # Its own Azurite: a Production host must not take this module's jobs from the knowledge queue.
    production = start_host(
        host_env(fresh_azurite, AZURE_FUNCTIONS_ENVIRONMENT="Production", KNOWLEDGE_ALLOW_PRIVATE_URLS="true")
    )
    try:
        with production.client(headers=ADMIN) as api:
            for url in (site.url, site.url.replace("127.0.0.1", "localhost"), "http://10.1.2.3/", "http://[::1]:80/"):
                message = problem(api.post("/knowledge/sources", json={"type": "sitemap", "url": url}), 422, "url")
                assert "only public addresses can be fetched" in message, message
    finally:
        production.stop()
    assert site.requested("/") == []


def test_deleting_a_crawled_source_removes_it_from_answers_at_once(
    kapi: httpx.Client, site: Site, module_azurite: Azurite
) -> None:
    brand = word()
    shop(site, brand)
    source = settle(kapi, create(kapi, {"type": "url", "url": site.url})["id"])
    assert search(kapi, f"{brand} refund")
    assert kapi.delete(f"/knowledge/sources/{source['id']}").status_code == 204
    assert [hit for hit in search(kapi, f"{brand} refund") if hit["sourceId"] == source["id"]] == []
    assert chunk_rows(module_azurite, source["id"]) == {}
    stored_pages = tables(module_azurite).get_table_client("knowledgepages")
    assert list(stored_pages.query_entities(f"PartitionKey eq '{source['id']}'")) == []
    assert kapi.get(f"/knowledge/sources/{source['id']}/pages").status_code == 404


# --- files ---------------------------------------------------------------------------------------------------


def test_a_pdf_is_indexed_page_by_page_and_a_scanned_page_is_named(kapi: httpx.Client) -> None:
    brand = word()
    pdf = make_pdf(
        [f"Warranty\nEvery {brand} stove has a five year warranty.", None, f"Spare parts\n{brand} burners are sold."],
        title=f"{brand} manual",
    )
    created = upload(kapi, "manual.pdf", pdf, "application/pdf").json()
    assert created["type"] == "file" and created["status"] == "queued"
    assert created["file"] == {"name": "manual.pdf", "kind": "pdf", "bytes": len(pdf)}
    source = settle(kapi, created["id"])
    assert source["status"] == "ready" and source["title"] == f"{brand} manual" and source["pages"] == 1
    assert source["warnings"] == [
        "page 2 of the PDF has no text layer (scanned?) and is not indexed; run OCR on the PDF to include it"
    ]
    hits = search(kapi, f"{brand} stove warranty")
    assert hits[0]["sourceId"] == source["id"] and hits[0]["anchor"] == "page=1" and hits[0]["url"] is None
    assert search(kapi, f"{brand} burners spare")[0]["anchor"] == "page=3"


def test_a_scanned_pdf_fails_saying_it_has_no_text_layer(kapi: httpx.Client) -> None:
    source = settle(kapi, upload(kapi, "scan.pdf", make_pdf([None, None]), "application/pdf").json()["id"])
    assert source["status"] == "failed" and source["chunks"] == 0
    assert source["error"].startswith("the PDF has no text layer (scanned?)")


def test_docx_html_markdown_and_text_files_are_indexed(kapi: httpx.Client) -> None:
    brand = word()
    docx = upload(kapi, "care.docx", docx_guide(brand), "application/octet-stream").json()
    html = upload(
        kapi,
        "faq.html",
        f"<html><head><title>FAQ</title></head><body><nav>zznavword</nav><h2>Payment</h2>"
        f"<p>{brand} accepts cards and invoices.</p></body></html>".encode(),
        "text/html",
    ).json()
    markdown = upload(
        kapi,
        "hours.md",
        f"# Opening hours\n\n## Weekends\nThe {brand} store opens Saturdays.".encode(),
        "text/markdown",
    ).json()
    text = upload(
        kapi, "notes.txt", f"Parking: {brand} customers park free at the café.".encode("cp1252"), "text/plain",
        title="Parking",
    ).json()  # fmt: skip
    for created in (docx, html, markdown, text):
        source = settle(kapi, created["id"])
        assert source["status"] == "ready" and source["chunks"] >= 1, source
    assert settle(kapi, docx["id"])["title"] == f"{brand} care guide"
    assert settle(kapi, text["id"])["title"] == "Parking" and settle(kapi, markdown["id"])["title"] == "Opening hours"

    washing = search(kapi, f"wash {brand} jacket temperature")[0]
    assert washing["sourceId"] == docx["id"] and washing["headingPath"] == ["Care guide", "Washing"]
    assert "Shell | 30 degrees" in " ".join(hit["text"] for hit in search(kapi, f"{brand} shell fabric", top=3))
    payment = search(kapi, f"does {brand} take cards")[0]
    assert payment["sourceId"] == html["id"] and payment["headingPath"] == ["Payment"]
    assert "zznavword" not in payment["text"]
    assert search(kapi, f"{brand} saturday")[0]["anchor"] == "weekends"
    parking = search(kapi, f"{brand} parking")[0]
    assert parking["sourceId"] == text["id"] and "café" in parking["text"]  # Windows-1252, not UTF-8


def test_files_are_refused_by_size_and_kind_naming_the_field(kapi: httpx.Client) -> None:
    big = b"a" * (MAX_FILE_BYTES + 1)
    assert "limit is 300000" in problem(upload(kapi, "big.txt", big, "text/plain", expect=413), 413, "file")
    huge = b"a" * (MAX_FILE_BYTES + 100_000)
    problem(upload(kapi, "huge.txt", huge, "text/plain", expect=413), 413, "file")
    message = problem(
        upload(kapi, "sheet.xlsx", b"PK\x03\x04rest", "application/vnd.ms-excel", expect=415), 415, "file"
    )
    assert "PDF, DOCX, HTML, Markdown or plain text" in message
    assert "save it as DOCX" in problem(
        upload(kapi, "old.doc", b"\xd0\xcf\x11\xe0" + b"\0" * 50, "", expect=415), 415, "file"
    )
    problem(upload(kapi, "photo.png", b"\x89PNG\r\n\x1a\n\0\0", "image/png", expect=415), 415, "file")
    problem(upload(kapi, "empty.txt", b"", "text/plain", expect=422), 422, "file")
    problem(kapi.post("/knowledge/sources", data={"title": "No file"}, files={"other": ("a.txt", b"x")}), 422, "other")
    problem(kapi.post("/knowledge/sources", files={"file": (None, "not a file")}), 422, "file")
    response = kapi.post("/knowledge/sources", files={"title": (None, "Only a title")})
    problem(response, 422, "file")
    problem(upload(kapi, "a.txt", b"hello", "text/plain", title=" ", expect=422), 422, "title")


def test_a_file_source_is_replaced_by_a_new_version_and_an_identical_one_costs_nothing(kapi: httpx.Client) -> None:
    brand = word()
    created = upload(kapi, "prices.md", f"# Prices\nA {brand} tent costs 200 euros.".encode(), "text/markdown").json()
    first = settle(kapi, created["id"])
    assert "200 euros" in search(kapi, f"{brand} tent price")[0]["text"]

    same = kapi.post(f"/knowledge/sources/{created['id']}/sync")
    assert same.status_code == 202, same.text
    resynced = eventually(lambda: (s := settle(kapi, created["id"]))["lastSyncedAt"] != first["lastSyncedAt"] and s)
    assert resynced["lastSync"]["unchanged"] == 1 and resynced["lastSync"]["chunksWritten"] == 0

    newer = f"# Prices\nA {brand} tent costs 250 euros.".encode()
    response = kapi.post(
        f"/knowledge/sources/{created['id']}/sync", files={"file": ("prices.md", newer, "text/markdown")}
    )
    assert response.status_code == 202, response.text
    replaced = eventually(lambda: (s := settle(kapi, created["id"]))["lastSyncedAt"] != resynced["lastSyncedAt"] and s)
    assert replaced["lastSync"]["changed"] == 1 and replaced["file"]["bytes"] == len(newer)
    hits = search(kapi, f"{brand} tent price")
    assert "250 euros" in hits[0]["text"] and not any(f"{brand} tent costs 200" in hit["text"] for hit in hits)


def test_a_retried_upload_with_its_idempotency_key_makes_one_source(kapi: httpx.Client) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    files = {"file": ("faq.txt", f"{word()} answers.".encode(), "text/plain")}
    first = kapi.post("/knowledge/sources", files=files, headers=key)
    again = kapi.post("/knowledge/sources", files=files, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    other = kapi.post("/knowledge/sources", files={"file": ("faq.txt", b"else", "text/plain")}, headers=key)
    problem(other, 422, "Idempotency-Key")


# --- editing, schedules and repair ---------------------------------------------------------------------------


def test_refresh_is_set_by_patch_and_a_due_source_is_refreshed_by_the_timer(
    kapi: httpx.Client, site: Site, khost: Host, module_azurite: Azurite
) -> None:
    brand = word()
    site.raw("/robots.txt", b"", "text/plain", status=404)
    site.html("/", "News", f"<p>The {brand} sale starts in May.</p>")
    source = settle(kapi, create(kapi, {"type": "url", "url": site.url, "refresh": "weekly"})["id"])
    assert source["refresh"] == "weekly"
    patched = kapi.patch(f"/knowledge/sources/{source['id']}", json={"refresh": "daily", "title": "Shop news"})
    assert patched.status_code == 200 and patched.json()["refresh"] == "daily"
    problem(kapi.patch(f"/knowledge/sources/{source['id']}", json={"refresh": "hourly"}), 422, "refresh")

    run_timer(khost, "knowledge_refresh")  # synced just now: not due
    assert settle(kapi, source["id"])["lastSyncedAt"] == source["lastSyncedAt"]

    site.html("/", "News", f"<p>The {brand} sale starts in June.</p>")
    age(module_azurite, source["id"], lastSyncedAt=long_ago(days=1, seconds=5), queuedAt=long_ago(days=1, seconds=5))
    run_timer(khost, "knowledge_refresh")
    refreshed = eventually(lambda: (s := settle(kapi, source["id"]))["lastSyncedAt"] > source["lastSyncedAt"] and s)
    assert refreshed["lastSync"]["changed"] == 1 and refreshed["title"] == "Shop news"  # a title set by hand stays
    assert "June" in search(kapi, f"{brand} sale")[0]["text"]

    text = kapi.post("/knowledge/sources", json={"type": "text", "title": "T", "text": f"{brand} note."}).json()
    problem(kapi.patch(f"/knowledge/sources/{text['id']}", json={"refresh": "daily"}), 422, "refresh")
    assert kapi.post(f"/knowledge/sources/{text['id']}/sync").status_code == 409


def test_a_job_a_crash_left_behind_is_retried_then_failed(
    kapi: httpx.Client, site: Site, khost: Host, module_azurite: Azurite
) -> None:
    brand = word()
    site.raw("/robots.txt", b"", "text/plain", status=404)
    site.html("/", "Home", f"<p>The {brand} shop.</p>")
    source = settle(kapi, create(kapi, {"type": "url", "url": site.url})["id"])
    job = tables(module_azurite).get_table_client("knowledgesources").get_entity("source", source["id"])["job"]

    # While a job is alive, a sync starts no second one.
    age(module_azurite, source["id"], status="indexing", attempts=1, heartbeatAt=long_ago(seconds=1))
    assert kapi.post(f"/knowledge/sources/{source['id']}/sync").json()["status"] == "indexing"
    run_timer(khost, "knowledge_refresh")
    assert kapi.get(f"/knowledge/sources/{source['id']}").json()["status"] == "indexing"
    # Stuck "indexing" with no heartbeat for an hour (its worker died): the timer queues it again.
    age(module_azurite, source["id"], heartbeatAt=long_ago(seconds=3600))
    run_timer(khost, "knowledge_refresh")
    retried = eventually(lambda: (s := settle(kapi, source["id"]))["lastSyncedAt"] > source["lastSyncedAt"] and s)
    assert retried["status"] == "ready"

    # Stuck again after its last attempt: failed, with what to do, and its content kept.
    assert tables(module_azurite).get_table_client("knowledgesources").get_entity("source", source["id"])["job"] == job
    age(module_azurite, source["id"], status="indexing", attempts=3, heartbeatAt=long_ago(seconds=3600))
    run_timer(khost, "knowledge_refresh")
    failed = settle(kapi, source["id"])
    assert failed["status"] == "failed" and "indexing stopped 3 times" in failed["error"]
    assert "try Sync again" in failed["error"] and "is still used" in failed["error"]
    assert search(kapi, f"{brand} shop")[0]["sourceId"] == source["id"]
    # A sync starts afresh.
    assert kapi.post(f"/knowledge/sources/{source['id']}/sync").status_code == 202
    assert eventually(lambda: settle(kapi, source["id"])["status"] == "ready")


def test_the_new_routes_need_the_admin_key(khost: Host) -> None:
    with khost.client() as anonymous:
        for method, path in [
            ("POST", f"/knowledge/sources/{'0' * 24}/sync"),
            ("GET", f"/knowledge/sources/{'0' * 24}/pages"),
        ]:
            response = anonymous.request(method, path)
            assert response.status_code == 401, response.text
        response = anonymous.post("/knowledge/sources", files={"file": ("a.txt", b"x", "text/plain")})
        assert response.status_code == 401
