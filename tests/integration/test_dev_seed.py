"""``make dev``'s sample knowledge base, added through the product's API on an empty deployment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from devhost.azurite import Azurite
from devhost.seed import sample_sources, seed_knowledge
from tests.conftest import Host
from tests.support import ADMIN_KEY, host_env

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_an_empty_deployment_gets_the_sample_shop_once_and_can_answer_the_demo_pages_question(
    fresh_azurite: Azurite, start_host: Callable[..., Host], tmp_path: Path
) -> None:
    host = start_host(host_env(fresh_azurite))
    marker = tmp_path / "knowledge-seeded"

    said = seed_knowledge(host.base_url, ADMIN_KEY, marker)

    assert said.startswith(f"added {len(sample_sources())} sample knowledge sources")
    with host.client(headers=ADMIN) as api:
        stored = api.get("/knowledge/sources", params={"limit": 50}).json()["sources"]
        assert sorted(source["title"] for source in stored) == sorted(body["title"] for body in sample_sources())
        assert all(source["status"] == "ready" and source["chunks"] > 0 for source in stored)
        # The demo page invites questions about shipping and returns: the right page answers.
        hits = api.get("/knowledge/search", params={"q": "how long does delivery take?", "top": 3}).json()["results"]
        assert hits[0]["sourceTitle"] == "Shipping and returns" and "business days" in hits[0]["text"]

        # Started again: nothing added twice. Deleted by the owner: not brought back.
        assert seed_knowledge(host.base_url, ADMIN_KEY, marker) == "sample knowledge added before"
        for source in stored:
            assert api.delete(f"/knowledge/sources/{source['id']}").status_code == 204
        assert seed_knowledge(host.base_url, ADMIN_KEY, marker) == "sample knowledge added before"
        assert api.get("/knowledge/sources").json()["sources"] == []


def test_a_knowledge_base_with_sources_of_its_own_is_left_alone(
    fresh_azurite: Azurite, start_host: Callable[..., Host], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = start_host(host_env(fresh_azurite))
    with host.client(headers=ADMIN) as api:
        own = {"type": "text", "title": "Our own page", "text": "We sell kayaks and canoes."}
        assert api.post("/knowledge/sources", json=own).status_code == 201

        said = seed_knowledge(host.base_url, ADMIN_KEY, tmp_path / "marker")

        assert said == "knowledge base has sources; no samples added"
        assert [source["title"] for source in api.get("/knowledge/sources").json()["sources"]] == ["Our own page"]
    monkeypatch.setenv("DEV_SEED_KNOWLEDGE", "false")
    assert (
        seed_knowledge(host.base_url, ADMIN_KEY, tmp_path / "other")
        == "sample knowledge off (DEV_SEED_KNOWLEDGE=false)"
    )
