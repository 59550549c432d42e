"""``KNOWLEDGE_BACKEND=azure-search`` through the product: a real devhost and Azurite, the real
``azure-search-documents`` SDK against the fake search service, chunk vectors from the fake embeddings
service. Sources added, renamed, disabled and deleted through the API reach the index; searches and
chat answers come from it, and from the local index while it is down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.fakes.azure_search_server import API_KEY, FakeAzureSearch
from tests.fakes.embeddings_server import FakeEmbeddings
from tests.support import ADMIN_KEY, eventually, host_env, new_visitor, run_timer, say

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
DIMENSIONS = 32
TENTS = {"type": "text", "title": "Tent rental", "text": "# Tent rental\nYou can rent a two-person tent for $25 a "
         "night at the Boulder store. Bring a photo ID when you pick it up."}  # fmt: skip
KAYAK = {"question": "Do you rent kayaks?", "answer": "Yes, sea kayaks rent for $40 a day in summer."}
KAYAKS = {"type": "qa", "title": "Kayak FAQ", "pairs": [KAYAK]}
GUIDE = b"# Ski waxing\n\nWe wax skis while you wait: bring them to the Boulder workshop before noon.\n"


@pytest.fixture(scope="module")
def search_service() -> Iterator[FakeAzureSearch]:
    """The fake Azure AI Search service for this module's host."""
    server = FakeAzureSearch().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def embeddings() -> Iterator[FakeEmbeddings]:
    """The fake embeddings service for this module's host."""
    server = FakeEmbeddings(dimensions=DIMENSIONS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def desk(
    module_azurite: Azurite,
    start_host: Callable[..., Host],
    search_service: FakeAzureSearch,
    embeddings: FakeEmbeddings,
) -> Host:
    """The product with knowledge in Azure AI Search (plain http is allowed to a loopback endpoint)."""
    env = host_env(
        module_azurite,
        KNOWLEDGE_BACKEND="azure-search",
        AZURE_SEARCH_ENDPOINT=search_service.url,
        AZURE_SEARCH_API_KEY=API_KEY,
        AZURE_SEARCH_VECTOR_DIMENSIONS=str(DIMENSIONS),
        AZURE_SEARCH_MAX_RETRIES="0",
        AZURE_SEARCH_TIMEOUT_SECONDS="2",
        EMBEDDINGS_URL=embeddings.base_url,
        EMBEDDINGS_MODEL="text-embedding-3-small",
        EMBEDDINGS_API_KEY="sk-embed",
    )
    return start_host(env)


@pytest.fixture()
def admin(desk: Host, search_service: FakeAzureSearch) -> Iterator[httpx.Client]:
    """An admin client; the service is up again after each test."""
    with desk.client(headers=ADMIN) as client:
        yield client
    search_service.down = False


def add(admin: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = admin.post("/knowledge/sources", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def search(admin: httpx.Client, q: str) -> list[dict[str, Any]]:
    response = admin.get("/knowledge/search", params={"q": q})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def documents_of(service: FakeAzureSearch, source_id: str) -> list[dict[str, Any]]:
    return [doc for doc in service.documents().values() if doc["sourceId"] == source_id]


def searches(service: FakeAzureSearch) -> list[dict[str, Any]]:
    """The bodies of the service's searches (not the listings of a source's documents)."""
    return [b for b in service.bodies("/docs/search.post.search") if b.get("filter") == "enabled eq true"]


def test_a_source_goes_to_the_index_and_answers_from_it(
    admin: httpx.Client, desk: Host, search_service: FakeAzureSearch, embeddings: FakeEmbeddings
) -> None:
    tents = add(admin, TENTS)
    (document,) = documents_of(search_service, tents["id"])
    assert document["title"] == "Tent rental" and document["enabled"] is True
    assert "$25 a night" in document["text"] and len(document["vector"]) == DIMENSIONS
    assert admin.get(f"/knowledge/sources/{tents['id']}").json()["indexError"] is None

    before = len(searches(search_service))
    (first, *_) = search(admin, "rent a tent")
    assert (first["sourceId"], first["sourceTitle"], first["chunkId"]) == (tents["id"], "Tent rental", document["id"])
    assert first["headingPath"] == ["Tent rental"] and "$25 a night" in first["text"] and first["url"] is None
    sent = searches(search_service)[before:]
    assert [body["search"] for body in sent] == ["rent a tent"]
    assert len(sent[0]["vectorQueries"][0]["vector"]) == DIMENSIONS  # hybrid: the question's vector too

    # The bot answers from the index and cites the source.
    with desk.client() as api:
        visitor = new_visitor(api)
        asked = len(searches(search_service))
        reply = say(api, visitor, "Can I rent a tent?")
        assert reply.status_code == 200, reply.text
        assert "$25 a night" in reply.json()["reply"]["text"]
        assert reply.json()["reply"]["citations"] == [{"sourceId": tents["id"], "title": "Tent rental", "url": None}]
    assert any(body["search"] == "Can I rent a tent" for body in searches(search_service)[asked:])

    # A new title reaches every document without a new embedding of the unchanged text.
    embedded = len(embeddings.texts())
    renamed = admin.patch(f"/knowledge/sources/{tents['id']}", json={"title": "Tents to rent"})
    assert renamed.status_code == 200, renamed.text
    (document,) = documents_of(search_service, tents["id"])
    assert document["title"] == "Tents to rent" and len(document["vector"]) == DIMENSIONS
    assert search(admin, "rent a tent")[0]["sourceTitle"] == "Tents to rent"
    assert embeddings.texts()[embedded:] == ["rent a tent"]  # the question only

    # Disabled: hidden in the index; enabled: back.
    assert admin.patch(f"/knowledge/sources/{tents['id']}", json={"enabled": False}).status_code == 200
    assert [doc["enabled"] for doc in documents_of(search_service, tents["id"])] == [False]
    assert all(r["sourceId"] != tents["id"] for r in search(admin, "rent a tent"))
    assert admin.patch(f"/knowledge/sources/{tents['id']}", json={"enabled": True}).status_code == 200
    assert search(admin, "rent a tent")[0]["sourceId"] == tents["id"]

    # Deleted: gone from the index at once.
    assert admin.delete(f"/knowledge/sources/{tents['id']}").status_code == 204
    assert documents_of(search_service, tents["id"]) == []
    assert all(r["sourceId"] != tents["id"] for r in search(admin, "rent a tent"))


def test_a_file_source_is_sent_when_its_job_ends(admin: httpx.Client, search_service: FakeAzureSearch) -> None:
    response = admin.post("/knowledge/sources", files={"file": ("skis.md", GUIDE, "text/markdown")})
    assert response.status_code == 201, response.text
    source_id = response.json()["id"]

    def sent() -> bool:
        # Ready in Tables first; the job then sends it (the source says "being sent" meanwhile).
        source = admin.get(f"/knowledge/sources/{source_id}").json()
        return source["status"] == "ready" and source["indexError"] is None

    eventually(sent, what="the indexed file sent")
    (document,) = documents_of(search_service, source_id)
    assert "wax skis" in document["text"] and len(document["vector"]) == DIMENSIONS
    assert search(admin, "ski waxing")[0]["sourceId"] == source_id


def test_an_outage_degrades_and_the_timer_catches_up(
    admin: httpx.Client, desk: Host, search_service: FakeAzureSearch
) -> None:
    kayaks = add(admin, KAYAKS)
    search_service.down = True

    # Searches and answers come from the local index, built from Tables.
    (first, *_) = search(admin, "rent kayaks")
    assert (first["sourceId"], first["sourceTitle"]) == (kayaks["id"], "Kayak FAQ")
    with desk.client() as api:
        reply = say(api, new_visitor(api), "Do you rent kayaks?").json()["reply"]
    assert reply["citations"] == [{"sourceId": kayaks["id"], "title": "Kayak FAQ", "url": None}]
    assert "knowledge search from the local index: Azure AI Search answered 503" in desk.log()

    # A change is stored and said to be behind; a deletion is refused whole.
    renamed = admin.patch(f"/knowledge/sources/{kayaks['id']}", json={"title": "Kayaks"})
    assert renamed.status_code == 200, renamed.text
    behind = admin.get(f"/knowledge/sources/{kayaks['id']}").json()
    assert behind["title"] == "Kayaks" and behind["indexError"].startswith("not yet in Azure AI Search (")
    refused = admin.delete(f"/knowledge/sources/{kayaks['id']}")
    assert refused.status_code == 503 and refused.headers["content-type"].startswith("application/problem+json")
    assert admin.get(f"/knowledge/sources/{kayaks['id']}").status_code == 200
    assert [doc["title"] for doc in documents_of(search_service, kayaks["id"])] == ["Kayak FAQ"]

    # Back up: the refresh timer sends what was left behind.
    search_service.down = False
    run_timer(desk, "knowledge_refresh")

    def caught_up() -> bool:
        source = admin.get(f"/knowledge/sources/{kayaks['id']}").json()
        return source["indexError"] is None and [d["title"] for d in documents_of(search_service, kayaks["id"])] == [
            "Kayaks"
        ]

    eventually(caught_up, what="the source sent again")
    assert search(admin, "rent kayaks")[0]["sourceTitle"] == "Kayaks"
    assert admin.delete(f"/knowledge/sources/{kayaks['id']}").status_code == 204
    assert documents_of(search_service, kayaks["id"]) == []
