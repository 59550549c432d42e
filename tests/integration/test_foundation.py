"""Health, plan and bootstrap of the product, over real HTTP on a real Azurite."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

import httpx

from devhost.azurite import Azurite
from devhost.processes import free_port
from shared.identity import secrets as security
from shared.storage import tables as storage_tables
from tests.conftest import Host
from tests.fakes.http_server import FakeServer, Recorded, json_reply
from tests.support import ADMIN_KEY, dead_storage, deployment_record, host_env, tables


def test_health_reports_the_deployment(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> None:
    host = start_host(host_env(fresh_azurite))
    with host.client() as api:
        response = api.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["ok"] is True
        assert body["bootstrap"] == {"attempted": True, "result": "succeeded"}
        assert body["deploymentId"] == deployment_record(fresh_azurite)["deploymentId"]
        assert body["seat"] == {"activeSessionCount": 0, "lastReportedQuantity": 0}
        assert {"promptTokens", "completionTokens", "totalTokens", "costUsd"} <= body["tokens"].keys()
        assert {"version", "startedAt", "marketplaceSubscriptionId"} <= body.keys()
        assert response.headers["cache-control"] == "no-store"
        assert api.get("/health/live").status_code == 200
        assert api.get("/health/ready").json() == {"status": "ready", "storage": "ok"}
        # A session an agent holds (as the claim path indexes it) counts as active.
        index = tables(fresh_azurite).get_table_client(storage_tables.SESSIONS_INDEX)
        index.create_entity({"PartitionKey": "status-claimed", "RowKey": "s-1", "sessionId": "s-1"})
        assert api.get("/health").json()["seat"]["activeSessionCount"] == 1


def test_health_is_503_when_storage_is_unreachable(start_host: Callable[..., Host]) -> None:
    host = start_host({"AzureWebJobsStorage": dead_storage()})
    with host.client() as client:
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["ok"] is False
        assert response.json()["bootstrap"] == {"attempted": True, "result": "failed"}
        assert client.get("/health/ready").status_code == 503
        assert client.get("/health/live").status_code == 200
        plan = client.get("/plan")
        assert plan.status_code == 503
        assert plan.headers["content-type"].startswith("application/problem+json")


def test_admin_key_setting_is_the_key(app: Host, api: httpx.Client, azurite: Azurite) -> None:
    api.get("/health")
    record = deployment_record(azurite)
    assert security.key_matches(ADMIN_KEY, record["adminKeySalt"], record["adminKeyHash"])
    assert ADMIN_KEY not in str(record)  # only the hash is stored
    assert ADMIN_KEY not in app.log()


def test_bootstrap_racing_workers_agree_on_one_key(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> None:
    env = {"AzureWebJobsStorage": fresh_azurite.connection_string}
    hosts = [start_host(env), start_host(env)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: httpx.get(hosts[i % 2].base_url + "/health", timeout=30), range(8)))
    assert all(reply.status_code == 200 for reply in replies)
    assert len({reply.json()["deploymentId"] for reply in replies}) == 1
    record = deployment_record(fresh_azurite)
    announced = [h for h in hosts if (h.log_path.parent / "admin-key").exists()]
    assert len(announced) == 1, "exactly one worker generated and announced the key"
    key = (announced[0].log_path.parent / "admin-key").read_text().strip()
    assert security.key_matches(key, record["adminKeySalt"], record["adminKeyHash"])
    assert key in announced[0].log()  # printed once in the development log


def _catalogue(quota: int) -> FakeServer:
    growth = {"planId": "growth", "displayName": "Growth (ISV)", "seatQuota": quota, "gracePeriodDays": 3}
    scale = {"planId": "scale", "displayName": "Scale (ISV)", "seatQuota": 50, "gracePeriodDays": 3}

    def handle(request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.path == "/api/plans/growth":
            return json_reply(200, growth)
        if request.path == "/api/plans":
            return json_reply(200, {"plans": [growth, scale]})
        return json_reply(404, {"error": "no such plan"})

    return FakeServer(handle).start()


def test_plan_reads_the_isv_catalogue_and_keeps_the_last_good_value(
    azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    catalogue = _catalogue(quota=11)
    try:
        host = start_host(
            {
                "AzureWebJobsStorage": azurite.connection_string,
                "PLAN_ID": "growth",
                "PLANS_URL": catalogue.url,
                "PLANS_CACHE_SECONDS": "0",
            }
        )
        with host.client() as client:
            plan = client.get("/plan").json()
            assert plan["planDisplayName"] == "Growth (ISV)"
            assert (plan["seatQuota"], plan["gracePeriodDays"]) == (11, 3)
            assert {"seatsUsed", "exceeded", "daysOverQuota", "blocked", "upgradeUrl"} <= plan.keys()
            catalogue.down = True
            calls = len(catalogue.requests)
            again = client.get("/plan").json()
            assert len(catalogue.requests) > calls  # it did try (cache disabled)
            assert (again["seatQuota"], again["planDisplayName"]) == (11, "Growth (ISV)")
    finally:
        catalogue.stop()


def test_plan_is_cached_for_five_minutes(azurite: Azurite, start_host: Callable[..., Host]) -> None:
    catalogue = _catalogue(quota=5)
    try:
        host = start_host(
            {"AzureWebJobsStorage": azurite.connection_string, "PLAN_ID": "growth", "PLANS_URL": catalogue.url}
        )
        with host.client() as client:
            for _ in range(3):
                assert client.get("/plan").json()["seatQuota"] == 5
        assert len(catalogue.requests) == 1
    finally:
        catalogue.stop()


def test_plan_falls_back_to_the_builtin_catalogue(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    for extra in ({}, {"PLANS_URL": unreachable}):
        host = start_host({"AzureWebJobsStorage": fresh_azurite.connection_string, "PLAN_ID": "professional", **extra})
        with host.client() as client:
            plan = client.get("/plan").json()
        assert (plan["planId"], plan["planDisplayName"], plan["seatQuota"]) == ("professional", "Professional", 20)
        assert plan["seatsUsed"] == 0 and plan["blocked"] is False


def test_plans_lists_the_catalogue_plan_reads(azurite: Azurite, start_host: Callable[..., Host]) -> None:
    catalogue = _catalogue(quota=9)
    try:
        host = start_host(
            {"AzureWebJobsStorage": azurite.connection_string, "PLAN_ID": "growth", "PLANS_URL": catalogue.url}
        )
        with host.client() as client:
            listed = {p["planId"]: p for p in client.get("/plans").json()["plans"]}
            assert set(listed) == {"growth", "scale"} and listed["growth"]["seatQuota"] == 9
            assert client.get("/plan").json()["seatQuota"] == listed["growth"]["seatQuota"]  # one catalogue
            assert client.get("/plans/scale").json()["displayName"] == "Scale (ISV)"
            assert client.get("/plans/start").status_code == 404  # not in this ISV's catalogue
            catalogue.down = True
            assert {p["planId"] for p in client.get("/plans").json()["plans"]} == {"growth", "scale"}  # cached
    finally:
        catalogue.stop()


def test_plans_catalogue_is_served(api: httpx.Client) -> None:
    listing = api.get("/plans")
    assert listing.headers["cache-control"] == "public, max-age=300"
    assert [p["planId"] for p in listing.json()["plans"]] == ["start", "growth", "professional"]
    one = api.get("/plans/Growth")
    assert one.status_code == 200 and one.json()["displayName"] == "Growth"
    missing = api.get("/plans/platinum")
    assert missing.status_code == 404 and missing.json()["type"].endswith("plan-not-found")


def test_unknown_paths_and_methods_are_problems(api: httpx.Client) -> None:
    response = api.get("/no/such/thing", headers={"x-correlation-id": "corr-404"})
    assert response.status_code == 404
    assert response.json()["correlationId"] == "corr-404" == response.headers["x-correlation-id"]
    response = api.delete("/health")
    assert response.status_code == 405 and response.headers["allow"] == "GET"
