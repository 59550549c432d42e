"""Knowledge sources over real HTTP and Azurite: add text and Q&A, list, disable, delete, search, refusals.

url, sitemap and file sources, which a queue job indexes, are tested in ``test_knowledge_ingest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.support import ADMIN_KEY, eventually, host_env, tables

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture()
def kapi(app: Host) -> Iterator[httpx.Client]:
    """A client for the product's /api that sends the admin key."""
    with app.client(headers=ADMIN) as client:
        yield client


def word() -> str:
    """A made-up word no other test's source contains, so searches don't see each other's sources."""
    return "zq" + uuid.uuid4().hex[:10]


def add(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/knowledge/sources", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"].endswith(f"/knowledge/sources/{created['id']}")
    return created


def search(api: httpx.Client, q: str, top: int = 5) -> list[dict[str, Any]]:
    response = api.get("/knowledge/search", params={"q": q, "top": top})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def source_ids(results: list[dict[str, Any]]) -> set[str]:
    return {result["sourceId"] for result in results}


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    if field is not None:
        assert field in [error["field"] for error in problem.get("errors", [])], problem
    return problem


def test_text_and_qa_sources_are_found_by_a_paraphrased_question(kapi: httpx.Client, azurite: Azurite) -> None:
    brand = word()
    text = add(
        kapi,
        {
            "type": "text",
            "title": "Garden sheds",
            "text": f"# Building rules\n\n## Small sheds\nA {brand} shed under 15 square metres needs no building "
            "permit, as long as it stands at least 4.5 metres from the boundary.\n\n## Large sheds\n"
            "Anything bigger needs a permit from the municipality.",
        },
    )
    assert text["status"] == "ready" and text["type"] == "text" and text["enabled"] is True
    assert text["chunks"] >= 2 and text["contentHash"].startswith("sha256:") and text["error"] is None
    qa = add(
        kapi,
        {
            "type": "qa",
            "title": "Refunds FAQ",
            "pairs": [
                {"question": f"How do I get my money back for a {brand} order?", "answer": "Refunds take 5 days."},
                {"question": "Do you ship abroad?", "answer": "Yes, to every EU country."},
            ],
        },
    )
    assert qa["chunks"] == 2 and qa["type"] == "qa"

    hits = search(kapi, f"can I put up a small {brand} shed without permits?")
    assert hits[0]["sourceId"] == text["id"] and hits[0]["sourceTitle"] == "Garden sheds"
    assert hits[0]["headingPath"] == ["Building rules", "Small sheds"] and hits[0]["anchor"] == "small-sheds"
    assert "no building permit" in hits[0]["text"] and hits[0]["score"] > 0
    assert set(hits[0]) == {"sourceId", "sourceTitle", "url", "chunkId", "anchor", "headingPath", "text", "score"}
    assert hits[0]["url"] is None  # pasted text has no page to link to

    hits = search(kapi, f"refund for my {brand} purchase", top=1)
    assert len(hits) == 1 and hits[0]["sourceId"] == qa["id"] and hits[0]["text"].startswith("Q: How do I get")

    # Stored as designed: one source row, chunk rows in the source's partition.
    chunks = list(tables(azurite).get_table_client("knowledgechunks").query_entities(f"PartitionKey eq '{qa['id']}'"))
    assert len(chunks) == 2
    # A re-POST of the same content is a new source with the same content hash.
    again = add(kapi, {"type": "qa", "title": "Refunds FAQ (copy)", "pairs": [
        {"question": f"How do I get my money back for a {brand} order?", "answer": "Refunds take 5 days."},
        {"question": "Do you ship abroad?", "answer": "Yes, to every EU country."},
    ]})  # fmt: skip
    assert again["id"] != qa["id"] and again["contentHash"] == qa["contentHash"]
    assert kapi.get(f"/knowledge/sources/{qa['id']}").json() == qa


