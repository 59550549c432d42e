"""The local Functions host, over real HTTP: templates, methods, settings, timers, problems."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import Host


@pytest.fixture(scope="module")
def sample(start_host: Callable[..., Host], tmp_path_factory: pytest.TempPathFactory) -> Host:
    """The sample app with a timer firing every second."""
    tick_file = tmp_path_factory.mktemp("tick") / "ticks.jsonl"
    return start_host(
        {"TICK_SCHEDULE": "*/1 * * * * *", "TICK_FILE": str(tick_file), "FROM_ENV": "env-value"},
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
