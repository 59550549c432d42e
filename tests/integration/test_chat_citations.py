"""Answers with citations and content gaps, through the real devhost on an Azurite of their own.

The knowledge comes in through the product's API (``POST /api/knowledge/sources``), beside the
``KNOWLEDGE_TEXT`` setting every test host has; the bot is the offline one, or the real ``openai``
SDK against the fake OpenAI server. This module's Azurite is its own, so no other test's sources
change these answers (and these sources change no other test's).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.fakes.openai_server import FakeOpenAI, ok
from tests.fixtures.knowledge import put_page_source
from tests.support import ADMIN_KEY, Visitor, eventually, history, host_env, new_visitor, say, settled

SETTING = {"sourceId": "knowledge-setting", "title": "Knowledge base", "url": None}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SOURCES: list[dict[str, Any]] = [
    {"type": "text", "title": "Tent rental", "text": "# Tent rental\nYou can rent a two-person tent for $25 a night "
     "at the Boulder store. Bring a photo ID when you pick it up."},
    {"type": "qa", "title": "Warranty FAQ", "pairs": [
        {"question": "How long is the warranty on sleeping bags?",
         "answer": "Sleeping bags carry a five-year warranty against seam failures."},
        {"question": "Do you repair zippers?", "answer": "Yes, zipper repairs are free within the warranty period."},
    ]},
    {"type": "text", "title": "Climbing wall", "text": "# Climbing wall\nThe climbing wall in the store is open "
     "to members on weekends from 10:00 to 16:00."},
]  # fmt: skip


@pytest.fixture(scope="module")
def desk(module_azurite: Azurite, start_host: Callable[..., Host]) -> Host:
    """The product with the offline bot: the test FAQ as its knowledge setting, and three sources."""
    host = start_host(host_env(module_azurite))
    with host.client(headers=ADMIN) as admin:
        for body in SOURCES:
            assert admin.post("/knowledge/sources", json=body).status_code == 201
    return host


@pytest.fixture(scope="module")
def source_ids(desk: Host) -> dict[str, str]:
    """Source title -> id."""
    with desk.client(headers=ADMIN) as admin:
        return {s["title"]: s["id"] for s in admin.get("/knowledge/sources").json()["sources"]}


@pytest.fixture()
def api(desk: Host) -> Iterator[httpx.Client]:
    """A client for the desk's /api."""
    with desk.client() as client:
        yield client


def cite(source_ids: dict[str, str], title: str) -> dict[str, Any]:
    """The citation of a source added through the API (text and Q&A sources have no URL)."""
    return {"sourceId": source_ids[title], "title": title, "url": None}