def test_sources_are_listed_with_cursor_paging(kapi: httpx.Client) -> None:
    created = [add(kapi, {"type": "text", "title": f"Page {i}", "text": f"Note {i} {word()}."})["id"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = kapi.get("/knowledge/sources", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["sources"]) <= 2
        for source in page["sources"]:
            assert set(source) == {"id", "type", "title", "url", "status", "error", "warnings", "chunks", "pages",
                                   "enabled", "refresh", "maxPages", "file", "createdAt", "lastSyncedAt", "lastSync",
                                   "contentHash", "indexError"}  # fmt: skip
            if source["id"] in created:  # a pasted source: nothing of a crawl or a file
                assert source["url"] is None and source["pages"] is None and source["maxPages"] is None
                assert source["file"] is None and source["lastSync"] is None and source["warnings"] == []
                assert source["refresh"] == "manual"
        seen += [source["id"] for source in page["sources"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    assert [source_id for source_id in seen if source_id in created] == created
    assert_problem(kapi.get("/knowledge/sources", params={"limit": 0}), 422, "limit")
    assert_problem(kapi.get("/knowledge/sources", params={"limit": 201}), 422, "limit")
    assert_problem(kapi.get("/knowledge/sources", params={"cursor": "nonsense"}), 422, "cursor")


def test_disabling_a_source_hides_it_from_search_and_enabling_brings_it_back(kapi: httpx.Client) -> None:
    brand = word()
    source = add(kapi, {"type": "text", "title": "Opening hours", "text": f"The {brand} shop opens at nine."})
    assert source_ids(search(kapi, f"when does {brand} open")) == {source["id"]}

    response = kapi.patch(f"/knowledge/sources/{source['id']}", json={"enabled": False})
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is False and response.json()["title"] == "Opening hours"
    assert search(kapi, f"when does {brand} open") == []

    response = kapi.patch(
        f"/knowledge/sources/{source['id']}",
        json={"enabled": True, "title": "Hours"},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is True
    hits = search(kapi, f"when does {brand} open")
    assert source_ids(hits) == {source["id"]} and hits[0]["sourceTitle"] == "Hours"

    url = f"/knowledge/sources/{source['id']}"
    assert_problem(kapi.patch(url, json={"colour": "red"}), 422, "colour")
    assert_problem(kapi.patch(url, json={"enabled": "no"}), 422, "enabled")
    assert_problem(kapi.patch(url, json={"title": None}), 422, "title")
    assert_problem(kapi.patch(url, json={"title": ""}), 422, "title")
    assert_problem(kapi.patch(f"/knowledge/sources/{'0' * 24}", json={"enabled": False}), 404)
    assert kapi.get(url).json()["title"] == "Hours"


def test_deleting_a_source_removes_it_at_once_and_it_is_404_afterwards(kapi: httpx.Client, azurite: Azurite) -> None:
    brand = word()
    source = add(kapi, {"type": "qa", "title": "Returns", "pairs": [
        {"question": f"Can I return a {brand}?", "answer": "Within 30 days."}]})  # fmt: skip
    assert source_ids(search(kapi, f"return {brand}")) == {source["id"]}

    response = kapi.delete(f"/knowledge/sources/{source['id']}")
    assert response.status_code == 204, response.text
    assert search(kapi, f"return {brand}") == []
    assert_problem(kapi.get(f"/knowledge/sources/{source['id']}"), 404)
    assert_problem(kapi.delete(f"/knowledge/sources/{source['id']}"), 404)
    assert_problem(kapi.patch(f"/knowledge/sources/{source['id']}", json={"enabled": True}), 404)
    assert_problem(kapi.get("/knowledge/sources/not-an-id"), 404)
    chunks = tables(azurite).get_table_client("knowledgechunks")
    assert list(chunks.query_entities(f"PartitionKey eq '{source['id']}'")) == []


def test_invalid_sources_are_refused_naming_the_field(kapi: httpx.Client) -> None:
    post = "/knowledge/sources"
    assert_problem(kapi.post(post, json={"type": "text", "text": "Hello."}), 422, "title")
    assert_problem(kapi.post(post, json={"type": "text", "title": "", "text": "Hello."}), 422, "title")
    assert_problem(kapi.post(post, json={"type": "text", "title": "x" * 201, "text": "Hello."}), 422, "title")
    assert_problem(kapi.post(post, json={"type": "qa", "title": "FAQ", "pairs": []}), 422, "pairs")
    assert_problem(kapi.post(post, json={"type": "qa", "title": "FAQ"}), 422, "pairs")
    assert_problem(kapi.post(post, json={"type": "text", "title": "T"}), 422, "text")
    assert_problem(kapi.post(post, json={"type": "text", "title": "T", "text": "   "}), 422, "text")
    pairs = [{"question": f"Q{i}?", "answer": "A."} for i in range(501)]
    assert_problem(kapi.post(post, json={"type": "qa", "title": "FAQ", "pairs": pairs}), 422, "pairs")
    bad_pair = [{"question": "Why?", "answer": ""}]
    assert_problem(kapi.post(post, json={"type": "qa", "title": "FAQ", "pairs": bad_pair}), 422, "pairs.0.answer")
    problem = assert_problem(kapi.post(post, json={"type": "video", "title": "Clip"}), 422, "type")
    message = next(error["message"] for error in problem["errors"] if error["field"] == "type")
    assert all(kind in message for kind in ("text", "qa", "url", "sitemap", "multipart/form-data"))
    problem = assert_problem(kapi.post(post, json={"type": "file", "title": "Doc"}), 422, "type")
    assert "multipart/form-data" in problem["errors"][0]["message"]
    assert_problem(kapi.post(post, json={"type": "text", "title": "T", "text": "Hi.", "url": "https://a.example"}), 422,
                   "url")  # fmt: skip
    assert_problem(kapi.post(post, json={"type": "qa", "title": "T", "pairs": [{"question": "Q?", "answer": "A."}],
                                         "maxPages": 3}), 422, "maxPages")  # fmt: skip
    assert_problem(kapi.post(post, json={"type": "text", "title": "Big", "text": "x " * 33_000}), 413)
    assert_problem(kapi.post(post, json={"type": "text", "title": "Nul", "text": "a\u0000b"}), 422, "text")
    assert_problem(kapi.get("/knowledge/search"), 422, "q")
    assert_problem(kapi.get("/knowledge/search", params={"q": "hello", "top": 21}), 422, "top")


def test_the_admin_key_is_required(api: httpx.Client) -> None:
    for method, path in [
        ("GET", "/knowledge/sources"),
        ("POST", "/knowledge/sources"),
        ("GET", f"/knowledge/sources/{'0' * 24}"),
        ("PATCH", f"/knowledge/sources/{'0' * 24}"),
        ("DELETE", f"/knowledge/sources/{'0' * 24}"),
        ("POST", f"/knowledge/sources/{'0' * 24}/sync"),
        ("GET", f"/knowledge/sources/{'0' * 24}/pages"),
        ("GET", "/knowledge/search?q=hello"),
    ]:
        body = {"type": "text", "title": "T", "text": "Hello."} if method in ("POST", "PATCH") else None
        assert_problem(api.request(method, path, json=body), 401)


def test_a_second_host_sees_a_deletion_within_seconds(
    kapi: httpx.Client, azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    other = start_host(host_env(azurite))
    brand = word()
    source = add(kapi, {"type": "text", "title": "Warranty", "text": f"Every {brand} has a two-year warranty."})
    with other.client(headers=ADMIN) as second:
        eventually(lambda: source_ids(search(second, f"{brand} warranty")) == {source["id"]}, timeout=10)
        assert kapi.delete(f"/knowledge/sources/{source['id']}").status_code == 204
        eventually(lambda: search(second, f"{brand} warranty") == [], timeout=6, what="the deletion on the other host")
        assert_problem(second.get(f"/knowledge/sources/{source['id']}"), 404)


def test_a_chunk_longer_than_a_table_property_is_stored_and_found_whole(kapi: httpx.Client) -> None:
    brand = word()
    # One "word" is never split by the chunker: a chunk of ~40K characters (and one of 15K emoji, 30K
    # UTF-16 units) is more than one 32K-unit Table property holds.
    for filler in ("x" * 40_000, "\U0001f600" * 15_000):
        text = f"# Long\nThe {brand} code is {filler} and nothing else."
        source = add(kapi, {"type": "text", "title": "Long", "text": text})
        hits = search(kapi, f"{brand} code")
        assert [hit["sourceId"] for hit in hits] == [source["id"]]
        assert hits[0]["text"] == text.split("\n", 1)[1]
        assert kapi.delete(f"/knowledge/sources/{source['id']}").status_code == 204


def test_a_retried_creation_with_its_idempotency_key_makes_one_source(kapi: httpx.Client) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"type": "text", "title": f"Returns {word()}", "text": "# Returns\nUnused items come back within 30 days."}
    first = kapi.post("/knowledge/sources", json=body, headers=key)
    again = kapi.post("/knowledge/sources", json=body, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    listed = kapi.get("/knowledge/sources", params={"limit": 200}).json()["sources"]
    assert [s["id"] for s in listed if s["title"] == body["title"]] == [first.json()["id"]]
    reused = kapi.post("/knowledge/sources", json={**body, "text": "Something else entirely."}, headers=key)
    assert_problem(reused, 422, "Idempotency-Key")
