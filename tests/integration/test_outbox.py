"""The durable core over real HTTP, Azurite and the devhost queue trigger: idempotency under
concurrency, projections that fail and recover, a Storage outage mid-load, a lost notice."""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from azure.storage.queue import QueueClient

from devhost.azurite import Azurite, start_azurite
from tests.conftest import Host
from tests.integration.test_agents import agent_token
from tests.support import (
    eventually,
    host_env,
    new_visitor,
    outbox_rows,
    run_timer,
    say,
    session_header,
    settled,
    stored_messages,
    tables,
)


def _post_many(
    base_url: str, count: int, path: str, body: dict[str, object], headers: dict[str, str]
) -> list[httpx.Response]:
    """``count`` identical requests at once, spread over the given hosts' base URLs."""

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post(path, json=body, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(send, range(count)))


def test_twenty_identical_chat_requests_store_one_turn(
    app: Host, azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    other = start_host(host_env(azurite))  # a second worker: the transaction, not the process, must decide
    with app.client() as api:
        visitor = new_visitor(api)
    headers = {**visitor.auth, "Idempotency-Key": str(uuid.uuid4())}
    body = {"message": "How long does shipping take?"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        halves = list(pool.map(lambda url: _post_many(url, 10, "/chat", body, headers), [app.base_url, other.base_url]))
    responses = halves[0] + halves[1]
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses if r.status_code != 200]
    assert len({r.json()["reply"]["id"] for r in responses}) == 1  # everyone got the one stored answer
    stored = stored_messages(azurite, visitor.session_id)
    assert [m["sender"] for m in stored] == ["visitor", "bot"]
    with app.client() as api:
        reused = api.post("/chat", json={"message": "Something else"}, headers=headers)
    assert reused.status_code == 422 and reused.json()["type"].endswith("/idempotency-key-reused")
    assert len(stored_messages(azurite, visitor.session_id)) == 2


def test_twenty_identical_agent_messages_store_one(
    app: Host, azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    other = start_host(host_env(azurite))
    with app.client() as api:
        agent = agent_token(api, "Idem Agent")
        visitor = new_visitor(api)
        assert say(api, visitor, "talk to a human please").json()["status"] == "human_requested"
        assert api.post(f"/agent/sessions/{visitor.session_id}/claim", headers=agent).status_code == 200
    before = len(stored_messages(azurite, visitor.session_id))
    with other.client() as api:
        same_agent = agent_token(api, "Idem Agent")  # each host signs its own dev tokens; same person
    key = {"Idempotency-Key": str(uuid.uuid4())}
    headers = {**agent, **key}
    path, body = f"/agent/sessions/{visitor.session_id}/message", {"content": "Happy to help with that."}
    targets = [(app.base_url, headers), (other.base_url, {**same_agent, **key})]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        halves = list(pool.map(lambda target: _post_many(target[0], 10, path, body, target[1]), targets))
    responses = halves[0] + halves[1]
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses if r.status_code != 200]
    assert len({r.json()["message"]["id"] for r in responses}) == 1
    agent_rows = [m for m in stored_messages(azurite, visitor.session_id)[before:] if m["sender"] == "agent"]
    assert [m["text"] for m in agent_rows] == ["Happy to help with that."]
    with app.client() as api:
        reused = api.post(path, json={"content": "Another reply"}, headers=headers)
    assert reused.status_code == 422 and reused.json()["type"].endswith("/idempotency-key-reused")


def _search_rows(azurite: Azurite, session_id: str) -> list[dict[str, object]]:
    index = tables(azurite).get_table_client("searchindex")
    return list(index.query_entities("sessionId eq @sid", parameters={"sid": session_id}))


def _failures(host: Host, session_id: str) -> int:
    return len(re.findall(rf"outbox search v\d+ of session {session_id} failed", host.log()))


def _outbox_host(start_host: Callable[..., Host], azurite: Azurite, **settings: str) -> Host:
    # host.json's queue options, overridden the way the Functions host allows.
    defaults = {
        "OUTBOX_REPAIR_AFTER_SECONDS": "0",
        "AzureFunctionsJobHost__extensions__queues__visibilityTimeout": "00:00:02",
    }
    host = start_host(host_env(azurite, **{**defaults, **settings}))
    assert httpx.get(host.base_url + "/health/ready", timeout=30).status_code == 200  # bootstrapped
    return host


def test_a_projection_that_fails_three_times_is_retried_and_lands(
    fresh_azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    host = _outbox_host(start_host, fresh_azurite)
    service = tables(fresh_azurite)
    with host.client() as api:
        visitor = new_visitor(api)
        settled(fresh_azurite, visitor.session_id)
        while datetime.now(UTC).second >= 35:  # clear of the repair timer (second 45), which would redeliver
            time.sleep(0.5)
        service.delete_table("searchindex")  # the search projection of the next turn fails
        assert say(api, visitor, "What is your return policy?").status_code == 200
    eventually(lambda: _failures(host, visitor.session_id) >= 3, timeout=30, what="three failed deliveries")
    service.create_table("searchindex")
    settled(fresh_azurite, visitor.session_id, timeout=30)
    assert {row["text"] for row in _search_rows(fresh_azurite, visitor.session_id)} >= {"What is your return policy?"}
    assert _failures(host, visitor.session_id) < 5  # it landed before the poison queue
    poison = QueueClient.from_connection_string(fresh_azurite.connection_string, "outbox-poison")
    assert not _queue_exists(poison) or not list(poison.peek_messages(32))  # nothing was parked as poison


def _queue_exists(queue: QueueClient) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        queue.get_queue_properties()
    except ResourceNotFoundError:
        return False
    return True


def test_a_projection_that_always_fails_is_poisoned_then_repaired(
    fresh_azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    host = _outbox_host(
        start_host, fresh_azurite, AzureFunctionsJobHost__extensions__queues__visibilityTimeout="00:00:00"
    )
    service = tables(fresh_azurite)
    with host.client() as api:
        visitor = new_visitor(api)
        settled(fresh_azurite, visitor.session_id)
        # The repair timer fires at second 45 and would deliver the notice again: stay clear of it.
        while datetime.now(UTC).second >= 35:
            time.sleep(0.5)
        service.delete_table("searchindex")  # the search projection of the next turn always fails
        assert say(api, visitor, "What is your return policy?").status_code == 200
    poison = QueueClient.from_connection_string(fresh_azurite.connection_string, "outbox-poison")
    eventually(lambda: _queue_exists(poison) and list(poison.peek_messages(32)), timeout=30, what="a poisoned notice")
    assert _failures(host, visitor.session_id) == 5  # host.json maxDequeueCount
    left = outbox_rows(fresh_azurite, visitor.session_id)
    assert [row["kind"] for row in left] == ["search"]  # the rest landed; this row waits for the repair
    service.create_table("searchindex")
    run_timer(host, "outbox_repair")
    settled(fresh_azurite, visitor.session_id)
    assert {row["text"] for row in _search_rows(fresh_azurite, visitor.session_id)} >= {"What is your return policy?"}


def test_a_notice_lost_with_its_host_is_repaired_by_the_timer(
    fresh_azurite: Azurite, start_host: Callable[..., Host]
) -> None:
    doomed = _outbox_host(start_host, fresh_azurite, **{"AzureWebJobs.outbox.Disabled": "true"})
    queue = QueueClient.from_connection_string(fresh_azurite.connection_string, "outbox")
    queue.delete_queue()  # the commit lands, its notice can't be enqueued: the window a crash hits
    with doomed.client() as api:
        visitor = new_visitor(api)
        answered = say(api, visitor, "talk to a human please")
        assert answered.status_code == 200 and answered.json()["status"] == "human_requested"
    assert {row["kind"] for row in outbox_rows(fresh_azurite, visitor.session_id)} >= {"orderings", "push"}
    doomed.stop()  # the host dies with the notice never sent
    queue.create_queue()
    survivor = _outbox_host(start_host, fresh_azurite)
    run_timer(survivor, "outbox_repair")
    settled(fresh_azurite, visitor.session_id)
    with survivor.client() as api:
        agent = agent_token(api, "Repair Agent")
        queued = api.get("/agent/sessions", params={"status": "human_requested"}, headers=agent).json()
    assert visitor.session_id in [s["sessionId"] for s in queued["sessions"]]


def test_a_storage_outage_mid_load_loses_no_accepted_message(tmp_path: Path, start_host: Callable[..., Host]) -> None:
    started = [start_azurite(location=tmp_path / "azurite")]  # every Azurite this test starts is stopped
    try:
        _chat_through_an_outage(tmp_path, start_host, started)
    finally:
        for storage in started:
            storage.stop()


def _chat_through_an_outage(tmp_path: Path, start_host: Callable[..., Host], started: list[Azurite]) -> None:
    storage = started[0]
    ports = (storage.blob_port, storage.queue_port, storage.table_port)
    host = _outbox_host(start_host, storage, STORAGE_TIMEOUT_SECONDS="2")
    with host.client() as api:
        visitors = [new_visitor(api) for _ in range(6)]
    accepted: dict[str, list[str]] = {v.session_id: [] for v in visitors}
    stop = threading.Event()

    def chat(index: int) -> None:
        # As the widget does: each message keeps its Idempotency-Key until it gets an answer, so a
        # commit whose response was lost in the outage is answered, not stored twice.
        visitor = visitors[index]
        deadline = time.monotonic() + 90
        with host.client(timeout=10) as client:
            turn = 0
            while not stop.is_set():
                turn += 1
                text = "talk to a human please" if (index % 2 and turn == 3) else f"visitor {index} turn {turn}"
                headers = {**visitor.auth, "Idempotency-Key": str(uuid.uuid4())}
                while time.monotonic() < deadline:
                    try:
                        response = client.post("/chat", json={"message": text}, headers=headers)
                    except httpx.HTTPError:
                        continue
                    if response.status_code in (200, 202):
                        accepted[visitor.session_id].append(text)
                        break
                    assert response.status_code == 503, response.text  # refused whole, never half-written
                    time.sleep(0.2)

    with concurrent.futures.ThreadPoolExecutor(len(visitors)) as pool:
        running = [pool.submit(chat, i) for i in range(len(visitors))]
        time.sleep(3)
        storage.stop()  # Storage is down for ten seconds in the middle of the load
        time.sleep(10)
        storage = start_azurite(location=tmp_path / "azurite", ports=ports)
        started.append(storage)
        time.sleep(3)
        stop.set()
        for future in running:
            future.result()
    assert all(accepted.values())
    run_timer(host, "outbox_repair")
    settled(storage, *accepted, timeout=60)
    with host.client() as api:
        agent = agent_token(api, "Outage Agent")
        for session_id, texts in accepted.items():
            stored = [m["text"] for m in stored_messages(storage, session_id) if m["sender"] == "visitor"]
            assert stored == texts  # every accepted message, once, in order
            status = session_header(storage, session_id)["status"]
            listed = api.get("/agent/sessions", params={"status": status, "limit": 200}, headers=agent).json()
            assert session_id in [s["sessionId"] for s in listed["sessions"]], (session_id, status)
