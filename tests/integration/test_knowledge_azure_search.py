"""The Azure AI Search knowledge backend: the real ``azure-search-documents`` SDK against a fake service."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from shared.knowledge.azure_search import (
    AzureSearchBackend,
    SearchAccessDenied,
    SearchBackendError,
    SearchUnavailable,
    make_azure_search_backend,
)
from shared.knowledge.azure_search_settings import AzureSearchSettings
from shared.knowledge.chunking import Chunk, chunk_id, chunk_markdown, chunk_qa
from tests.fakes.azure_search_server import API_KEY, FakeAzureSearch, self_signed_certificate
from tests.fakes.http_server import FakeServer, Recorded, json_reply

MakeBackend = Callable[..., AzureSearchBackend]

SHOP = """# Opening hours
Our shop in Bergen is open Monday to Saturday from 9:00 to 18:00.

# Returns
You can return unused gear within 30 days for a full refund.

## Tents
Tents must be dry and packed in their original bag when returned.
"""
SHOP_ID = "a1" * 12
FAQ_ID = "b2" * 12


@pytest.fixture()
def fake_search() -> Iterator[FakeAzureSearch]:
    """A fresh fake Azure AI Search service on loopback, stopped after the test."""
    server = FakeAzureSearch().start()
    yield server
    server.stop()


@pytest.fixture()
async def make_backend(fake_search: FakeAzureSearch) -> AsyncIterator[MakeBackend]:
    """``make_backend(**settings)``: a backend made from settings on ``fake_search``; all closed after."""
    made: list[AzureSearchBackend] = []

    def make(**overrides: Any) -> AzureSearchBackend:
        values: dict[str, Any] = {
            "backend": "azure-search",
            "endpoint": fake_search.url,
            "api_key": API_KEY,
            "timeout_seconds": 5,
            "max_retries": 0,
            **overrides,
        }
        backend = make_azure_search_backend(settings=AzureSearchSettings(**values))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


def shop_chunks() -> list[Chunk]:
    return chunk_markdown(SHOP, source_id=SHOP_ID)


async def test_ensure_index_creates_the_fields_search_needs(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    backend = make_backend(vector_dimensions=4, semantic_configuration="knowledge-semantic")
    await backend.ensure_index()
    definition = fake_search.indexes["knowledge"].definition
    fields = {f["name"]: f for f in definition["fields"]}
    assert fields["id"]["key"] is True and fields["id"]["type"] == "Edm.String"
    assert fields["sourceId"]["filterable"] and fields["enabled"]["filterable"]
    assert fields["enabled"]["type"] == "Edm.Boolean"
    assert all(fields[name]["searchable"] for name in ("title", "text", "question", "headings"))
    assert fields["headings"]["type"] == "Collection(Edm.String)"
    assert fields["position"]["type"] == "Edm.Int32"
    assert {"anchor", "url"} <= fields.keys()
    vector = fields["vector"]
    assert (vector["type"], vector["dimensions"], vector["retrievable"]) == ("Collection(Edm.Single)", 4, False)
    (profile,) = definition["vectorSearch"]["profiles"]
    (algorithm,) = definition["vectorSearch"]["algorithms"]
    assert vector["vectorSearchProfile"] == profile["name"] and profile["algorithm"] == algorithm["name"]
    assert algorithm["kind"] == "hnsw"
    (semantic,) = definition["semantic"]["configurations"]
    assert semantic["name"] == "knowledge-semantic"
    assert semantic["prioritizedFields"]["prioritizedContentFields"] == [{"fieldName": "text"}]
    # Updating to the same definition is fine; a second call is how every worker starts.
    await backend.ensure_index()
    assert [r.method for r in fake_search.requests] == ["PUT", "PUT"]


async def test_ensure_index_without_vectors_or_semantic(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    await make_backend().ensure_index()
    definition = fake_search.indexes["knowledge"].definition
    assert "vector" not in {f["name"] for f in definition["fields"]}
    assert not definition.get("vectorSearch") and not definition.get("semantic")


async def test_an_incompatible_index_change_is_a_clear_error(make_backend: MakeBackend) -> None:
    await make_backend(vector_dimensions=4).ensure_index()
    with pytest.raises(SearchBackendError, match="400 to the index definition: Existing field 'vector'") as raised:
        await make_backend(vector_dimensions=8).ensure_index()
    assert not isinstance(raised.value, SearchUnavailable)


async def test_upsert_then_search_finds_the_chunk(fake_search: FakeAzureSearch, make_backend: MakeBackend) -> None:
    backend = make_backend()
    chunks = shop_chunks()
    result = await backend.upsert_source(SHOP_ID, "Outdoor shop", True, chunks)
    assert (result.indexed, result.removed) == (len(chunks), 0)
    stored = fake_search.documents()
    assert set(stored) == {c.id for c in chunks}
    tents = next(c for c in chunks if c.heading_path == ("Returns", "Tents"))
    assert stored[tents.id] == {
        "id": tents.id,
        "sourceId": SHOP_ID,
        "enabled": True,
        "title": "Outdoor shop",
        "text": tents.text,
        "question": "",
        "headings": ["Returns", "Tents"],
        "anchor": "tents",
        "url": "",
        "position": tents.position,
    }
    hits = await backend.search("can I return wet tents?", top=2)
    assert hits and hits[0].chunk == tents  # every field of the chunk comes back as it went in
    assert hits[0].title == "Outdoor shop" and hits[0].score > 0
    body = fake_search.bodies("/docs/search.post.search")[-1]  # after the upsert's listing
    assert body["filter"] == "enabled eq true" and body["top"] == 2
    assert body["search"] == "can I return wet tents"  # "?" is an operator of the query syntax
    assert "vector" not in body["select"] and "queryType" not in body and "vectorQueries" not in body


async def test_qa_chunks_and_urls_round_trip(make_backend: MakeBackend) -> None:
    backend = make_backend()
    pairs = [("Do you ship to Iceland?", "Yes, within 5 working days.")]
    chunks = [
        Chunk(c.id, c.source_id, c.text, c.heading_path, c.anchor, c.question, c.position, "https://shop.example/faq")
        for c in chunk_qa(pairs, source_id=FAQ_ID, heading_path=("Shipping",))
    ]
    await backend.upsert_source(FAQ_ID, "FAQ", True, chunks)
    (hit,) = await backend.search("ship Iceland")
    assert hit.chunk == chunks[0]
    assert hit.chunk.question == "Do you ship to Iceland?" and hit.chunk.url == "https://shop.example/faq"


async def test_resync_with_fewer_chunks_removes_the_stale_ones(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    backend = make_backend()
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
    other = chunk_qa([("Do you rent kayaks?", "Yes, from May to September.")], source_id=FAQ_ID)
    await backend.upsert_source(FAQ_ID, "FAQ", True, other)
    edited = chunk_markdown("# Opening hours\nWe are open every day from 10:00 to 16:00.", source_id=SHOP_ID)
    result = await backend.upsert_source(SHOP_ID, "Outdoor shop (new)", True, edited)
    assert (result.indexed, result.removed) == (1, 3)
    stored = fake_search.documents()
    assert set(stored) == {edited[0].id, other[0].id}  # the other source is untouched
    assert stored[edited[0].id]["title"] == "Outdoor shop (new)"
    assert await backend.search("return tent") == []
    (hit,) = await backend.search("open every day")
    assert hit.chunk == edited[0]
    # A re-sync of the same content changes nothing and removes nothing.
    again = await backend.upsert_source(SHOP_ID, "Outdoor shop (new)", True, edited)
    assert (again.indexed, again.removed) == (1, 0)
    assert set(fake_search.documents()) == set(stored)
    # No chunks at all: the source is emptied.
    emptied = await backend.upsert_source(SHOP_ID, "Outdoor shop (new)", True, [])
    assert emptied.removed == 1 and set(fake_search.documents()) == {other[0].id}


async def test_large_sources_go_in_batches_and_are_listed_page_by_page(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    backend = make_backend()

    def many(count: int) -> list[Chunk]:
        texts = [f"Item {i}: gear number {i} of the catalogue." for i in range(count)]
        return [Chunk(chunk_id(SHOP_ID, "", text), SHOP_ID, text, position=i) for i, text in enumerate(texts)]

    await backend.upsert_source(SHOP_ID, "Catalogue", True, many(2500))
    uploads = [b["value"] for b in fake_search.bodies("/docs/search.index")]
    assert [len(u) for u in uploads] == [1000, 1000, 500]
    assert {a["@search.action"] for u in uploads for a in u} == {"mergeOrUpload"}
    assert len(fake_search.documents()) == 2500
    result = await backend.upsert_source(SHOP_ID, "Catalogue", True, many(1200))
    assert (result.indexed, result.removed) == (1200, 1300)
    assert set(fake_search.documents()) == {c.id for c in many(1200)}
    # The source's 2,500 ids were listed in id order, 1,000 at a time, each page after the last id.
    listings = [b for b in fake_search.bodies("/docs/search.post.search") if b.get("select") == "id"]
    assert [b["top"] for b in listings[:3]] == [1000, 1000, 1000] and len(listings) >= 3
    assert all(b["orderby"] == "id asc" for b in listings)
    assert listings[0]["filter"] == f"sourceId eq '{SHOP_ID}'"
    assert listings[1]["filter"].startswith(f"sourceId eq '{SHOP_ID}' and id gt '")


async def test_disabling_hides_a_source_and_enabling_brings_it_back(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    backend = make_backend()
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
    assert await backend.search("opening hours")
    assert await backend.set_enabled(SHOP_ID, False) == 3
    assert all(doc["enabled"] is False for doc in fake_search.documents().values())
    assert await backend.search("opening hours") == []
    assert await backend.set_enabled(SHOP_ID, True) == 3
    (first, *_) = await backend.search("opening hours")
    assert first.chunk.heading_path == ("Opening hours",)
    # A source added disabled is not found until it is enabled.
    faq = chunk_qa([("Do you rent kayaks?", "Yes, from May to September.")], source_id=FAQ_ID)
    await backend.upsert_source(FAQ_ID, "FAQ", False, faq)
    assert await backend.search("rent kayaks") == []


async def test_known_chunk_ids_reach_documents_the_listing_does_not_see(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    backend = make_backend()
    chunks = shop_chunks()
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, chunks)
    # The service indexes in near real time: a listing may not see a document sent a moment ago.
    fake_search.fail(503, path_contains="search.post.search")
    with pytest.raises(SearchUnavailable):
        await backend.set_enabled(SHOP_ID, False, [c.id for c in chunks])
    assert await backend.set_enabled(SHOP_ID, False, [c.id for c in chunks] + ["0" * 24]) == 3
    assert all(doc["enabled"] is False for doc in fake_search.documents().values())
    assert "0" * 24 not in fake_search.documents()  # a known id no longer indexed is not created


async def test_remove_source_deletes_only_its_documents(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    backend = make_backend()
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
    faq = chunk_qa([("Do you rent kayaks?", "Yes, from May to September.")], source_id=FAQ_ID)
    await backend.upsert_source(FAQ_ID, "FAQ", True, faq)
    assert await backend.remove_source(SHOP_ID) == 3
    assert set(fake_search.documents()) == {faq[0].id}
    assert await backend.search("opening hours return tent") == []
    assert await backend.remove_source(SHOP_ID) == 0
    deletes = [
        a for b in fake_search.bodies("/docs/search.index") for a in b["value"] if a["@search.action"] == "delete"
    ]
    assert {a["id"] for a in deletes} == {c.id for c in shop_chunks()}


async def test_a_hybrid_search_sends_the_vector_query(fake_search: FakeAzureSearch, make_backend: MakeBackend) -> None:
    backend = make_backend(vector_dimensions=3)
    chunks = shop_chunks()
    vectors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, chunks, vectors)
    assert fake_search.documents()[chunks[2].id]["vector"] == [0.0, 0.0, 1.0]
    # No word of the query is in the text: the vector alone finds the tents chunk.
    hits = await backend.search("kan jeg levere et vått telt", top=1, vector=[0.1, 0.0, 0.9])
    assert [h.chunk for h in hits] == [chunks[2]]
    body = fake_search.bodies("/docs/search.post.search")[-1]
    assert body["search"] == "kan jeg levere et vått telt"
    assert body["vectorQueries"] == [{"kind": "vector", "vector": [0.1, 0.0, 0.9], "fields": "vector", "k": 50}]
    assert body["filter"] == "enabled eq true"
    # A re-sync without vectors keeps those already indexed (same ids: same text, same embedding).
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, chunks, [None, None, [0.0, 0.6, 0.8]])
    stored = fake_search.documents()
    assert stored[chunks[0].id]["vector"] == [1.0, 0.0, 0.0] and stored[chunks[2].id]["vector"] == [0.0, 0.6, 0.8]
    # Only a vector: a pure vector query.
    (hit,) = await backend.search("???", top=1, vector=[1.0, 0.0, 0.0])
    assert hit.chunk == chunks[0] and "search" not in fake_search.bodies("/docs/search.post.search")[-1]


async def test_vectors_of_the_wrong_size_are_refused_before_any_request(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    chunks = shop_chunks()
    with pytest.raises(ValueError, match="vectors\\[1\\] has 2 dimensions; the index has 3"):
        await make_backend(vector_dimensions=3).upsert_source(
            SHOP_ID, "S", True, chunks, [[1, 0, 0], [1, 0], [0, 0, 1]]
        )
    with pytest.raises(ValueError, match="2 vectors for 3 chunks"):
        await make_backend(vector_dimensions=3).upsert_source(SHOP_ID, "S", True, chunks, [[1, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="AZURE_SEARCH_VECTOR_DIMENSIONS"):
        await make_backend().search("tents", vector=[1.0, 0.0])
    assert fake_search.requests == []


async def test_bad_keys_and_foreign_chunks_are_refused_before_any_request(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    backend = make_backend()
    with pytest.raises(ValueError, match="not a valid Azure AI Search key"):
        await backend.upsert_source(SHOP_ID, "S", True, [Chunk("has space", SHOP_ID, "text")])
    with pytest.raises(ValueError, match="belongs to source"):
        await backend.upsert_source(SHOP_ID, "S", True, chunk_markdown("Hello", source_id=FAQ_ID))
    assert await backend.search("  -*?  ") == [] and await backend.search("tents", top=0) == []
    assert fake_search.requests == []


async def test_source_ids_are_quoted_in_filters(fake_search: FakeAzureSearch, make_backend: MakeBackend) -> None:
    backend = make_backend()
    await backend.ensure_index()
    assert await backend.remove_source("o'brien") == 0
    (listing,) = fake_search.bodies("/docs/search.post.search")
    assert listing["filter"] == "sourceId eq 'o''brien'"


async def test_the_semantic_ranker_is_asked_for_when_configured(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    backend = make_backend(semantic_configuration="knowledge-semantic")
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
    hits = await backend.search("when is the shop open", top=3)
    body = fake_search.bodies("/docs/search.post.search")[-1]
    assert body["queryType"] == "semantic" and body["semanticConfiguration"] == "knowledge-semantic"
    assert body["semanticErrorHandling"] == "partial"
    # Scores are the reranker's (0 to 4), best first.
    assert hits[0].chunk.heading_path == ("Opening hours",)
    assert 0 < hits[0].score <= 4 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_a_search_before_the_index_exists_finds_nothing(make_backend: MakeBackend) -> None:
    assert await make_backend().search("opening hours") == []


async def test_a_wrong_key_is_a_clear_error_and_never_logged(
    fake_search: FakeAzureSearch, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-key-" + "9" * 40
    backend = make_backend(api_key=wrong)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(SearchAccessDenied, match="AZURE_SEARCH_API_KEY") as denied:
            await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
        with pytest.raises(SearchAccessDenied, match="403"):
            await backend.search("opening hours")
    assert fake_search.requests[0].headers["api-key"] == wrong  # the key did go to the service...
    assert wrong not in str(denied.value) and wrong not in repr(denied.value.__cause__)
    assert all(wrong not in record.getMessage() for record in caplog.records)  # ...and nowhere else
    assert "knowledge" not in fake_search.indexes


async def test_an_identity_that_may_only_write_documents_uses_the_index_as_it_is(
    fake_search: FakeAzureSearch, make_backend: MakeBackend
) -> None:
    await make_backend().ensure_index()  # made by whoever may (the deployment, an admin)
    fake_search.forbid_definitions = True
    backend = make_backend()
    with pytest.raises(SearchAccessDenied):
        await backend.ensure_index()
    assert (await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())).indexed == 3
    assert await backend.search("opening hours")


async def test_an_outage_raises_search_unavailable(fake_search: FakeAzureSearch, make_backend: MakeBackend) -> None:
    backend = make_backend()
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
    fake_search.down = True
    with pytest.raises(SearchUnavailable, match="503 to the search"):
        await backend.search("opening hours")
    with pytest.raises(SearchUnavailable, match="503"):
        await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
    with pytest.raises(SearchUnavailable):
        await backend.remove_source(SHOP_ID)
    fake_search.down = False
    assert await backend.search("opening hours")


async def test_a_passing_failure_is_retried(fake_search: FakeAzureSearch, make_backend: MakeBackend) -> None:
    backend = make_backend(max_retries=2)
    await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
    fake_search.fail(503, retry_after="0", path_contains="search.post.search")
    fake_search.fail(429, retry_after="0", path_contains="search.post.search")
    assert await backend.search("opening hours")
    searches = [r for r in fake_search.requests if "search.post.search" in r.path]
    assert len(searches) - 1 == 3  # the listing of the upsert, then 503, 429 and the answer


async def test_a_slow_service_times_out_as_unavailable(fake_search: FakeAzureSearch, make_backend: MakeBackend) -> None:
    backend = make_backend(timeout_seconds=0.5, max_retries=3)
    await backend.ensure_index()
    fake_search.hang(5)
    started = time.monotonic()
    with pytest.raises(SearchUnavailable, match="search"):
        await backend.search("opening hours")
    assert time.monotonic() - started < 2.5  # the deadline holds across retries


async def test_an_unreachable_service_is_unavailable(make_backend: MakeBackend) -> None:
    backend = make_backend(endpoint="http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(SearchUnavailable, match="could not be reached"):
        await backend.search("opening hours")


async def test_documents_the_service_refuses_raise(fake_search: FakeAzureSearch, make_backend: MakeBackend) -> None:
    backend = make_backend()
    chunks = shop_chunks()
    # The service answers 207 with a status per document: one it could not take fails the upsert.
    fake_search.refuse[chunks[1].id] = 503
    with pytest.raises(SearchUnavailable, match=f"failed the upload of 1 of 3 documents \\({chunks[1].id}: 503"):
        await backend.upsert_source(SHOP_ID, "Outdoor shop", True, chunks)
    fake_search.refuse[chunks[1].id] = 400
    with pytest.raises(SearchBackendError, match="failed the upload of 1 of 3") as raised:
        await backend.upsert_source(SHOP_ID, "Outdoor shop", True, chunks)
    assert not isinstance(raised.value, SearchUnavailable)  # not worth retrying as it is
    del fake_search.refuse[chunks[1].id]
    assert (await backend.upsert_source(SHOP_ID, "Outdoor shop", True, chunks)).indexed == 3
    assert set(fake_search.documents()) == {c.id for c in chunks}


def test_settings_that_cannot_work_are_refused() -> None:
    def make(**values: Any) -> AzureSearchBackend:
        return make_azure_search_backend(settings=AzureSearchSettings(**{"api_key": "k", **values}))

    with pytest.raises(ValueError, match="AZURE_SEARCH_ENDPOINT must be the service URL"):
        make(endpoint="")
    with pytest.raises(ValueError, match="must use https"):
        make(endpoint="http://example.search.windows.net")
    with pytest.raises(ValueError, match="AZURE_SEARCH_INDEX"):
        make(endpoint="https://example.search.windows.net", index_name=" ")
    settings = AzureSearchSettings(
        endpoint="https://x.search.windows.net", api_key=SecretStr("secret-key"), backend=" Azure-Search "
    )
    assert settings.resolved_backend == "azure-search"
    assert "secret-key" not in repr(settings) and "secret-key" not in str(settings.describe())


async def test_managed_identity_signs_requests_with_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "fake-managed-identity-token"
    asked: list[Recorded] = []

    def identity(request: Recorded) -> tuple[int, dict[str, str], bytes]:
        asked.append(request)
        if request.headers.get("X-IDENTITY-HEADER") != "identity-secret":
            return json_reply(401, {"error": "missing header"})
        expires = int(time.time()) + 3600
        return json_reply(
            200,
            {
                "access_token": token,
                "expires_on": str(expires),
                "resource": "https://search.azure.com",
                "token_type": "Bearer",
            },
        )

    # Azure Functions reach the managed identity at IDENTITY_ENDPOINT with the IDENTITY_HEADER secret.
    endpoint = FakeServer(identity).start()
    certfile, keyfile = self_signed_certificate(tmp_path)
    search = FakeAzureSearch(api_key="", tokens=(token,)).start(tls=(certfile, keyfile))
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url + "/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "identity-secret")
    settings = AzureSearchSettings(endpoint=search.url, client_id="11111111-2222-3333-4444-555555555555")
    backend = make_azure_search_backend(settings=settings, connection_verify=certfile)
    try:
        await backend.upsert_source(SHOP_ID, "Outdoor shop", True, shop_chunks())
        assert await backend.search("opening hours")
    finally:
        await backend.aclose()
        search.stop()
        endpoint.stop()
    assert all(r.headers["authorization"] == f"Bearer {token}" for r in search.requests)
    assert all("api-key" not in r.headers for r in search.requests)
    query = parse_qs(urlsplit(asked[0].path).query)
    assert query["resource"] == ["https://search.azure.com"]
    assert query["client_id"] == ["11111111-2222-3333-4444-555555555555"]
    assert len(asked) == 1  # the token is cached for the next requests
