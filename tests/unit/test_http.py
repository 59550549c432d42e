"""The HTTP helpers without I/O: JSON bodies, query values, cursors, correlation ids, preflights."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from pydantic import BaseModel

from shared.config import get_settings
from shared.errors import Problem
from shared.web import http as web
from shared.web.cors import with_cors
from shared.web.http import (
    MAX_JSON_DEPTH,
    decode_cursor,
    encode_cursor,
    endpoint,
    incoming_correlation_id,
    json_too_deep,
    query_int,
    read_json,
)

WEBSITE = "https://shop.example"


class Message(BaseModel):
    message: str = ""


def request(
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> func.HttpRequest:
    return func.HttpRequest(
        method, "http://localhost/api/chat", headers=headers or {}, params=params or {}, route_params={}, body=body
    )


def refusal(make: Any) -> Problem:
    with pytest.raises(Problem) as caught:
        make()
    return caught.value


# --- nesting -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (b'{"message": "hi"}', False),
        (b"[" * 32 + b"]" * 32, False),
        (b"[" * 33 + b"]" * 33, True),
        (b'{"a": [1, {"b": [2]}], "c": {}}' * 20, False),  # many brackets, shallow
        (b'{"message": "' + b"[" * 5000 + b'"}', False),  # brackets in a string are text
        (b'{"m": "a \\" [[[[ \\\\", "x": [' + b"[" * 31 + b"]" * 32 + b"}", True),  # escapes don't end strings
        (b'{"m": "a \\" [[[[ \\\\", "x": [' + b"[" * 30 + b"]" * 31 + b"}", False),
        (b"[" * 100_000, True),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, True),
    ],
)
def test_json_too_deep_counts_nesting_outside_strings(body: bytes, too_deep: bool) -> None:
    assert json_too_deep(body) is too_deep


@pytest.mark.parametrize(
    "body",
    [
        b'"' + b'\\"' * 32_000 + b'"' + b"[" * 33,  # an escaped quote at every other byte
        b"[" * 33 + b'"' + b'\\"' * 32_000,  # never closed
        b"[]" * 32_000,
    ],
)
def test_json_too_deep_is_linear_on_hostile_bodies(body: bytes) -> None:
    began = time.perf_counter()
    json_too_deep(body)
    assert time.perf_counter() - began < 0.5  # a backtracking pattern over strings took seconds here


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 3000 + b"]" * 3000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b'{"message": ' + b"[" * 33 + b"]" * 33 + b"}",
        b"[" * 60_000,
    ],
)
def test_deeply_nested_json_is_a_400_naming_the_body(body: bytes) -> None:
    problem = refusal(lambda: read_json(request(body), Message, max_bytes=1 << 20))
    assert (problem.status, problem.kind) == (400, "malformed-json")
    assert problem.extensions["errors"][0]["field"] == "body" and "body" in problem.detail


def test_nesting_up_to_the_limit_is_parsed() -> None:
    body = b'{"message": "hi", "x": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert read_json(request(body), Message, max_bytes=4096).message == "hi"


def test_a_recursion_error_while_parsing_or_validating_is_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    def deep(*_: object, **__: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(web.json, "loads", deep)
    assert refusal(lambda: read_json(request(b"{}"), Message, max_bytes=64)).status == 400
    monkeypatch.undo()
    monkeypatch.setattr(Message, "model_validate", deep)
    assert refusal(lambda: read_json(request(b"{}"), Message, max_bytes=64)).status == 400


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"message": "caf\xe9 \xff"}', "application/json", 400),
        (b"\x80\x81", "application/json", 400),
        (b'{"message": ' + b"9" * 5000 + b"}", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"message": "hi"}', "text/plain", 415),
        (b"x" * 65, "application/json", 413),
    ],
)
def test_bodies_that_are_not_a_json_object_are_problems(body: bytes, content_type: str, status: int) -> None:
    limit = 64 if status == 413 else 8192
    problem = refusal(
        lambda: read_json(request(body, headers={"content-type": content_type}), Message, max_bytes=limit)
    )
    assert problem.status == status
    if status == 400:
        assert problem.extensions["errors"][0]["field"] == "body"


def test_media_types_are_case_insensitive() -> None:
    body = json.dumps({"message": "hi"}).encode()
    headers = {"content-type": "Application/JSON; charset=utf-8"}
    assert read_json(request(body, headers=headers), Message, max_bytes=64).message == "hi"


# --- query values and cursors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["abc", "1.5", "1e3", " 5", "5 ", "+5", "5_0", "٣", "５", "0x10", "9" * 5000, "-1", "11"]
)
def test_query_int_refuses_anything_but_ascii_digits_in_range(raw: str) -> None:
    problem = refusal(lambda: query_int(request(params={"limit": raw}), "limit", default=1, low=0, high=10))
    assert problem.status == 422 and problem.extensions["errors"][0]["field"] == "limit"
    assert "'limit'" in problem.detail


@pytest.mark.parametrize(("raw", "value"), [(None, 3), ("", 3), ("0", 0), ("007", 7), ("10", 10), ("-0", 0)])
def test_query_int_reads_integers(raw: str | None, value: int) -> None:
    params = {} if raw is None else {"limit": raw}
    assert query_int(request(params=params), "limit", default=3, low=0, high=10) == value


@pytest.mark.parametrize("key", ["", "\x00", "k\x85", "\ud800", "a/b", "a#b", "a?b", "a\\b", "x" * 1025, "\u2028"])
def test_a_cursor_for_a_key_storage_could_not_hold_is_refused(key: str) -> None:
    problem = refusal(lambda: decode_cursor(encode_cursor(key, "cost"), "cost"))
    assert problem.status == 422 and problem.extensions["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("json_text", [b"[" * 5000, b"[" * 5000 + b"]" * 5000, b'"k"', b"[1]", b"\xff", b"{}"])
def test_a_cursor_that_is_not_one_is_refused(json_text: bytes) -> None:
    cursor = base64.urlsafe_b64encode(json_text).decode().rstrip("=")
    assert refusal(lambda: decode_cursor(cursor)).extensions["errors"][0]["field"] == "cursor"


def test_cursors_round_trip_within_their_ordering() -> None:
    key = "2026-11-30T06:44:29Z|0f8fad5b-d9cb-469f-a165-70867728950e|0000000001"
    assert decode_cursor(encode_cursor(key, "cost"), "cost") == key
    assert refusal(lambda: decode_cursor(encode_cursor(key, "cost"), "queue")).status == 422


# --- correlation ids and preflights ---------------------------------------------------------------------


@pytest.mark.parametrize("given", ["café", "k\x80", "k😀", "a\tb", "x" * 129, ""])
def test_an_unusable_correlation_id_is_replaced(given: str) -> None:
    made = incoming_correlation_id(request(headers={"x-correlation-id": given}))
    assert made != given and len(made) == 36


def test_a_usable_correlation_id_is_echoed() -> None:
    assert incoming_correlation_id(request(headers={"x-correlation-id": " corr-1:ok "})) == "corr-1:ok"


@pytest.fixture()
def website(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ALLOWED_ORIGINS", WEBSITE)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@with_cors
@endpoint
async def widget_route(req: func.HttpRequest) -> func.HttpResponse:
    raise AssertionError("a preflight never reaches the handler")


@pytest.mark.parametrize("origin", [None, "https://evil.example", "null"])
async def test_a_refused_preflight_is_a_403_problem_with_the_correlation_id(website: None, origin: str | None) -> None:
    headers = {"x-correlation-id": "corr-pre", **({"origin": origin} if origin else {})}
    response = await widget_route(request(method="OPTIONS", headers=headers))
    assert response.status_code == 403 and response.mimetype == "application/problem+json"
    assert response.headers["x-correlation-id"] == "corr-pre"
    assert "Access-Control-Allow-Origin" not in response.headers
    body = json.loads(response.get_body())
    assert body["status"] == 403 and body["correlationId"] == "corr-pre" and body["type"].endswith("origin-not-allowed")


async def test_an_allowed_preflight_is_a_204_with_the_correlation_id(website: None) -> None:
    response = await widget_route(request(method="OPTIONS", headers={"origin": WEBSITE}))
    assert response.status_code == 204
    assert len(response.headers["x-correlation-id"]) == 36
    assert response.headers["Access-Control-Allow-Origin"] == WEBSITE
