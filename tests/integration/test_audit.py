"""The audit log over real HTTP on Azurite: what is recorded (with actor, time and correlation id),
each filter of ``/api/audit``, its cursor, the stats, a session's timeline and the retention timer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite, start_azurite
from devhost.processes import free_port
from shared.clock import iso, utcnow
from tests.conftest import Host
from tests.support import ADMIN_KEY, eventually, host_env, in_storage, new_visitor, run_timer, say, settled, tables


@dataclass
class Activity:
    """What the module's fixture did, in order, and what it needs to check it."""

    admin: httpx.Client
    host: Host
    storage: Azurite
    handed: str = ""  # asked for a person, claimed, closed
    guarded: str = ""  # handed off by the kill switch, then claimed by the same agent
    failed: str = ""  # the bot failed to answer
    agent_oid: str = ""
    between: datetime = field(default_factory=utcnow)  # after the first conversation, before the rest
    key_version: int = 0


def agent_token(api: httpx.Client, name: str) -> dict[str, str]:
    response = api.post("/dev/token", json={"name": name, "email": f"{name.lower().replace(' ', '.')}@contoso.example"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def cid(value: str) -> dict[str, str]:
    return {"x-correlation-id": value}


@pytest.fixture(scope="module")
def activity(start_host: Callable[..., Host]) -> Iterator[Activity]:
    """A deployment of its own where a conversation is handed to a person, claimed and closed; the kill switch
    is turned on and off; the bot fails once (another worker whose LLM is unreachable); the key is rotated."""
    storage = start_azurite()
    host = start_host(host_env(storage, AUDIT_RETENTION_DAYS="30"))
    broken = start_host(host_env(storage, LLM_PROVIDER="openai", OPENAI_API_KEY="sk-test", LLM_MAX_RETRIES="0",
                                 OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1"))  # fmt: skip
    admin = host.client(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    done = Activity(admin, host, storage)
    try:
        with host.client() as api:
            agent = agent_token(api, "Audit Agent")
            done.agent_oid = api.get("/agent/me", headers=agent).json()["oid"]
            visitor = new_visitor(api)
            done.handed = visitor.session_id
            assert say(api, visitor, "I want to talk to a human", **cid("audit-handoff")).json()["handoff"] is True
            claim = api.post(f"/agent/sessions/{done.handed}/claim", headers={**agent, **cid("audit-claim")})
            assert claim.status_code == 200, claim.text
            assert api.post(f"/agent/sessions/{done.handed}/close", headers=agent).status_code == 200
            settled(storage, done.handed)
            done.between = utcnow()

            etag = admin.get("/config").headers["etag"]
            off = admin.patch("/config", json={"botEnabled": False}, headers={"If-Match": etag, **cid("audit-off")})
            assert off.status_code == 200
            guarded = new_visitor(api)
            done.guarded = guarded.session_id
            assert say(api, guarded, "hello?", **cid("audit-guard")).json()["handoff"] is True
            assert admin.patch("/config", json={"botEnabled": True}, headers={"If-Match": "*"}).status_code == 200
            claimed = api.post(f"/agent/sessions/{done.guarded}/claim", headers=agent)
            assert claimed.status_code == 200, claimed.text
        with broken.client() as api:
            visitor = new_visitor(api)
            done.failed = visitor.session_id
            assert say(api, visitor, "How long does shipping take?").status_code == 200
        settled(storage, done.guarded, done.failed)
        rotated = admin.post("/ops/rotate-key", headers=cid("audit-rotate"))
        assert rotated.status_code == 200
        done.key_version = rotated.json()["keyVersion"]
        admin.headers["Authorization"] = f"Bearer {rotated.json()['adminKey']}"
        yield done
    finally:
        admin.close()
        host.stop()
        broken.stop()
        storage.stop()


def events(activity: Activity, **params: Any) -> list[dict[str, Any]]:
    response = activity.admin.get("/audit", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def names(listed: list[dict[str, Any]]) -> list[str]:
    return [event["event"] for event in listed]


# --- what is recorded ---------------------------------------------------------------------------------


def test_the_session_filter_lists_one_conversation_newest_first(activity: Activity) -> None:
    listed = events(activity, sessionId=activity.handed)
    assert names(listed) == ["status:closed", "status:claimed", "status:human_requested", "status:open"]
    assert {e["sessionId"] for e in listed} == {activity.handed}
    closed, claimed, handed, opened = listed
    assert claimed["actor"] == closed["actor"] == f"agent:{activity.agent_oid}"
    assert handed["actor"] == opened["actor"] == "visitor"
    assert handed["correlationId"] == "audit-handoff" and claimed["correlationId"] == "audit-claim"
    assert handed["details"] == {"previous": "open"} and closed["details"] == {"previous": "claimed"}
    assert [e["at"] for e in listed] == sorted((e["at"] for e in listed), reverse=True)


def test_guard_refusals_bot_failures_and_the_kill_switch_are_recorded(activity: Activity) -> None:
    guard = events(activity, event="guard:bot-off")
    assert [(e["sessionId"], e["actor"], e["correlationId"]) for e in guard] == [
        (activity.guarded, "visitor", "audit-guard")
    ]
    assert names(events(activity, event="kill-switch:*")) == ["kill-switch:released", "kill-switch:engaged"]
    engaged = events(activity, event="kill-switch:engaged")[0]
    assert engaged["actor"] == "admin" and engaged["correlationId"] == "audit-off" and engaged["sessionId"] is None
    failed = events(activity, event="bot:failed")
    assert [e["sessionId"] for e in failed] == [activity.failed] and failed[0]["details"]["provider"] == "openai"


def test_key_rotation_and_seats_are_recorded_once(activity: Activity) -> None:
    (rotation,) = events(activity, event="key:rotated")
    assert rotation["actor"] == "admin" and rotation["correlationId"] == "audit-rotate"
    assert rotation["details"] == {"keyVersion": activity.key_version, "via": "key"}
    # The agent claimed two conversations this month: one seat, recorded with the first claim.
    (seat,) = events(activity, event="seat:taken")
    assert seat["actor"] == f"agent:{activity.agent_oid}" and seat["correlationId"] == "audit-claim"
    assert seat["details"]["agentOid"] == activity.agent_oid


def test_the_event_filter_takes_a_name_or_a_category(activity: Activity) -> None:
    statuses = events(activity, event="status:*")
    assert statuses and all(e["event"].startswith("status:") for e in statuses)
    assert len(statuses) == len([e for e in events(activity) if e["event"].startswith("status:")])
    assert names(events(activity, event="status:closed")) == ["status:closed"]
    assert events(activity, event="approval:sent") == []  # well formed, nothing of that kind yet


def test_the_actor_filter(activity: Activity) -> None:
    by_agent = events(activity, actor=f"agent:{activity.agent_oid}")
    assert sorted(names(by_agent)) == ["seat:taken", "status:claimed", "status:claimed", "status:closed"]
    by_admin = events(activity, actor="admin")
    assert sorted(set(names(by_admin))) == ["config:changed", "key:rotated", "kill-switch:engaged",
                                            "kill-switch:released"]  # fmt: skip
    assert events(activity, actor="nobody") == []


def test_from_and_to_cut_the_list_at_a_moment(activity: Activity) -> None:
    moment = iso(activity.between)
    before = events(activity, to=moment)
    after = events(activity, **{"from": moment})
    assert {e["sessionId"] for e in before} == {activity.handed, None} and "seat:taken" in names(before)
    assert activity.handed not in {e["sessionId"] for e in after} and "guard:bot-off" in names(after)
    assert len(before) + len(after) == len(events(activity))
    a_day_ago = (activity.between - timedelta(days=1)).date().isoformat()
    assert events(activity, **{"from": a_day_ago, "to": a_day_ago + "T00:00:01Z"}) == []


def test_the_cursor_pages_through_every_event_once(activity: Activity) -> None:
    everything = events(activity)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = activity.admin.get("/audit", params=params).json()
        assert len(page["events"]) <= 3
        seen += page["events"]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert [e["id"] for e in seen] == [e["id"] for e in everything]
    assert len({e["id"] for e in seen}) == len(seen) >= 14
    one_session = activity.admin.get("/audit", params={"sessionId": activity.handed, "limit": 3}).json()
    rest = activity.admin.get(
        "/audit", params={"sessionId": activity.handed, "limit": 3, "cursor": one_session["nextCursor"]}
    ).json()
    assert names(one_session["events"] + rest["events"]) == names(events(activity, sessionId=activity.handed))
    # A cursor belongs to its listing.
    mixed = activity.admin.get("/audit", params={"cursor": one_session["nextCursor"]})
    assert mixed.status_code == 422 and mixed.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"event": "everything"}, "event"),
        ({"event": "status:<script>"}, "event"),
        ({"from": "last week"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "2026-11-20", "to": "2026-11-19"}, "from"),
        ({"sessionId": "../etc"}, "sessionId"),
        ({"actor": "a" * 300}, "actor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "%%%"}, "cursor"),
    ],
)
def test_a_bad_filter_is_a_422_naming_it(activity: Activity, params: dict[str, str], name: str) -> None:
    response = activity.admin.get("/audit", params=params)
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == name


# --- stats --------------------------------------------------------------------------------------------


def test_stats_count_events_refusals_and_errors(activity: Activity) -> None:
    listed = events(activity)
    expected: dict[str, int] = {}
    for event in listed:
        expected[event["event"]] = expected.get(event["event"], 0) + 1
    for window in ("24h", "7d"):
        response = activity.admin.get("/audit/stats", params={"window": window})
        assert response.status_code == 200, response.text
        stats = response.json()
        assert stats["window"] == window and stats["byEvent"] == dict(sorted(expected.items()))
        assert stats["total"] == len(listed)
        assert stats["refusals"] == {"total": 1, "byEvent": {"guard:bot-off": 1}}
        assert stats["errors"] == {"total": 1, "byEvent": {"bot:failed": 1}}
    hours = (datetime.fromisoformat(stats["to"]) - datetime.fromisoformat(stats["from"])).total_seconds() / 3600
    assert 167 <= hours < 168
    wrong = activity.admin.get("/audit/stats", params={"window": "30d"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "window"


# --- timeline -----------------------------------------------------------------------------------------


def test_the_timeline_puts_messages_and_events_in_one_order(activity: Activity) -> None:
    response = activity.admin.get(f"/sessions/{activity.handed}/timeline")
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"]
    assert body["session"]["status"] == "closed" and body["nextCursor"] is None
    kinds = [(i["type"], i.get("event") or i.get("sender")) for i in items]
    assert kinds == [
        ("event", "status:open"),
        ("message", "visitor"),
        ("message", "bot"),
        ("event", "status:human_requested"),
        ("message", "system"),
        ("event", "status:claimed"),
        ("message", "system"),
        ("event", "status:closed"),
    ]
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    assert items[1]["text"] == "I want to talk to a human"
    paged, cursor = [], None
    while True:
        page = activity.admin.get(
            f"/sessions/{activity.handed}/timeline", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
        ).json()
        paged += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert paged == items


def test_the_timeline_of_an_unknown_session_is_404(activity: Activity) -> None:
    missing = activity.admin.get("/sessions/00000000-0000-0000-0000-000000000000/timeline")
    assert missing.status_code == 404 and missing.json()["type"].endswith("session-not-found")
    assert activity.admin.get("/sessions/a%2Fb/timeline").status_code == 404


def test_the_audit_routes_are_admin_only(activity: Activity) -> None:
    with activity.host.client() as api:
        for path in ("/audit", "/audit/stats", f"/sessions/{activity.handed}/timeline"):
            assert api.get(path).status_code == 401
            assert api.get(path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 401  # rotated


# --- retention ----------------------------------------------------------------------------------------


def test_events_older_than_the_retention_are_deleted_by_the_timer(activity: Activity) -> None:
    from shared.storage.audit import AuditEntry, AuditRepository, day_partition

    old_at = utcnow() - timedelta(days=45)
    old = AuditEntry("config:changed", "admin", old_at, details={"changes": []}, entry_id="old-one")

    async def write() -> None:
        await AuditRepository().record(old)
        await AuditRepository().record_session("old-session", 1, [AuditEntry("status:open", "visitor", old_at)])

    in_storage(activity.storage, write)
    audit = tables(activity.storage).get_table_client("audit")

    def stored(partition: str) -> list[Any]:
        return list(audit.query_entities("PartitionKey eq @pk", parameters={"pk": partition}))

    assert len(stored(day_partition(old_at))) == 4  # two day rows and their two counters
    assert len(stored("old-session")) == 1
    # Outside the 30 days kept, an explicit window doesn't reach it either.
    assert events(activity, **{"from": (old_at - timedelta(hours=1)).isoformat()}) == events(activity)
    run_timer(activity.host, "audit_retention")
    eventually(lambda: not stored(day_partition(old_at)) and not stored("old-session"), what="the old rows deleted")
    assert events(activity, sessionId=activity.handed)  # the recent ones stay
    assert datetime.now(UTC) - old_at > timedelta(days=30)


# --- seats against the quota --------------------------------------------------------------------------


def test_going_over_the_seat_quota_is_recorded(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> None:
    host = start_host(host_env(fresh_azurite, PLAN_ID="start"))  # two seats
    with host.client() as api, host.client(headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        assert admin.get("/plan").json()["seatQuota"] == 2
        for name in ("Seat One", "Seat Two", "Seat Three"):
            visitor = new_visitor(api)
            assert say(api, visitor, "I want to talk to a human").json()["handoff"] is True
            claimed = api.post(f"/agent/sessions/{visitor.session_id}/claim", headers=agent_token(api, name))
            assert claimed.status_code == 200, claimed.text
            # The seat row follows from the outbox: the next claim counts it once it is there (agents
            # claim seconds apart; under a loaded suite the projection can trail a back-to-back claim).
            settled(fresh_azurite, visitor.session_id)
        assert claimed.json()["quotaStatus"]["exceeded"] is True
        over = admin.get("/audit", params={"event": "seat:over-quota"}).json()["events"]
        assert [(e["actor"], e["details"]) for e in over] == [("system", {"seatsUsed": 3, "seatQuota": 2})]
        eventually(lambda: len(admin.get("/audit", params={"event": "seat:taken"}).json()["events"]) == 3,
                   what="three seats taken")  # fmt: skip
