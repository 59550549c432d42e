"""The runtime configuration over real HTTP on Azurite: reading, changing under If-Match, validation,
presets, idempotency, and each field's effect today: the kill switch on every worker within 5 s and
the cost caps (AI calls and USD, per session, per day, per month)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from shared.conversations import texts
from tests.conftest import Host
from tests.fakes.openai_server import FakeOpenAI, ok
from tests.support import ADMIN_KEY, eventually, host_env, new_visitor, say, session_header, settled

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SETTINGS = {"MAX_AI_CALLS_PER_DAY": "500", "AWAY_MESSAGE": "We are out; back at nine."}
RESET = {
    "botEnabled": None, "autonomy": None, "autoSendAfterSeconds": None, "handoffThreshold": None,
    "handoffMode": None, "costCaps": None, "officeHours": None, "visitorChoice": None, "awayMessage": None,
}  # fmt: skip


@pytest.fixture(scope="module")
def hosts(module_azurite: Azurite, start_host: Callable[..., Host]) -> tuple[Host, Host]:
    """Two workers of one deployment: two devhost processes on the same Azurite."""
    return start_host(host_env(module_azurite, **SETTINGS)), start_host(host_env(module_azurite, **SETTINGS))


@pytest.fixture()
def admin(hosts: tuple[Host, Host]) -> Iterator[httpx.Client]:
    """An admin client of the first worker; the configuration is back to its defaults before each test."""
    with hosts[0].client(headers=ADMIN) as client:
        assert client.patch("/config", json=RESET, headers={"If-Match": "*"}).status_code == 200
        yield client


def patch(api: httpx.Client, body: dict[str, Any], etag: str | None = None, **headers: str) -> httpx.Response:
    """PATCH /api/config as a merge patch, If-Match the given ETag (else the current one)."""
    match = etag if etag is not None else api.get("/config").headers["etag"]
    return api.patch(
        "/config",
        content=httpx.Request("PATCH", "/", json=body).content,
        headers={"Content-Type": "application/merge-patch+json", "If-Match": match, **headers},
    )


def events(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/audit", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def assert_422(response: httpx.Response, *fields: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in response.json()["errors"]] == list(fields)


# --- reading and changing -----------------------------------------------------------------------------


def test_the_configuration_routes_are_admin_only(hosts: tuple[Host, Host]) -> None:
    with hosts[0].client() as api:
        for method, path in (("GET", "/config"), ("PATCH", "/config"), ("POST", "/config/presets/balanced")):
            assert api.request(method, path, json={}).status_code == 401
            wrong = {"Authorization": "Bearer sdk_wrong-key-0123456789abcdefghijklmnop", "If-Match": "*"}
            assert api.request(method, path, json={}, headers=wrong).status_code == 401
        signin = api.post("/ops/signin", json={"key": ADMIN_KEY})
        csrf = signin.json()["csrfToken"]
        assert api.get("/config").status_code == 200  # the dashboard's cookie
        refused = api.patch("/config", json={"visitorChoice": True}, headers={"If-Match": "*"})
        assert refused.status_code == 403 and refused.json()["type"].endswith("csrf-failed")
        changed = api.patch("/config", json={"visitorChoice": True}, headers={"If-Match": "*", "X-CSRF-Token": csrf})
        assert changed.status_code == 200 and changed.json()["visitorChoice"] is True
        assert api.patch("/config", json=RESET, headers={"If-Match": "*", "X-CSRF-Token": csrf}).status_code == 200


def test_get_shows_every_field_where_it_comes_from_and_an_etag(admin: httpx.Client) -> None:
    response = admin.get("/config")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body, etag = response.json(), response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert body["botEnabled"] is True and body["autonomy"] == "auto" and body["officeHours"] is None
    assert body["costCaps"] == {
        "perSessionPerDayUsd": None, "perDayUsd": None, "perMonthUsd": None,
        "aiCallsPerSessionPerDay": 50, "aiCallsPerDay": 500,
    }  # fmt: skip
    assert body["awayMessage"] == "We are out; back at nine."
    assert body["sources"]["costCaps.aiCallsPerDay"] == "setting" and body["sources"]["awayMessage"] == "setting"
    assert body["sources"]["botEnabled"] == "default" and body["updatedBy"] == "admin"  # the reset's record
    assert admin.get("/config", headers={"If-None-Match": etag}).status_code == 304


def test_a_change_needs_the_current_etag(admin: httpx.Client, hosts: tuple[Host, Host]) -> None:
    missing = admin.patch("/config", json={"visitorChoice": True})
    assert missing.status_code == 428 and missing.json()["errors"] == [{"field": "If-Match", "message": "is required"}]
    first = admin.get("/config").headers["etag"]
    changed = patch(admin, {"visitorChoice": True, "costCaps": {"perDayUsd": 5}}, first)
    assert changed.status_code == 200, changed.text
    assert changed.json()["visitorChoice"] is True and changed.headers["etag"] != first
    assert changed.json()["sources"]["costCaps.perDayUsd"] == "stored"
    stale = patch(admin, {"visitorChoice": False}, first)
    assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
    assert stale.json()["etag"] == changed.headers["etag"]
    assert patch(admin, {"visitorChoice": False}, f"W/{changed.headers['etag']}").status_code == 412  # weak: never
    with hosts[1].client(headers=ADMIN) as other:  # the other worker reads the stored record at once
        seen = other.get("/config")
        assert seen.headers["etag"] == changed.headers["etag"] and seen.json()["costCaps"]["perDayUsd"] == 5


def test_null_restores_the_app_setting(admin: httpx.Client) -> None:
    assert patch(admin, {"costCaps": {"aiCallsPerDay": 9}, "awayMessage": "Gone fishing."}).status_code == 200
    restored = patch(admin, {"costCaps": {"aiCallsPerDay": None}, "awayMessage": None}).json()
    assert restored["costCaps"]["aiCallsPerDay"] == 500 and restored["awayMessage"] == SETTINGS["AWAY_MESSAGE"]
    assert restored["sources"]["costCaps.aiCallsPerDay"] == "setting"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"officeHours": {"timezone": "Mars/Olympus", "weekly": {"mon": ["09:00-17:00"]}}}, ["officeHours.timezone"]),
        ({"officeHours": {"timezone": "Europe/Madrid", "weekly": {"mon": ["17:00-09:00"]}}},
         ["officeHours.weekly.mon.0"]),
        ({"officeHours": {"timezone": "Europe/Madrid", "weekly": {"funday": []}}}, ["officeHours.weekly.funday"]),
        ({"officeHours": {"timezone": "UTC", "weekly": {}, "closedDates": ["25/12/2026"]}},
         ["officeHours.closedDates.0"]),
        ({"officeHours": {"weekly": {}}}, ["officeHours.timezone"]),
        ({"handoffThreshold": 1.5}, ["handoffThreshold"]),
        ({"autonomy": "sometimes"}, ["autonomy"]),
        ({"autoSendAfterSeconds": 0}, ["autoSendAfterSeconds"]),
        ({"botEnabled": "no"}, ["botEnabled"]),
        ({"costCaps": {"perMonthUsd": -3}}, ["costCaps.perMonthUsd"]),
        ({"costCaps": {"perWeekUsd": 3}}, ["costCaps.perWeekUsd"]),
        ({"awayMessage": "x" * 501}, ["awayMessage"]),
        ({"theme": "dark"}, ["theme"]),
        ({"sources": {}}, ["sources"]),
        ({"autonomy": "sometimes", "handoffThreshold": -1}, ["autonomy", "handoffThreshold"]),
    ],
)  # fmt: skip
def test_an_invalid_value_is_a_422_naming_the_field_and_nothing_changes(
    admin: httpx.Client, body: dict[str, Any], fields: list[str]
) -> None:
    before = admin.get("/config")
    assert_422(patch(admin, body, before.headers["etag"]), *fields)
    after = admin.get("/config")
    assert after.headers["etag"] == before.headers["etag"] and after.json() == before.json()


def test_a_body_that_is_not_a_json_object_is_refused(admin: httpx.Client) -> None:
    headers = {"If-Match": "*", "Content-Type": "application/merge-patch+json"}
    assert admin.patch("/config", content=b"[1, 2]", headers=headers).status_code == 400
    assert admin.patch("/config", content=b"{nope", headers=headers).status_code == 400
    assert admin.patch("/config", content=b"a=b", headers={**headers, "Content-Type": "text/plain"}).status_code == 415


def test_fields_not_in_effect_yet_are_stored_and_shown(admin: httpx.Client) -> None:
    hours = {
        "timezone": "Europe/Madrid",
        "weekly": {"mon": ["09:00-14:00", "15:00-18:00"]},
        "closedDates": ["2026-12-25"],
    }
    body = {"autonomy": "auto-after", "autoSendAfterSeconds": 90, "handoffThreshold": 0.5, "handoffMode": "immediate",
            "visitorChoice": True, "officeHours": hours, "awayMessage": "Back on Monday <b>9:00</b>."}  # fmt: skip
    changed = patch(admin, body)
    assert changed.status_code == 200, changed.text
    shown = admin.get("/config").json()
    assert {name: shown[name] for name in body} == body
    # Office hours merge member by member: one day added, the rest kept.
    merged = patch(admin, {"officeHours": {"weekly": {"sat": ["10:00-13:00"]}}}).json()["officeHours"]
    assert merged["weekly"] == {**hours["weekly"], "sat": ["10:00-13:00"]} and merged["timezone"] == "Europe/Madrid"


# --- presets ------------------------------------------------------------------------------------------


def test_presets_apply_their_documented_values(admin: httpx.Client) -> None:
    expected = {
        "conservative": ("approve", 300, 0.6, "immediate", True, (0.5, 20.0, 300.0)),
        "balanced": ("auto-after", 60, 0.35, "offer", True, (2.0, 100.0, 2000.0)),
        "aggressive": ("auto", 60, 0.15, "offer", False, (10.0, 500.0, 10000.0)),
    }
    for name, (autonomy, after, threshold, mode, choice, caps) in expected.items():
        applied = admin.post(f"/config/presets/{name}")
        assert applied.status_code == 200, applied.text
        body = applied.json()
        assert (body["autonomy"], body["autoSendAfterSeconds"], body["handoffThreshold"]) == (
            autonomy,
            after,
            threshold,
        )
        assert (body["handoffMode"], body["visitorChoice"]) == (mode, choice)
        cost = body["costCaps"]
        assert (cost["perSessionPerDayUsd"], cost["perDayUsd"], cost["perMonthUsd"]) == caps
        assert cost["aiCallsPerDay"] == 500 and body["botEnabled"] is True  # not a preset's business
        assert applied.headers["etag"] == admin.get("/config").headers["etag"]
    changed = [e for e in events(admin, event="config:changed") if e["details"].get("preset") == "aggressive"]
    assert (
        changed and {"field": "autonomy", "before": "auto-after", "after": "auto"} in changed[0]["details"]["changes"]
    )


def test_an_unknown_preset_is_404_and_a_stale_if_match_412(admin: httpx.Client) -> None:
    unknown = admin.post("/config/presets/reckless")
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("preset-not-found")
    etag = admin.get("/config").headers["etag"]
    assert admin.post("/config/presets/balanced", headers={"If-Match": etag}).status_code == 200
    assert admin.post("/config/presets/conservative", headers={"If-Match": etag}).status_code == 412


def test_an_idempotency_key_replays_the_first_answer(admin: httpx.Client) -> None:
    etag = admin.get("/config").headers["etag"]
    first = patch(admin, {"handoffThreshold": 0.42}, etag, **{"Idempotency-Key": "cfg-retry-1"})
    again = patch(admin, {"handoffThreshold": 0.42}, etag, **{"Idempotency-Key": "cfg-retry-1"})  # stale by now
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["etag"] == first.headers["etag"]
    recorded = [e for e in events(admin, event="config:changed")
                if {"field": "handoffThreshold", "before": 0.35, "after": 0.42} in e["details"]["changes"]]  # fmt: skip
    assert len(recorded) == 1
    reused = patch(admin, {"handoffThreshold": 0.43}, first.headers["etag"], **{"Idempotency-Key": "cfg-retry-1"})
    assert reused.status_code == 422 and reused.json()["type"].endswith("idempotency-key-reused")


def test_every_change_is_audited_with_before_after_actor_and_correlation(admin: httpx.Client) -> None:
    changed = patch(admin, {"botEnabled": False, "costCaps": {"perDayUsd": 3}}, **{"x-correlation-id": "cfg-audit-1"})
    assert changed.status_code == 200
    found = [e for e in events(admin) if e["correlationId"] == "cfg-audit-1"]
    assert {e["event"] for e in found} == {"config:changed", "kill-switch:engaged"}
    config_event = next(e for e in found if e["event"] == "config:changed")
    assert config_event["actor"] == "admin" and config_event["details"]["via"] == "key"
    assert config_event["details"]["changes"] == [
        {"field": "botEnabled", "before": True, "after": False},
        {"field": "costCaps.perDayUsd", "before": None, "after": 3.0},
    ]
    patch(admin, {"botEnabled": True}, **{"x-correlation-id": "cfg-audit-2"})
    assert [e["event"] for e in events(admin, event="kill-switch:released") if e["correlationId"] == "cfg-audit-2"]


# --- effects ------------------------------------------------------------------------------------------


def test_the_kill_switch_stops_the_bot_on_every_worker_within_5_seconds(
    admin: httpx.Client, hosts: tuple[Host, Host], module_azurite: Azurite
) -> None:
    with hosts[1].client() as other:
        visitor = new_visitor(other)
        first = say(other, visitor, "How long does shipping take?").json()
        assert first["handoff"] is False and "3 to 5 business days" in first["reply"]["text"]  # the bot answered
        assert patch(admin, {"botEnabled": False}).status_code == 200
        switched = time.monotonic()

        def handed_off() -> dict[str, Any]:
            turn = say(other, visitor, "And what about returns?").json()
            return turn if turn["handoff"] else {}

        turn = eventually(handed_off, timeout=10, what="the other worker handing off")
        elapsed = time.monotonic() - switched
        assert elapsed < 5, f"the other worker called the bot for {elapsed:.1f} s after the switch"
        assert turn["status"] == "human_requested" and turn["reply"]["text"] == texts.GUARD_TEXT[texts.BOT_OFF]
        late = new_visitor(other)  # from now on no conversation on that worker reaches the LLM
        assert say(other, late, "How long does shipping take?").json()["handoff"] is True
        assert session_header(module_azurite, late.session_id)["aiCalls"] == 0
        settled(module_azurite, visitor.session_id)
        guards = events(admin, sessionId=visitor.session_id, event="guard:bot-off")
        assert len(guards) == 1 and guards[0]["actor"] == "visitor"

        assert patch(admin, {"botEnabled": True}).status_code == 200
        switched = time.monotonic()

        def answered() -> dict[str, Any]:
            turn = say(other, new_visitor(other), "What is your return policy?").json()
            return turn if not turn["handoff"] else {}

        eventually(answered, timeout=10, what="the other worker answering again")
        assert time.monotonic() - switched < 5


def test_runtime_call_caps_apply_at_once_on_the_worker_that_set_them(
    admin: httpx.Client, module_azurite: Azurite
) -> None:
    assert patch(admin, {"costCaps": {"aiCallsPerSessionPerDay": 1}}).status_code == 200
    visitor = new_visitor(admin)
    assert say(admin, visitor, "How long does shipping take?").json()["handoff"] is False
    capped = say(admin, visitor, "And returns?").json()
    assert capped["handoff"] is True and capped["reply"]["text"] == texts.GUARD_TEXT[texts.SESSION_CAP]
    assert patch(admin, {"costCaps": {"aiCallsPerSessionPerDay": None, "aiCallsPerDay": 0}}).status_code == 200
    other = new_visitor(admin)
    refused = say(admin, other, "Hello?").json()
    assert refused["handoff"] is True and refused["reply"]["text"] == texts.GUARD_TEXT[texts.DEPLOYMENT_CAP]
    settled(module_azurite, visitor.session_id, other.session_id)
    assert [e["event"] for e in events(admin, sessionId=visitor.session_id, event="guard:*")] == ["guard:session-cap"]
    assert [e["event"] for e in events(admin, sessionId=other.session_id, event="guard:*")] == ["guard:deployment-cap"]


# --- USD caps, with an LLM that costs money -----------------------------------------------------------

CENT = ok("Standard shipping takes 3 to 5 business days.", prompt_tokens=1000, completion_tokens=0)
PRICES = (
    '{"gpt-4o-mini": {"prompt": 0.01, "completion": 0}, "gpt-4o-mini-2024-07-18": {"prompt": 0.01, "completion": 0}}'
)


@pytest.fixture()
def paid(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> Iterator[tuple[Host, FakeOpenAI]]:
    """A deployment of its own whose bot costs exactly one cent per call (a fake OpenAI and a price table)."""
    fake = FakeOpenAI().start()
    fake.script(*[CENT] * 100)
    env = {"LLM_PROVIDER": "openai", "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test",
           "LLM_PRICES": PRICES, "LLM_MAX_RETRIES": "0"}  # fmt: skip
    host = start_host(host_env(fresh_azurite, **env))
    try:
        yield host, fake
    finally:
        host.stop()
        fake.stop()


def cost_of(module_azurite: Azurite, session_id: str) -> int:
    return int(session_header(module_azurite, session_id)["costMicroUsd"])


def test_usd_caps_per_session_day_and_month(paid: tuple[Host, FakeOpenAI], fresh_azurite: Azurite) -> None:
    host, fake = paid
    with host.client(headers=ADMIN) as api:
        # Per session per day: 1.5 cents allows two calls of one cent, then hands off.
        assert patch(api, {"costCaps": {"perSessionPerDayUsd": 0.015}}).status_code == 200
        visitor = new_visitor(api)
        assert say(api, visitor, "shipping?").json()["handoff"] is False
        assert cost_of(fresh_azurite, visitor.session_id) == 10_000
        assert say(api, visitor, "shipping again?").json()["handoff"] is False
        capped = say(api, visitor, "and once more?").json()
        assert capped["handoff"] is True and capped["reply"]["text"] == texts.GUARD_TEXT[texts.SESSION_CAP]
        # The handoff's summary is written by the outbox; the cap that forced the handoff holds it to
        # the extractive one, which costs no call.
        settled(fresh_azurite, visitor.session_id)
        assert len(fake.requests) == 2

        # Per day: the deployment spent 2 cents; a cap of 2.5 cents lets one more call through, then
        # every new conversation is handed off.
        assert patch(api, {"costCaps": {"perSessionPerDayUsd": None, "perDayUsd": 0.025}}).status_code == 200

        def refused(reason: str) -> bool:
            visitor = new_visitor(api)
            turn = say(api, visitor, "hello?").json()
            # A refusal hands off; its summary is written while the cap still holds (extractive, free),
            # not after the test lifts the cap.
            settled(fresh_azurite, visitor.session_id)
            return bool(turn["handoff"]) and turn["reply"]["text"] == texts.GUARD_TEXT[reason]

        assert not refused(texts.DEPLOYMENT_CAP)  # 2 cents spent: one more call fits
        assert refused(texts.DEPLOYMENT_CAP)  # 3 cents: this worker counted its own spending at once
        spent = len(fake.requests)
        assert spent == 3

        # Per month: lifting the day cap lets the bot answer at once; a month cap below what was spent stops it.
        assert patch(api, {"costCaps": {"perDayUsd": None}}).status_code == 200
        assert say(api, new_visitor(api), "shipping?").json()["handoff"] is False
        assert patch(api, {"costCaps": {"perMonthUsd": 0.02}}).status_code == 200
        assert refused(texts.MONTHLY_CAP)
        assert len(fake.requests) == spent + 1

        assert events(api, sessionId=visitor.session_id, event="guard:session-cap")
        eventually(lambda: events(api, event="guard:deployment-cap") and events(api, event="guard:monthly-cap"),
                   what="the refusals in the audit log")  # fmt: skip
