"""The local Functions host, over real HTTP: templates, methods, settings, timers, queues, problems."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import (
    BinaryBase64EncodePolicy,
    QueueClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from devhost.azurite import Azurite
from devhost.processes import free_port
from devhost.queues import QueueOptions
from tests.conftest import Host
from tests.support import tables

T = TypeVar("T")


@pytest.fixture(scope="module")
def sample(start_host: Callable[..., Host], tmp_path_factory: pytest.TempPathFactory) -> Host:
    """The sample app with a timer firing every second, and queues on a Storage nobody answers for."""
    tick_file = tmp_path_factory.mktemp("tick") / "ticks.jsonl"
    dead = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    return start_host(
        {
            "TICK_SCHEDULE": "*/1 * * * * *",
            "TICK_FILE": str(tick_file),
            "FROM_ENV": "env-value",
            "AzureWebJobsStorage": f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            f"QueueEndpoint={dead};TableEndpoint={dead};BlobEndpoint={dead};",
            "WORK_QUEUE": "sample-work",
            "AUDIT_QUEUE": "sample-audit",
        },
        app="tests.fakes.sample_app:app",
    )


@pytest.fixture()
def http(sample: Host) -> httpx.Client:
    """A client for the sample app."""
    return sample.client()


@pytest.mark.parametrize(
    ("path", "function", "route"),
    [
        ("/items/42", "item_by_id", {"id": "42"}),
        ("/items/new", "item_new", {}),
        ("/ITEMS/New", "item_new", {}),
        ("/items/books", "item_by_name", {"name": "books"}),
        ("/pages", "pages", {}),
        ("/pages/3", "pages", {"page": "3"}),
        ("/files/a/b/c.txt", "files", {"rest": "a/b/c.txt"}),
        ("/files", "files", {}),
        ("/bare_name", "bare_name", {}),
        ("/items/caf%C3%A9s?x=1", None, None),
    ],
)
def test_route_templates_pick_the_right_function(http: httpx.Client, path: str, function: str, route: dict) -> None:
    response = http.get(path)
    if function is None:  # 'cafés' fails the alpha constraint, and no other template matches
        assert response.status_code == 404
        return
    assert response.status_code == 200, response.text
    assert response.json()["function"] == function
    assert response.json()["route"] == route


def test_failed_constraints_are_no_match(http: httpx.Client) -> None:
    assert http.get("/items/ab").status_code == 404  # alpha but shorter than minlength(3)
    assert http.get("/items/99999999999").status_code == 404  # beyond int
    assert http.get("/pages/1/2").status_code == 404


def test_wrong_method_is_405_with_allow(http: httpx.Client) -> None:
    response = http.post("/items/42", headers={"x-correlation-id": "corr-405"})
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "DELETE"}
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["correlationId"] == "corr-405"
    assert http.delete("/items/42").json()["method"] == "DELETE"


def test_query_and_route_prefix(http: httpx.Client, sample: Host) -> None:
    assert http.get("/items/7", params={"q": "x y"}).json()["query"] == {"q": "x y"}
    # Without the routePrefix nothing matches.
    assert httpx.get(sample.base_url.removesuffix("/api") + "/items/7").status_code == 404


def test_app_settings_come_from_the_environment(http: httpx.Client) -> None:
    assert http.get("/settings/FROM_ENV").text == "env-value"
    assert http.get("/settings/AZURE_FUNCTIONS_ENVIRONMENT").text == "Development"


def test_problem_details_for_bad_bodies(http: httpx.Client) -> None:
    cases = [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (json.dumps({"name": "x" * 300}).encode(), "application/json", 413),
        (json.dumps({"name": "", "times": 9}).encode(), "application/json", 422),
        (b"name=x", "application/x-www-form-urlencoded", 415),
    ]
    for body, content_type, status in cases:
        response = http.post(
            "/greet", content=body, headers={"content-type": content_type, "x-correlation-id": f"c{status}"}
        )
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == status
        assert problem["correlationId"] == f"c{status}" == response.headers["x-correlation-id"]
        assert problem["instance"] == "/api/greet"
        assert {"type", "title", "detail"} <= problem.keys()
    fields = {error["field"] for error in http.post("/greet", json={"name": "", "times": 9}).json()["errors"]}
    assert fields == {"name", "times"}


def test_valid_body_and_generated_correlation_id(http: httpx.Client) -> None:
    response = http.post("/greet", json={"name": "ada", "times": 2})
    assert response.status_code == 200
    assert response.json() == {"greeting": "hello ada hello ada"}
    assert len(response.headers["x-correlation-id"]) == 36


def test_unhandled_exception_is_a_500_problem_without_internals(http: httpx.Client, sample: Host) -> None:
    response = http.get("/crash", headers={"x-correlation-id": "corr-500"})
    assert response.status_code == 500
    assert response.json()["correlationId"] == "corr-500"
    assert "AccountKey" not in response.text and "RuntimeError" not in response.text
    deadline = time.monotonic() + 5
    while "Traceback" not in sample.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "RuntimeError" in sample.log()  # the stack is logged for the operator


def test_timer_fires_on_its_schedule(sample: Host) -> None:
    status = httpx.get(sample.base_url.removesuffix("/api") + "/admin/host/status").json()
    assert "tick" in status["functions"]
    ticks = _tick_file(sample)
    deadline = time.monotonic() + 10
    while _count(ticks) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [json.loads(line) for line in ticks.read_text().splitlines()]
    assert len(lines) >= 2, sample.log()
    assert not any(line["past_due"] for line in lines)


def test_timer_runs_on_demand(sample: Host) -> None:
    ticks = _tick_file(sample)
    before = _count(ticks)
    response = httpx.post(sample.base_url.removesuffix("/api") + "/admin/functions/tick", json={"input": ""})
    assert response.status_code == 202
    assert _count(ticks) >= before + 1
    assert httpx.post(sample.base_url.removesuffix("/api") + "/admin/functions/nope", json={}).status_code == 404


def _tick_file(sample: Host) -> Path:
    # The fixture passed TICK_FILE; read it back through the app's settings endpoint.
    return Path(httpx.get(sample.base_url + "/settings/TICK_FILE").text)


def _count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


# Queue triggers, against Azurite's queues. The sample app's `work` (sync) and `audit` (async) record
# every delivery in the `queueruns` table and fail the first N deliveries of a "fail:N" body. Each
# test gets a host of its own on fresh queue names, with the repository's host.json (polling at most
# every 2 s, visibilityTimeout 0, maxDequeueCount 5).


class QueueHost:
    """A sample-app host polling two fresh queues on the test Azurite."""

    def __init__(self, host: Host, azurite: Azurite, work: str, audit: str) -> None:
        self.host, self.azurite, self.work, self.audit = host, azurite, work, audit

    def queue(self, name: str, policy: Any = None) -> QueueClient:
        """A client for queue ``name`` (base64 text messages unless ``policy`` says otherwise)."""
        return QueueClient.from_connection_string(
            self.azurite.connection_string,
            name,
            message_encode_policy=policy or TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )

    def runs(self, queue: str) -> list[dict[str, Any]]:
        """The deliveries the functions recorded for ``queue``, in dequeue order."""
        try:
            rows = list(
                tables(self.azurite)
                .get_table_client("queueruns")
                .query_entities("PartitionKey eq @q", parameters={"q": queue})
            )
        except ResourceNotFoundError:  # nothing recorded yet
            return []
        return sorted((dict(row) for row in rows), key=lambda row: row["dequeue_count"])

    def stored(self, queue: str) -> int:
        """Messages in ``queue``, visible or leased (0 for a queue that doesn't exist)."""
        try:
            return self.queue(queue).get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:
            return 0

    def status(self) -> list[str]:
        """The functions the host lists."""
        return httpx.get(self.host.base_url.removesuffix("/api") + "/admin/host/status").json()["functions"]


@pytest.fixture()
def queue_host(azurite: Azurite, start_host: Callable[..., Host]) -> Iterator[Callable[..., QueueHost]]:
    """Start a sample-app host on fresh queue names (extra settings allowed); stopped after the test."""
    started: list[Host] = []

    def start(**env: str) -> QueueHost:
        suffix = uuid.uuid4().hex[:12]
        work, audit = f"work-{suffix}", f"audit-{suffix}"
        settings = {
            "AzureWebJobsStorage": azurite.connection_string,
            "WORK_QUEUE": work,
            "AUDIT_QUEUE": audit,
            "TICK_SCHEDULE": "0 0 0 1 1 *",
            "TICK_FILE": "/dev/null",
            **env,
        }
        host = start_host(settings, app="tests.fakes.sample_app:app")
        started.append(host)
        return QueueHost(host, azurite, work, audit)

    yield start
    for host in started:
        host.stop()


def _wait_for(condition: Callable[[], T], what: str, timeout: float = 15, host: Host | None = None) -> T:
    """Poll ``condition`` until it is truthy; fail with ``what`` (and the host's log) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f"\n{host.log()}" if host else ""))
        time.sleep(0.1)
    return result


def test_queue_messages_are_base64_decoded_and_deleted_once_done(queue_host: Callable[..., QueueHost]) -> None:
    qh = queue_host()
    assert {"work", "audit"} <= set(qh.status())
    # The queue doesn't exist yet: the host says so once and keeps polling.
    _wait_for(lambda: f"queue {qh.work} does not exist" in qh.host.log(), "the missing queue to be logged")
    text_queue = qh.queue(qh.work)
    text_queue.create_queue()
    sent_at = time.monotonic()
    text = text_queue.send_message("héllo wörld ✓")
    binary = qh.queue(qh.work, BinaryBase64EncodePolicy()).send_message(b"\x00\xffraw bytes")

    runs = _wait_for(lambda: len(qh.runs(qh.work)) == 2 and qh.runs(qh.work), "two deliveries", host=qh.host)
    # Found within the back-off ceiling (maxPollingInterval 2 s), give or take a poll.
    assert time.monotonic() - sent_at < 5
    by_id = {run["message_id"]: run for run in runs}
    assert bytes.fromhex(by_id[text.id]["body_hex"]) == "héllo wörld ✓".encode()
    assert bytes.fromhex(by_id[binary.id]["body_hex"]) == b"\x00\xffraw bytes"
    for run in runs:
        assert run["dequeue_count"] == 1
        assert run["pop_receipt"] and run["inserted"]
    _wait_for(lambda: qh.stored(qh.work) == 0, "the processed messages to be deleted", host=qh.host)
    assert qh.stored(f"{qh.work}-poison") == 0
    assert qh.host.log().count(f"queue {qh.work} does not exist") == 1


def test_failed_message_is_retried_and_succeeds_on_the_third_delivery(queue_host: Callable[..., QueueHost]) -> None:
    qh = queue_host()
    queue = qh.queue(qh.audit)
    queue.create_queue()
    queue.send_message("fail:2")
    runs = _wait_for(
        lambda: [r for r in qh.runs(qh.audit) if r["dequeue_count"] == 3] and qh.runs(qh.audit),
        "a third delivery",
        host=qh.host,
    )
    assert [run["dequeue_count"] for run in runs] == [1, 2, 3]
    assert {bytes.fromhex(run["body_hex"]) for run in runs} == {b"fail:2"}
    _wait_for(lambda: qh.stored(qh.audit) == 0, "the message to be deleted after its success", host=qh.host)
    assert qh.stored(f"{qh.audit}-poison") == 0
    assert qh.host.log().count("RuntimeError: failing delivery") == 2  # each failure is logged with its stack


def test_message_failing_every_time_goes_to_the_poison_queue(queue_host: Callable[..., QueueHost]) -> None:
    qh = queue_host()
    queue = qh.queue(qh.work)
    queue.create_queue()
    sent = queue.send_message("fail:always")
    # A message that isn't base64 can never be run: it is poisoned at once, without a run.
    QueueClient.from_connection_string(qh.azurite.connection_string, qh.work).send_message("not base64!")

    poison = qh.queue(f"{qh.work}-poison")
    _wait_for(lambda: qh.stored(poison.queue_name) == 2, "two poison messages", host=qh.host)
    _wait_for(lambda: qh.stored(qh.work) == 0, "the main queue to be empty", host=qh.host)
    runs = qh.runs(qh.work)
    assert [run["dequeue_count"] for run in runs] == [1, 2, 3, 4, 5]  # exactly maxDequeueCount attempts
    assert {run["message_id"] for run in runs} == {sent.id}
    raw = QueueClient.from_connection_string(qh.azurite.connection_string, poison.queue_name)
    bodies = sorted(message.content for message in raw.peek_messages(max_messages=32))
    assert bodies == sorted([TextBase64EncodePolicy().encode("fail:always"), "not base64!"])  # stored bodies kept


def test_queue_function_runs_on_demand_with_the_input_as_its_message(queue_host: Callable[..., QueueHost]) -> None:
    qh = queue_host()
    admin = qh.host.base_url.removesuffix("/api") + "/admin/functions"
    response = httpx.post(f"{admin}/work", json={"input": "by hand"}, timeout=30)
    assert response.status_code == 202, response.text
    runs = qh.runs(qh.work)
    assert [(bytes.fromhex(run["body_hex"]), run["dequeue_count"]) for run in runs] == [(b"by hand", 1)]
    assert httpx.post(f"{admin}/AUDIT", json={"input": "fail:always"}, timeout=30).status_code == 500
    assert qh.stored(qh.work) == 0  # a manual run goes nowhere near the queue


def test_disabled_queue_function_is_not_polled(queue_host: Callable[..., QueueHost], azurite: Azurite) -> None:
    # Both messages wait before the host starts: every poller's first poll would find its own.
    suffix = uuid.uuid4().hex[:12]
    work, audit = f"work-{suffix}", f"audit-{suffix}"
    for name in (work, audit):
        queue = QueueClient.from_connection_string(
            azurite.connection_string, name, message_encode_policy=TextBase64EncodePolicy()
        )
        queue.create_queue()
        queue.send_message("hello")
    qh = queue_host(WORK_QUEUE=work, AUDIT_QUEUE=audit, **{"AzureWebJobs.work.Disabled": "true"})
    assert "work" not in qh.status() and "audit" in qh.status()
    _wait_for(lambda: qh.runs(audit), "the enabled function's delivery", host=qh.host)
    _wait_for(lambda: qh.stored(audit) == 0, "the enabled function's message to be deleted", host=qh.host)
    assert qh.runs(work) == []
    waiting = qh.queue(work).peek_messages()
    assert [(m.content, m.dequeue_count) for m in waiting] == [("hello", 0)]  # never even leased
    assert httpx.post(qh.host.base_url.removesuffix("/api") + "/admin/functions/work", json={}).status_code == 404


def test_unreachable_storage_leaves_the_host_serving(sample: Host, http: httpx.Client) -> None:
    _wait_for(lambda: "cannot reach queue sample-work" in sample.log(), "the outage to be logged", host=sample)
    assert http.get("/items/1").status_code == 200
    assert sample.log().count("cannot reach queue sample-work") == 1  # once, not at every poll since start
    assert {"work", "audit"} <= set(
        httpx.get(sample.base_url.removesuffix("/api") + "/admin/host/status").json()["functions"]
    )


def test_queue_options_come_from_host_json(tmp_path: Path) -> None:
    assert QueueOptions.from_host_json(tmp_path / "missing.json") == QueueOptions(
        max_polling_interval=60, batch_size=16, visibility_timeout=0, max_dequeue_count=5, message_encoding="base64"
    )
    repo = QueueOptions.from_host_json(Path(__file__).resolve().parents[2] / "host.json")
    assert repo == QueueOptions(max_polling_interval=2, batch_size=16, visibility_timeout=0, max_dequeue_count=5)
    path = tmp_path / "host.json"
    queues = {"maxPollingInterval": 1500, "visibilityTimeout": "00:01:30.5", "batchSize": 4, "messageEncoding": "None"}
    path.write_text(json.dumps({"extensions": {"queues": queues}}))
    options = QueueOptions.from_host_json(path)
    assert (options.max_polling_interval, options.visibility_timeout, options.threshold) == (1.5, 90.5, 2)
    assert options.message_encoding == "none"
    path.write_text(json.dumps({"extensions": {"queues": {"messageEncoding": "utf8"}}}))
    with pytest.raises(ValueError, match="messageEncoding"):
        QueueOptions.from_host_json(path)
