"""``POST /api/knowledge/test``: a question tried on the bot from the dashboard, through the real devhost.

The excerpts and the answer come from the path a visitor's message takes (offline bot, or the real
``openai`` SDK against the fake OpenAI server), but no conversation is stored. A paid call is counted
where visitors' calls are (``/api/cost``) and held to the deployment's cost caps. The module has an
Azurite of its own so the counts checked here are this module's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.fakes.openai_server import FakeOpenAI, ok
from tests.support import ADMIN_KEY, eventually, host_env, tables

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
STOVE = {
    "type": "text",
    "title": "Camp stove guide",
    "text": "# Camp stoves\n## Fuel\nThe Zephyr camp stove burns white gas or kerosene; never use diesel in it.",
}
PRICES = '{"gpt-4o-mini": {"prompt": 0.15, "completion": 0.6}}'


@pytest.fixture(scope="module")
def desk(module_azurite: Azurite, start_host: Callable[..., Host]) -> Host:
    """The product with the offline bot, the test FAQ as its knowledge setting, and one text source."""
    host = start_host(host_env(module_azurite))
    with host.client(headers=ADMIN) as admin:
        assert admin.post("/knowledge/sources", json=STOVE).status_code == 201
    return host


@pytest.fixture(scope="module")
def paid_desk(module_azurite: Azurite, start_host: Callable[..., Host], desk: Host, module_openai: FakeOpenAI) -> Host:
    """The same knowledge answered by the openai SDK against the fake, with a price table."""
    del desk  # it added the source
    env = {"LLM_PROVIDER": "openai", "OPENAI_BASE_URL": module_openai.base_url, "OPENAI_API_KEY": "sk-test",
           "LLM_PRICES": PRICES, "LLM_MAX_RETRIES": "0"}  # fmt: skip
    return start_host(host_env(module_azurite, **env))


def tried(host: Host, question: str) -> dict[str, Any]:
    with host.client(headers=ADMIN) as admin:
        response = admin.post("/knowledge/test", json={"question": question})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def nothing_stored(host: Host, azurite: Azurite, cost_usd: float = 0) -> None:
    """No conversation and no message: the try left no visitor behind (only what its calls cost)."""
    with host.client(headers=ADMIN) as admin:
        assert admin.get("/sessions").json()["sessions"] == []
        totals = admin.get("/cost", params={"window": "24h"}).json()["totals"]
    assert totals["sessions"] == 0 and totals["messages"] == 0 and totals["costUsd"] == pytest.approx(cost_usd)
    names = {table.name for table in tables(azurite).list_tables()}
    if "chats" in names:
        assert list(tables(azurite).get_table_client("chats").list_entities()) == []


def source_id(host: Host, title: str) -> str:
    with host.client(headers=ADMIN) as admin:
        return next(s["id"] for s in admin.get("/knowledge/sources").json()["sources"] if s["title"] == title)


def test_the_offline_bot_shows_its_excerpts_and_its_cited_answer(desk: Host, module_azurite: Azurite) -> None:
    body = tried(desk, "  Which fuel does the Zephyr camp stove burn?  ")
    stove = source_id(desk, "Camp stove guide")
    assert body["question"] == "Which fuel does the Zephyr camp stove burn?"
    first = body["results"][0]
    assert first == {
        "number": 1,
        "sourceId": stove,
        "sourceTitle": "Camp stove guide",
        "url": None,
        "headingPath": ["Camp stoves", "Fuel"],
        "text": "The Zephyr camp stove burns white gas or kerosene; never use diesel in it.",
        "score": first["score"],
        "cited": True,
    }
    assert first["score"] >= body["minScore"] > 0
    assert [r["number"] for r in body["results"]] == list(range(1, len(body["results"]) + 1))
    answer = body["answer"]
    assert answer["text"] == "The Zephyr camp stove burns white gas or kerosene; never use diesel in it."
    assert answer["citations"] == [{"sourceId": stove, "title": "Camp stove guide", "url": None}]
    assert answer["grounded"] is True and answer["gap"] is None and answer["failed"] is False
    assert answer["provider"] == "offline" and answer["costUsd"] == 0 and answer["promptTokens"] == 0

    setting = tried(desk, "How long does shipping take?")  # the KNOWLEDGE_TEXT setting is read too
    assert setting["answer"]["citations"] == [{"sourceId": "knowledge-setting", "title": "Knowledge base", "url": None}]
    assert setting["results"][0]["sourceId"] == "knowledge-setting" and setting["results"][0]["cited"] is True

    unknown = tried(desk, "Do you sell kayaks?")
    assert unknown["answer"]["grounded"] is False and unknown["answer"]["gap"] == "no-match"
    assert "don't know" in unknown["answer"]["text"] and unknown["answer"]["citations"] == []
    assert all(result["cited"] is False for result in unknown["results"])
    nothing_stored(desk, module_azurite)
    with desk.client(headers=ADMIN) as admin:  # and no content gap: no visitor asked it
        assert admin.get("/knowledge/gaps").json()["groups"] == []


def test_a_disabled_source_is_not_read(desk: Host) -> None:
    stove = source_id(desk, "Camp stove guide")
    with desk.client(headers=ADMIN) as admin:
        assert admin.patch(f"/knowledge/sources/{stove}", json={"enabled": False}).status_code == 200
        try:
            body = tried(desk, "Which fuel does the Zephyr camp stove burn?")
            assert stove not in {r["sourceId"] for r in body["results"]}
            assert body["answer"]["gap"] == "no-match"
        finally:
            assert admin.patch(f"/knowledge/sources/{stove}", json={"enabled": True}).status_code == 200


def test_an_llm_answer_reports_its_tokens_and_cost_and_counts_them(
    paid_desk: Host, module_openai: FakeOpenAI, module_azurite: Azurite
) -> None:
    stove = source_id(paid_desk, "Camp stove guide")
    calls_before = _calls(paid_desk)  # the offline bot's answers above count as calls too (at no cost)
    module_openai.script(
        ok("It burns white gas or kerosene [1], never diesel [1].", prompt_tokens=1000, completion_tokens=100)
    )
    body = tried(paid_desk, "Which fuel does the Zephyr camp stove burn?")
    (request,) = module_openai.requests
    prompt = request.json()["messages"][0]["content"]
    assert "[1] Camp stove guide > Camp stoves > Fuel" in prompt  # the excerpts the answer shows, numbered
    assert request.json()["messages"][-1] == {"role": "user", "content": "Which fuel does the Zephyr camp stove burn?"}
    answer = body["answer"]
    assert answer["text"] == "It burns white gas or kerosene, never diesel."
    assert answer["citations"] == [{"sourceId": stove, "title": "Camp stove guide", "url": None}]
    assert answer["provider"] == "openai" and answer["model"].startswith("gpt-4o-mini")
    assert (answer["promptTokens"], answer["completionTokens"]) == (1000, 100)
    assert answer["costUsd"] == pytest.approx(0.21)  # 1K prompt tokens at $0.15 + 0.1K at $0.60
    assert body["results"][0]["cited"] is True

    module_openai.script(ok("I don't know; shall I bring in a person? [no-answer]"))
    unsure = tried(paid_desk, "Do you sell kayaks?")["answer"]
    assert unsure["gap"] == "unanswered" and unsure["citations"] == [] and unsure["text"].endswith("person?")
    nothing_stored(paid_desk, module_azurite, cost_usd=answer["costUsd"] + unsure["costUsd"])
    assert _calls(paid_desk) == calls_before + 2


def _calls(host: Host) -> int:
    with host.client(headers=ADMIN) as admin:
        return int(admin.get("/cost", params={"window": "24h"}).json()["totals"]["calls"])


def test_a_reached_cost_cap_refuses_the_question_before_any_call(
    paid_desk: Host, module_openai: FakeOpenAI, module_azurite: Azurite
) -> None:
    module_openai.script(ok("It burns white gas or kerosene [1].", prompt_tokens=1000, completion_tokens=100))
    spent = tried(paid_desk, "Which fuel does the Zephyr camp stove burn?")["answer"]["costUsd"]
    asked = len(module_openai.requests)
    with paid_desk.client(headers=ADMIN) as admin:
        capped = admin.patch("/config", json={"costCaps": {"perDayUsd": spent / 2}}, headers={"If-Match": "*"})
        assert capped.status_code == 200, capped.text
        try:
            refused = eventually(
                lambda: (r := admin.post("/knowledge/test", json={"question": "fuel?"})).status_code == 409 and r,
                what="the cap to apply",
            )
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["type"].endswith("cost-cap-reached") and "cost cap" in refused.json()["detail"]
            assert len(module_openai.requests) == asked  # refused before the model was asked
        finally:
            restored = admin.patch("/config", json={"costCaps": None}, headers={"If-Match": "*"})
            assert restored.status_code == 200, restored.text


def test_the_route_refuses_strangers_and_bad_questions(desk: Host) -> None:
    with desk.client() as api:
        assert api.post("/knowledge/test", json={"question": "fuel?"}).status_code == 401
        wrong = api.post("/knowledge/test", json={"question": "fuel?"}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        signed = api.post("/ops/signin", json={"key": ADMIN_KEY})
        assert signed.status_code == 200, signed.text
        no_csrf = api.post("/knowledge/test", json={"question": "fuel?"})  # the cookie alone
        assert no_csrf.status_code == 403
        with_csrf = api.post("/knowledge/test", json={"question": "fuel?"},
                             headers={"X-CSRF-Token": signed.json()["csrfToken"]})  # fmt: skip
        assert with_csrf.status_code == 200, with_csrf.text
    with desk.client(headers=ADMIN) as admin:
        for body, field in (
            ({}, "question"),
            ({"question": "   "}, "question"),
            ({"question": "x" * 1001}, "question"),
            ({"question": 5}, "question"),
            ({"question": "fuel?", "sessionId": "s"}, "sessionId"),
        ):
            refused = admin.post("/knowledge/test", json=body)
            assert refused.status_code == 422, (body, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in refused.json()["errors"]] == [field], refused.json()
        assert admin.post("/knowledge/test", content=b"question=fuel").status_code in (400, 415)
        assert admin.get("/knowledge/test").status_code in (404, 405)