def gap_groups(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/knowledge/gaps", headers=ADMIN, params=params)
    assert response.status_code == 200, response.text
    groups: list[dict[str, Any]] = response.json()["groups"]
    return groups


def group_of(api: httpx.Client, question: str) -> dict[str, Any] | None:
    return next((g for g in gap_groups(api) if question in (g["question"], *g["variants"])), None)


def listed(api: httpx.Client, question: str, count: int = 1) -> dict[str, Any]:
    """The gap group holding ``question`` once it has ``count`` questions (AssertionError until then)."""
    group = group_of(api, question)
    assert group is not None and group["count"] == count, group
    return group


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """The events of a streamed chat turn (the closing ``[DONE]`` checked and left out)."""
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_an_answer_cites_the_source_it_came_from_and_keeps_it_in_history(
    api: httpx.Client, source_ids: dict[str, str], module_azurite: Azurite
) -> None:
    visitor = new_visitor(api)
    tent = say(api, visitor, "Can I rent a tent?")
    assert tent.status_code == 200, tent.text
    reply = tent.json()["reply"]
    assert "$25 a night" in reply["text"]
    assert reply["citations"] == [cite(source_ids, "Tent rental")]  # one of four sources, the right one
    assert "citations" not in tent.json()["message"]  # the visitor's own message cites nothing

    warranty = say(api, visitor, "How long is the warranty on sleeping bags?").json()["reply"]
    assert warranty["text"] == "Sleeping bags carry a five-year warranty against seam failures."
    assert warranty["citations"] == [cite(source_ids, "Warranty FAQ")]
    shipping = say(api, visitor, "How long does shipping take?").json()["reply"]
    assert "3 to 5 business days" in shipping["text"] and shipping["citations"] == [SETTING]  # the setting

    # A reload reads the history: the citations were stored with the answers.
    bots = [m for m in history(api, visitor)["messages"] if m["sender"] == "bot"]
    assert [m["citations"] for m in bots] == [
        [cite(source_ids, "Tent rental")], [cite(source_ids, "Warranty FAQ")], [SETTING],
    ]  # fmt: skip
    transcript = api.get(f"/sessions/{visitor.session_id}/transcript", headers=ADMIN)
    assert transcript.status_code == 200, transcript.text
    assert [m["citations"] for m in transcript.json()["messages"] if m["sender"] == "bot"][0] == [
        cite(source_ids, "Tent rental")
    ]
    settled(module_azurite, visitor.session_id)
    assert group_of(api, "Can I rent a tent?") is None  # answered: not a gap


def test_the_streamed_answer_ends_with_its_citations(api: httpx.Client, source_ids: dict[str, str]) -> None:
    visitor = new_visitor(api)
    response = api.post(
        "/chat",
        json={"message": "When is the climbing wall open?", "sessionId": visitor.session_id},
        headers={**visitor.auth, "Accept": "text/event-stream"},
    )
    events = sse_events(response)
    done = events[-1]
    assert done["type"] == "done" and done["reply"]["citations"] == [cite(source_ids, "Climbing wall")]
    assert "".join(e["text"] for e in events if e["type"] == "delta") == done["reply"]["text"]
    assert history(api, visitor)["messages"][-1]["citations"] == [cite(source_ids, "Climbing wall")]


def test_a_question_outside_the_knowledge_is_a_gap_grouped_with_similar_ones(
    api: httpx.Client, module_azurite: Azurite
) -> None:
    first, second = new_visitor(api), new_visitor(api)
    unknown = say(api, first, "Do you sell kayaks?").json()["reply"]
    assert "don't know" in unknown["text"] and "person" in unknown["text"]
    assert unknown["citations"] == []
    assert say(api, second, "Do you sell kayaks or canoes?").json()["reply"]["citations"] == []
    settled(module_azurite, first.session_id, second.session_id)

    kayaks = eventually(lambda: listed(api, "Do you sell kayaks?", 2), what="the gap")
    assert {kayaks["question"], *kayaks["variants"]} == {"Do you sell kayaks?", "Do you sell kayaks or canoes?"}
    assert kayaks["reasons"] == {"no-match": 2} and kayaks["sessions"] == 2
    assert set(kayaks["sampleSessionIds"]) == {first.session_id, second.session_id}
    assert set(kayaks) == {"id", "question", "variants", "count", "sessions", "firstSeen", "lastSeen", "reasons",
                           "sampleSessionIds"}  # fmt: skip


def test_a_question_followed_by_a_request_for_a_person_is_a_gap(api: httpx.Client, module_azurite: Azurite) -> None:
    visitor = new_visitor(api)
    assert say(api, visitor, "Can I rent a tent for my dog?").status_code == 200
    handed = say(api, visitor, "I want to talk to a person")
    assert handed.json()["status"] == "human_requested"
    settled(module_azurite, visitor.session_id)
    group = eventually(lambda: listed(api, "Can I rent a tent for my dog?"), what="the handoff gap")
    assert group["reasons"] == {"handoff": 1} and group["sampleSessionIds"] == [visitor.session_id]
    assert group_of(api, "I want to talk to a person") is None  # the request itself is no question


def test_dismissing_a_group_hides_it_and_the_api_refuses_strangers(api: httpx.Client, module_azurite: Azurite) -> None:
    visitor = new_visitor(api)
    say(api, visitor, "Do you rent snowshoes?")
    settled(module_azurite, visitor.session_id)
    group = eventually(lambda: listed(api, "Do you rent snowshoes?"), what="the gap")
    url = f"/knowledge/gaps/{group['id']}/dismiss"
    dismissed = api.post(url, headers=ADMIN)
    assert dismissed.status_code == 200 and dismissed.json() == {"id": group["id"], "dismissed": True, "questions": 1}
    assert group_of(api, "Do you rent snowshoes?") is None
    assert api.post(url, headers=ADMIN).json()["questions"] == 0  # again: nothing left to hide, still fine

    for unknown in ("0123456789abcdef", "not-a-group"):
        missing = api.post(f"/knowledge/gaps/{unknown}/dismiss", headers=ADMIN)
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    assert api.get("/knowledge/gaps").status_code == 401
    assert api.get("/knowledge/gaps", headers={"Authorization": "Bearer wrong-key"}).status_code == 401
    assert api.post(url).status_code == 401
    bad = api.get("/knowledge/gaps", headers=ADMIN, params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    assert api.get("/knowledge/gaps", headers=ADMIN, params={"limit": 0}).status_code == 422


def test_gap_groups_are_paged(api: httpx.Client, module_azurite: Azurite) -> None:
    visitor = new_visitor(api)
    for question in ("Do you rent paddleboards?", "Is there parking for buses?"):
        say(api, visitor, question)
    settled(module_azurite, visitor.session_id)
    eventually(lambda: len(gap_groups(api)) >= 2, what="two groups")
    first = api.get("/knowledge/gaps", headers=ADMIN, params={"limit": 1}).json()
    assert len(first["groups"]) == 1 and first["total"] >= 2 and first["nextCursor"]
    second = api.get("/knowledge/gaps", headers=ADMIN, params={"limit": 1, "cursor": first["nextCursor"]}).json()
    assert len(second["groups"]) == 1 and second["groups"][0]["id"] != first["groups"][0]["id"]


def test_only_http_links_are_cited(api: httpx.Client, module_azurite: Azurite) -> None:
    safe = put_page_source(module_azurite, "Boot care", "Wax leather boots twice a season.", "https://shop.example/care",
                           "boots")  # fmt: skip
    hostile = put_page_source(module_azurite, "<b>Gaiters</b>", "Gaiters keep snow out of boots on deep trails.",
                              "javascript:alert(1)", "")  # fmt: skip
    visitor = new_visitor(api)

    def asked(question: str) -> dict[str, Any]:
        reply: dict[str, Any] = say(api, visitor, question).json()["reply"]
        assert reply["citations"], reply  # the new sources are seen within seconds
        return reply

    care = eventually(lambda: asked("How often should I wax leather boots?"), what="the page source")
    assert care["citations"] == [{"sourceId": safe, "title": "Boot care", "url": "https://shop.example/care#boots"}]
    gaiters = asked("Do gaiters keep snow out?")
    assert gaiters["citations"] == [{"sourceId": hostile, "title": "<b>Gaiters</b>", "url": None}]


# --- the OpenAI path --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm_desk(module_azurite: Azurite, start_host: Callable[..., Host], desk: Host, module_openai: FakeOpenAI) -> Host:
    """The same knowledge (``desk`` added the sources), answered by the openai SDK against the fake."""
    del desk
    env = {"LLM_PROVIDER": "openai", "OPENAI_BASE_URL": module_openai.base_url, "OPENAI_API_KEY": "sk-test"}
    return start_host(host_env(module_azurite, **env))


def excerpts_in(prompt: str) -> dict[int, str]:
    """Excerpt number -> the source title it is labelled with, from the system prompt."""
    return {int(n): title.split(" > ")[0] for n, title in re.findall(r"^\[(\d+)\] (.+)$", prompt, re.MULTILINE)}


def test_the_model_gets_numbered_excerpts_and_its_markers_choose_the_citations(
    llm_desk: Host, module_openai: FakeOpenAI, source_ids: dict[str, str]
) -> None:
    with llm_desk.client() as api:
        visitor = new_visitor(api)
        module_openai.script(ok("Two-person tents rent for $25 a night [1]. Bring a photo ID [1][9]."))
        reply = say(api, visitor, "Can I rent a tent, and what do I need?").json()["reply"]
        prompt = module_openai.requests[-1].json()["messages"][0]["content"]
        numbered = excerpts_in(prompt)
        assert numbered[1] == "Tent rental"  # the best excerpt first
        assert "Answer only from the numbered excerpts" in prompt and "[no-answer]" in prompt
        assert "$25 a night at the Boulder store" in prompt
        assert reply["text"] == "Two-person tents rent for $25 a night. Bring a photo ID."  # markers removed
        assert reply["citations"] == [cite(source_ids, "Tent rental")]  # [9] names no excerpt: ignored

        module_openai.script(ok("Tents rent for $25 [2]; sleeping bags have a five-year warranty [1]."))
        both = say(api, visitor, "Tent rental price and sleeping bag warranty?").json()["reply"]
        numbered = excerpts_in(module_openai.requests[-1].json()["messages"][0]["content"])
        titles = [c["title"] for c in both["citations"]]
        assert titles == [numbered[2], numbered[1]]  # in the order the answer used them
        assert {"Tent rental", "Warranty FAQ"} == set(titles)

        module_openai.script(ok("Sleeping bags are covered for five years [1]."))
        streamed = api.post(
            "/chat",
            json={"message": "How long is the warranty on sleeping bags?", "sessionId": visitor.session_id},
            headers={**visitor.auth, "Accept": "text/event-stream"},
        )
        events = sse_events(streamed)
        deltas = "".join(e["text"] for e in events if e["type"] == "delta")
        assert deltas == events[-1]["reply"]["text"] == "Sleeping bags are covered for five years."
        assert events[-1]["reply"]["citations"] == [cite(source_ids, "Warranty FAQ")]
        assert history(api, visitor)["messages"][-1]["citations"] == [cite(source_ids, "Warranty FAQ")]


def test_the_model_saying_it_does_not_know_cites_nothing_and_is_a_gap(
    llm_desk: Host, module_openai: FakeOpenAI, module_azurite: Azurite
) -> None:
    with llm_desk.client() as api:
        visitor: Visitor = new_visitor(api)
        module_openai.script(ok("Je ne sais pas. Voulez-vous parler à une personne de l'équipe ? [no-answer]"))
        reply = say(api, visitor, "Louez-vous des vélos électriques ?").json()["reply"]
        assert reply["text"] == "Je ne sais pas. Voulez-vous parler à une personne de l'équipe ?"
        assert reply["citations"] == []
        settled(module_azurite, visitor.session_id)
        group = eventually(lambda: listed(api, "Louez-vous des vélos électriques ?"), what="the gap")
        assert group["reasons"] == {"unanswered": 1}
