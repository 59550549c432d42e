"""Hostile input on every HTTP route the app registers: never a 5xx, every error a problem.

The fuzzing reads the routes from ``function_app.app.get_functions()`` (as devhost indexes them) and
the headers and query parameters the app reads from its own source, so a new route, header or
parameter is fuzzed without anyone adding it here. Every route and method gets deeply nested JSON,
invalid UTF-8, a 1 MB body and wrong content types; non-ASCII and control characters in every
header; out-of-range and wrong-type query values; hostile route parameters. Each goes with the
credentials the route accepts (found by probing) and, for bodies, without. Every response must be
below 500 and carry ``x-correlation-id``; every error must be ``application/problem+json`` with its
status and that correlation id.

The targeted tests before it pin the issues the fuzzing found first: deeply nested JSON, credentials
checked before the body, unusable Idempotency-Keys, preflights without a correlation id or a
problem, and query values of the wrong type.
"""

from __future__ import annotations

import base64
import concurrent.futures
import functools
import http.client
import http.cookiejar
import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devhost.azurite import start_azurite
from devhost.processes import ROOT
from devhost.signalr import Emulator
from shared.web.http import encode_cursor
from tests.conftest import Host
from tests.support import ADMIN_KEY, WEBSITE, host_env, new_visitor

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def nested_bodies(limit: int = 64 * 1024) -> dict[str, bytes]:
    """Bodies nesting as deep as fit in ``limit`` bytes (at most 3000, as in the issue; unclosed to the limit).

    Unclosed brackets exceed Python's recursion limit (1000) in any of the app's body limits.
    """
    deep = min(3000, (limit - 40) // 2)
    return {
        "arrays": b"[" * deep + b"]" * deep,
        "objects": b'{"a":' * (deep // 3) + b"1" + b"}" * (deep // 3),
        "in a field": b'{"message":' + b"[" * (deep - 20) + b"]" * (deep - 20) + b',"content":"hi"}',
        "unclosed": b"[" * min(limit, 60_000),
    }


NESTED_BODIES = nested_bodies()


# --- what the app serves and reads, from the app itself ---------------------------------------------


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP trigger as the host serves it."""

    function: str
    template: str
    methods: tuple[str, ...]

    @property
    def params(self) -> list[tuple[str, bool]]:
        """(name, catch-all) of every route parameter."""
        return [(m[2], bool(m[1])) for m in re.finditer(r"\{(\*{0,2})(\w+)[^}]*\}", self.template)]


@functools.cache
def http_routes() -> tuple[HttpRoute, ...]:
    """Every HTTP route of ``function_app.app``, read the way devhost's ``index_functions`` reads them.

    Cached: ``get_functions()`` refuses to run twice (it takes its own names for duplicates).
    """
    import function_app

    routes = []
    for function in function_app.app.get_functions():
        trigger: Any = function.get_trigger()
        if trigger is None or trigger.get_binding_name() != "httpTrigger":
            continue
        methods = tuple(sorted({str(getattr(m, "value", m)).upper() for m in (trigger.methods or ALL_METHODS)}))
        name = str(function.get_function_name())
        routes.append(HttpRoute(name, trigger.route or name, methods))
    return tuple(routes)


_SOURCES = [*ROOT.joinpath("blueprints").glob("*.py"), *ROOT.joinpath("shared").rglob("*.py")]


def _source_names(*patterns: str) -> list[str]:
    return sorted({m for path in _SOURCES for p in patterns for m in re.findall(p, path.read_text(encoding="utf-8"))})


# Message framing: the HTTP client and the host own these (the app reads them only on responses it
# fetches), and a fuzzed value would be refused by the test's own client before reaching the app.
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection"}


def headers_read() -> list[str]:
    """Every header the app reads: ``headers.get("name")`` and ``..._HEADER = "name"`` constants."""
    names = _source_names(r"headers\.get\(\s*\"([A-Za-z0-9-]+)\"", r"[A-Z]\w*_HEADER\s*=\s*\"([A-Za-z0-9-]+)\"")
    return sorted({name.lower() for name in names} - FRAMING_HEADERS)


def query_params_read() -> list[str]:
    """Every query parameter the app reads: ``params.get("name")`` and ``query_int(req, "name", ...)``."""
    return _source_names(r"(?<!route_)params\.get\(\s*\"(\w+)\"", r"query_int\(\s*req,\s*\"(\w+)\"")


# --- hosts and callers ------------------------------------------------------------------------------


def _own_host(start_host: Callable[..., Host], signalr: Emulator) -> Iterator[Host]:
    """A host on an Azurite of its own; SignalR configured, so negotiate answers 200, not its by-design 503."""
    storage = start_azurite()
    host = start_host(host_env(storage, SIGNALR_CONNECTION_STRING=signalr.connection_string))
    try:
        yield host
    finally:
        host.stop()
        storage.stop()


@pytest.fixture(scope="module")
def fuzz_host(start_host: Callable[..., Host], signalr: Emulator) -> Iterator[Host]:
    """The targeted tests' host (they rotate nothing and send no wrong admin key, but don't share)."""
    yield from _own_host(start_host, signalr)


@pytest.fixture()
def fuzzing_host(start_host: Callable[..., Host], signalr: Emulator) -> Iterator[Host]:
    """The fuzzing's own host: it rotates the admin key and locks its client out of admin sign-in."""
    yield from _own_host(start_host, signalr)


def cookieless(client: httpx.Client) -> httpx.Client:
    """``client``, never keeping a cookie: each request carries exactly the credentials it names."""
    client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


@pytest.fixture(scope="module")
def fapi(fuzz_host: Host) -> Iterator[httpx.Client]:
    with cookieless(fuzz_host.client()) as client:
        yield client


def admin_cookie(api: httpx.Client, key: str) -> dict[str, str]:
    """The dashboard's credentials for ``key``: its session cookie and CSRF token."""
    signin = api.post("/ops/signin", json={"key": key})
    assert signin.status_code == 200, signin.text
    return {"Cookie": signin.headers["set-cookie"].split(";")[0], "X-CSRF-Token": signin.json()["csrfToken"]}


def agent_auth(api: httpx.Client, name: str = "Fuzz Agent") -> dict[str, str]:
    """An agent's Authorization header from the development sign-in."""
    email = f"{name.lower().replace(' ', '.')}@contoso.example"
    response = api.post("/dev/token", json={"name": name, "email": email})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def callers(api: httpx.Client) -> dict[str, Any]:
    """Headers for each kind of caller, and the sessions the route parameters point at."""
    visitor, waiting = new_visitor(api), new_visitor(api)
    assert api.post("/chat/handoff", json={}, headers=waiting.auth).status_code == 200
    return {
        "none": {},
        "admin": dict(ADMIN),
        "cookie": admin_cookie(api, ADMIN_KEY),
        "agent": agent_auth(api),
        "visitor": visitor.auth,
        "session_id": visitor.session_id,
        "waiting_id": waiting.session_id,
    }


@pytest.fixture(scope="module")
def credentials(fapi: httpx.Client) -> dict[str, Any]:
    return callers(fapi)


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """``response`` is the problem ``status`` (naming ``field``) with the correlation id in header and body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    problem = response.json()
    assert problem["status"] == status
    assert problem["correlationId"] and problem["correlationId"] == response.headers["x-correlation-id"]
    if field is not None:
        assert field in [error["field"] for error in problem.get("errors", [])], problem
    return problem


# --- 1. deeply nested JSON, and credentials before the body -------------------------------------------


@pytest.mark.parametrize("nesting", list(NESTED_BODIES))
@pytest.mark.parametrize(
    ("method", "path", "who", "limit"),
    [
        ("POST", "/widget/session", "none", 64 * 1024),
        ("POST", "/chat", "visitor", 64 * 1024),
        ("POST", "/chat/handoff", "visitor", 64 * 1024),
        ("DELETE", "/chat/handoff", "visitor", 64 * 1024),
        ("POST", "/chat/typing", "visitor", 1024),
        ("POST", "/ops/signin", "none", 4096),
        ("POST", "/agent/sessions/{id}/message", "agent", 64 * 1024),
        ("POST", "/agent/sessions/{id}/typing", "agent", 1024),
        ("POST", "/dev/token", "none", 4096),
    ],
)
def test_deeply_nested_json_is_a_400_naming_the_body(
    fapi: httpx.Client, credentials: dict[str, Any], method: str, path: str, who: str, limit: int, nesting: str
) -> None:
    url = path.format(id=credentials["session_id"])
    headers = {**credentials[who], "content-type": "application/json"}
    response = fapi.request(method, url, content=nested_bodies(limit)[nesting], headers=headers)
    problem = assert_problem(response, 400, "body")
    assert problem["type"].endswith("malformed-json") and "body" in problem["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/chat"),
        ("POST", "/chat/handoff"),
        ("DELETE", "/chat/handoff"),
        ("POST", "/chat/typing"),
        ("POST", "/agent/sessions/{id}/message"),
        ("POST", "/agent/sessions/{id}/typing"),
    ],
)
@pytest.mark.parametrize("body", [NESTED_BODIES["arrays"], b'{"message": "", "isTyping": "x"}', b"{nope"])
def test_credentials_are_checked_before_the_body(
    fapi: httpx.Client, credentials: dict[str, Any], method: str, path: str, body: bytes
) -> None:
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged"}
    for auth in (forged, {}):
        headers = {**auth, "content-type": "application/json"}
        response = fapi.request(method, path.format(id=credentials["session_id"]), content=body, headers=headers)
        assert_problem(response, 401)


# --- 2. Idempotency-Key with C1 or non-ASCII bytes ------------------------------------------------------


@pytest.mark.parametrize("key", [b"k\x80", b"\x9f", b"k\x85z", "k😀".encode(), "clé".encode("latin-1"), b"\xff"])
def test_an_idempotency_key_with_c1_or_non_ascii_bytes_is_a_400_naming_the_header(
    fapi: httpx.Client, credentials: dict[str, Any], key: bytes
) -> None:
    session_id = credentials["session_id"]
    sends = [
        ("/chat", {"message": "hello", "sessionId": session_id}, credentials["visitor"]),
        (f"/agent/sessions/{session_id}/message", {"content": "hello"}, credentials["agent"]),
        ("/ops/rotate-key", None, ADMIN),  # refused before anything rotates
    ]
    for path, body, auth in sends:
        headers = [(name.encode(), value.encode()) for name, value in auth.items()] + [(b"Idempotency-Key", key)]
        response = fapi.post(path, json=body, headers=headers)
        problem = assert_problem(response, 400, "Idempotency-Key")
        assert problem["type"].endswith("invalid-idempotency-key")
    assert fapi.get("/ops/session", headers=ADMIN).status_code == 200  # the key was not rotated


# --- 3. correlation ids and problems on preflights and the catch-all ------------------------------------


def _routes_answering_preflights() -> list[str]:
    """Every route that lists OPTIONS itself for CORS (the catch-all takes every method, and is a 404).

    Channel webhooks are left out: their OPTIONS is a provider's handshake (CloudEvents abuse
    protection), not a browser's preflight, and an unconfigured channel is a 404 by design.
    """
    return sorted(
        "/" + re.sub(r"\{\w+\}", "s1", route.template)
        for route in http_routes()
        if "OPTIONS" in route.methods and "{*" not in route.template and not route.template.startswith("channels/")
    )


@pytest.mark.parametrize("path", _routes_answering_preflights())
def test_preflights_carry_the_correlation_id_and_refusals_are_problems(fapi: httpx.Client, path: str) -> None:
    asks = {"Access-Control-Request-Method": "POST", "x-correlation-id": "corr-pre"}
    allowed = fapi.options(path, headers={**asks, "Origin": WEBSITE})
    assert allowed.status_code == 204 and allowed.headers["x-correlation-id"] == "corr-pre"
    assert allowed.headers["access-control-allow-origin"] == WEBSITE
    for refused in (
        fapi.options(path, headers=asks),
        fapi.options(path, headers={**asks, "Origin": "https://evil.example"}),
    ):
        problem = assert_problem(refused, 403)
        assert problem["correlationId"] == "corr-pre" and problem["type"].endswith("origin-not-allowed")
        assert "access-control-allow-origin" not in refused.headers
    generated = fapi.options(path)
    assert len(generated.headers["x-correlation-id"]) == 36


@pytest.mark.parametrize("method", ALL_METHODS)
def test_the_catch_all_is_a_problem_with_the_correlation_id(fapi: httpx.Client, method: str) -> None:
    response = fapi.request(method, "/no/such/route", headers={"x-correlation-id": "corr-404"})
    assert response.status_code == 404 and response.headers["x-correlation-id"] == "corr-404"
    assert response.headers["content-type"].startswith("application/problem+json")
    if method != "HEAD":
        assert_problem(response, 404)


@pytest.mark.parametrize("given", [b"caf\xe9", b"caf\xc3\xa9", "k😀".encode(), b"a\tb", b"x" * 200])
def test_an_unusable_incoming_correlation_id_is_replaced(fapi: httpx.Client, given: bytes) -> None:
    response = fapi.get("/health/live", headers=[(b"x-correlation-id", given)])
    assert response.status_code == 200
    assert len(response.headers["x-correlation-id"]) == 36


# --- 4. query parameters -----------------------------------------------------------------------------

WRONG_INTEGERS = ["abc", "1.5", "1e3", "٣", "５", " 5", "5 ", "+5", "5_0", "0x10", "9" * 30, "9" * 5000, "\x00"]


def _query_cases() -> list[tuple[str, str, str, str]]:
    """(who, path, parameter, value) for every integer parameter, every cursor and the other checked ones."""
    integers = [
        ("admin", "/sessions/search?q=hello", "limit", ["0", "101", "-1"]),
        ("admin", "/sessions", "limit", ["0", "201"]),
        ("admin", "/sessions/{id}/transcript", "after", ["-1", str(10**9 + 1)]),
        ("admin", "/sessions/{id}/transcript", "limit", ["0", "1001"]),
        ("admin", "/cost", "bucketHours", ["0", "169", "5"]),
        ("agent", "/agent/sessions", "limit", ["0", "201"]),
        ("agent", "/agent/sessions/{id}/messages", "after", ["-1"]),
        ("visitor", "/chat/{id}/messages", "after", ["-1"]),
    ]
    cases = [(who, path, name, value) for who, path, name, bad in integers for value in bad + WRONG_INTEGERS]
    for who, path, ordering in [
        ("admin", "/sessions/search?q=hello", ""),
        ("admin", "/sessions", "cost"),
        ("admin", "/sessions?sortBy=lastActivity", "lastActivity"),
        ("agent", "/agent/sessions", "queue"),
    ]:
        forged = [encode_cursor(key, ordering) for key in ("\x00", "\ud800", "a/b", "k\x85", "x" * 1025, "")]
        nested = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode()
        garbage = ["nope", "%%%", "====", encode_cursor("k", "other-ordering"), "eyJrIjogMX0", nested]
        cases += [(who, path, "cursor", value) for value in forged + garbage]
    cases += [("admin", "/sessions/search", "q", value) for value in ["", "   ", "x" * 2001]]
    cases += [("admin", "/sessions", "sortBy", value) for value in ["price", "COST", "\x00"]]
    cases += [("admin", "/cost", "window", value) for value in ["1h", "24H", "\x00", "٢٤h"]]
    cases += [("agent", "/agent/sessions", "status", value) for value in ["lost", "OPEN", "\x00"]]
    return cases


@pytest.mark.parametrize(("who", "path", "name", "value"), _query_cases())
def test_query_values_out_of_range_or_of_the_wrong_type_are_422_naming_them(
    fapi: httpx.Client, credentials: dict[str, Any], who: str, path: str, name: str, value: str
) -> None:
    url = path.format(id=credentials["session_id"])
    url += ("&" if "?" in url else "?") + f"{name}={quote(value)}"
    response = fapi.get(url, headers=credentials[who])
    problem = assert_problem(response, 422, name)
    assert f"'{name}'" in problem["detail"]


# --- the fuzzing: inputs ------------------------------------------------------------------------------


def _plausible_body(session_id: str) -> bytes:
    """Every field some route reads, valid (extra fields are ignored), so the rest gets further in."""
    fields = {"message": "hello", "content": "hello", "isTyping": True, "sessionId": session_id,
              "name": "Fuzz Agent", "email": "fuzz.agent@contoso.example"}  # fmt: skip
    return json.dumps(fields).encode()


def _body_cases(session_id: str) -> list[tuple[str, bytes, str | None]]:
    """(label, body, content type) of every hostile body."""
    plausible = _plausible_body(session_id)
    return [
        *[(f"nested {name}", body, "application/json") for name, body in NESTED_BODIES.items()],
        ("invalid UTF-8 in a string", b'{"message": "caf\xe9 \xff\xfe", "content": "\xc3\x28", "isTyping": true}',
         "application/json"),
        ("invalid UTF-8", b"\x80\x81\xfe\xff", "application/json"),
        ("UTF-16", plausible.decode().encode("utf-16"), "application/json"),
        ("1 MB of JSON", b'{"message":"' + b"x" * (1 << 20) + b'"}', "application/json"),
        ("1 MB of bytes", bytes(range(256)) * 4096, "application/octet-stream"),
        ("5000 digits", b'{"message": ' + b"9" * 5000 + b', "isTyping": 1e99999}', "application/json"),
        ("NaN", b'{"message": NaN, "content": Infinity, "isTyping": -Infinity, "sessionId": NaN}', "application/json"),
        ("NUL and lone surrogates", b'{"message": "a\\u0000b\\ud800", "content": "\\udfff", "sessionId": "\\u0000",'
         b' "name": "\\u0000", "email": "a@\\ud800", "isTyping": true}', "application/json"),
        ("not an object", b'[1, "two", null]', "application/json"),
        ("empty", b"", "application/json"),
        ("text/plain", plausible, "text/plain"),
        ("form", b"message=hi&content=hi&name=%00%FF&email=a%40b&isTyping=1", "application/x-www-form-urlencoded"),
        ("form, invalid UTF-8", b"name=\xff\xfe&email=\x80@\x81", "application/x-www-form-urlencoded"),
        ("multipart", b'--x\r\nContent-Disposition: form-data; name="message"\r\n\r\nhi\r\n--x--\r\n',
         "multipart/form-data; boundary=x"),
        ("xml", b"<message>hi</message>", "application/xml"),
        ("upper-case JSON type", plausible, "Application/JSON"),
        ("latin-1 charset", '{"message": "café", "content": "café"}'.encode("latin-1"),
         "application/json; charset=latin-1"),
        ("no content type", plausible, None),
    ]  # fmt: skip


CORE_BODIES = {"nested arrays", "invalid UTF-8", "1 MB of JSON", "text/plain"}  # also sent on reads
# Every header gets MIXED (C1, UTF-8, not UTF-8 and a tab, the one control character that reaches the
# app), alone and behind its prefix; on each route and method two headers also get a ROTATING value.
MIXED = b"k\x80\x9f \xc3\xa9\xf0\x9f\x98\x80 \xff\xfe\ta"
ROTATING: list[tuple[str, bytes, bool]] = [
    # (label, value, sent over a raw socket: httpx refuses NUL and vertical tab itself)
    ("C1 0x80", b"k\x80", False),
    ("C1 0x85", b"\x85", False),
    ("UTF-8 non-ASCII", "é ✓ 😀".encode(), False),
    ("controls", b"a\x01b\x1b[0m\x7f", False),
    ("NUL", b"a\x00b", True),
    ("not UTF-8", b"\xff\xfe\xfd", False),
    ("vertical tab", b"a\x0bb", True),
    ("4 KB", b"x" * 4096, False),
]
# ASCII control characters other than tab never reach the app: the HTTP server (uvicorn's llhttp)
# answers 400 itself, as any front end would. Those answers are the server's, not the app's.
FRAMING = {"controls", "NUL", "vertical tab"}
# Prefixes that make the app read further: a scheme, the cookie's name, a media type.
HEADER_PREFIXES = {
    "authorization": b"Bearer ",
    "cookie": b"sd_admin=",
    "content-type": b"application/json; charset=",
    "accept": b"text/event-stream, ",
}
# Wrong credentials count against the client's admin sign-in limit, so they go last.
CREDENTIAL_HEADERS = {"authorization", "cookie"}
CREDENTIAL_PARAMS = {"code"}
QUERY_TEXTS = [
    "-1", "0", "1.5", "99999999999999999999", "abc", "", " 5", "+5", "5_0", "٣", "５", "\x00", "\u202e", "😀", "'",
    "9" * 5000, "a" * 3000, "1e3", "0x10", "NaN",
]  # fmt: skip
HOSTILE_SEGMENTS = [
    "%00", "%FF%FE", "%C3%28", "%F0%9F%98%80", "%E2%80%AE", "%C2%85", "%7F", "%0A", "%0D%0A", "%20",
    "%2E%2E", "..%2F..%2Fhost.json", "%27%22%3Cx%3E", "a%23b%3Fc", "%25", "-1", "x" * 1100, "%E9t%E9",
]  # fmt: skip


def _query_values(name: str) -> list[tuple[str, str]]:
    """(label, percent-encoded value) of the hostile values of one query parameter."""
    values = [(repr(text[:12]), quote(text, safe="")) for text in QUERY_TEXTS]
    values.append(("invalid UTF-8", "%FF%FE%C3%28"))
    if name:
        values.append(("repeated", f"1&{name}=abc"))
    if name == "cursor":
        values += [
            (f"cursor of {key[:8]!r} for {order!r}", quote(encode_cursor(key, order)))
            for key in ("\x00", "'", "x" * 2000, "a/b#c?d", "\ud800")
            for order in ("", "cost", "lastActivity", "queue")
        ]
        values.append(("cursor of nested JSON", base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode()))
    return values


# --- the fuzzing: sending and checking -----------------------------------------------------------------


@dataclass
class Case:
    """One request of the fuzzing; its credentials are looked up when it is sent (they may rotate)."""

    label: str
    method: str
    path: str  # percent-encoded, query included
    who: str  # whose credentials go with it
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    skip: str = ""  # the header this case fuzzes, left out of the credentials
    raw: bool = False  # sent over a socket: httpx refuses these header bytes itself
    framing: bool = False  # bytes the HTTP server itself may refuse before the app sees the request
    route: str = ""  # the route's template
    tag: str = ""  # sent as the correlation id (unless that is the header fuzzed), to find it in the log


@dataclass
class Outcome:
    """What came back."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Fuzzer:
    """Sends the cases and collects every answer that breaks the rules."""

    host: Host
    client: httpx.Client
    creds: dict[str, Any]
    failures: list[tuple[Case, str]] = field(default_factory=list)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def plausible(self, name: str) -> list[str]:
        """Real values of a route parameter (a 404 is fine for the names they aren't)."""
        known = {
            "sessionId": [self.creds["session_id"]],
            "id": [self.creds["waiting_id"]],
            "planId": ["growth"],
            "name": ["signalr.js", "dashboard.js"],
            "path": ["no/such/page"],
        }
        return known.get(name, [self.creds["session_id"]])

    def path_for(self, route: HttpRoute, chosen: dict[str, str] | None = None) -> str:
        path = route.template
        for name, _ in route.params:
            value = (chosen or {}).get(name) or self.plausible(name)[0]
            path = re.sub(r"\{\**" + name + r"[^}]*\}", lambda _m, v=value: v, path)
        return "/api/" + path.lstrip("/")

    def auth(self, who: str, skip: str = "") -> list[tuple[bytes, bytes]]:
        return [(k.lower().encode(), v.encode()) for k, v in self.creds[who].items() if k.lower() != skip]

    def url(self, path: str) -> str:
        return self.host.base_url.removesuffix("/api") + path

    def probe(self, method: str, path: str, who: str) -> httpx.Response:
        """A plausible request (one at a time, while the cases are built); adopts a rotated admin key."""
        body = _plausible_body(self.creds["session_id"]) if method in UNSAFE else b""
        typed = [(b"content-type", b"application/json")] if body else []
        response = self.client.request(method, self.url(path), headers=self.auth(who) + typed, content=body)
        self.adopt_rotation(response.status_code, response.content)
        return response

    def adopt_rotation(self, status: int, body: bytes) -> None:
        """After a successful rotate-key, use the new key (and a dashboard cookie for it) from now on."""
        if status != 200 or b'"adminKey"' not in body:
            return
        answer = json.loads(body)
        if isinstance(answer, dict) and isinstance(answer.get("adminKey"), str):  # not a document naming it
            key = answer["adminKey"]
            self.creds["admin"] = {"Authorization": f"Bearer {key}"}
            self.creds["cookie"] = admin_cookie(self.client, key)

    def send(self, case: Case) -> Outcome:
        headers = self.auth(case.who, case.skip) + case.headers
        if all(name != b"x-correlation-id" for name, _ in headers):
            headers.append((b"x-correlation-id", case.tag.encode()))
        if case.raw:
            return self._send_raw(case, headers)
        response = self.client.request(case.method, self.url(case.path), headers=headers, content=case.body)
        return Outcome(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)

    def _send_raw(self, case: Case, headers: list[tuple[bytes, bytes]]) -> Outcome:
        port = int(self.host.base_url.split(":")[2].split("/")[0])
        lines = [f"{case.method} {case.path} HTTP/1.1".encode(), f"Host: 127.0.0.1:{port}".encode()]
        lines += [name + b": " + value for name, value in headers]
        lines += [f"Content-Length: {len(case.body)}".encode(), b"Connection: close"]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + case.body)
            response = http.client.HTTPResponse(sock, method=case.method)
            response.begin()
            return Outcome(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())

    def check(self, case: Case) -> Outcome | None:
        """Send ``case``; record it if the answer is a 5xx, lacks the correlation id, or is an error but no problem."""
        try:
            outcome = self.send(case)
        except (httpx.HTTPError, OSError, http.client.HTTPException) as exc:
            self.record(case, f"no answer: {exc!r}")
            return None
        with self.lock:
            self.sent += 1
        if case.framing and outcome.status == 400 and "x-correlation-id" not in outcome.headers:
            return outcome  # the HTTP server refused the bytes before any app code ran
        problems = []
        if outcome.status >= 500:
            problems.append(f"status {outcome.status}")
        correlation = outcome.headers.get("x-correlation-id", "")
        if not correlation:
            problems.append("no x-correlation-id")
        if outcome.status >= 400:
            content_type = outcome.headers.get("content-type", "")
            if not content_type.startswith("application/problem+json"):
                problems.append(f"error as {content_type!r}")
            elif case.method != "HEAD":  # HEAD answers carry no body
                try:
                    problem = json.loads(outcome.body)
                    if problem.get("status") != outcome.status or problem.get("correlationId") != correlation:
                        problems.append(f"problem body {problem}")
                except ValueError:
                    problems.append("problem body is not JSON")
        if problems:
            self.record(case, f"{'; '.join(problems)}: {outcome.status} {outcome.body[:200]!r}")
        return outcome

    def record(self, case: Case, detail: str) -> None:
        """Keep an answer that broke the rules."""
        with self.lock:
            self.failures.append((case, detail))

    def run(self, cases: list[Case], workers: int = 16) -> None:
        """Send ``cases`` concurrently, shuffled (the same way each time) so no session or counter is hammered."""
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(self.check, random.Random(7).sample(cases, len(cases))))


# --- the fuzzing: which cases ----------------------------------------------------------------------------


def _who(fuzzer: Fuzzer, route: HttpRoute, method: str) -> str:
    """The credentials a route accepts, found without ever presenting a wrong admin key.

    No credentials first; a 401 in the admin realm means admin; otherwise an agent's token, then a
    visitor's. A route none of them opens is fuzzed without credentials.
    """
    path = fuzzer.path_for(route)
    anonymous = fuzzer.probe(method, path, "none")
    if anonymous.status_code != 401:
        return "none"
    if 'realm="admin"' in anonymous.headers.get("www-authenticate", ""):
        return "admin"
    for kind in ("agent", "visitor"):
        if fuzzer.probe(method, path, kind).status_code != 401:
            return kind
    return "none"


def _params_checked(fuzzer: Fuzzer, route: HttpRoute, method: str, who: str) -> list[str]:
    """The query parameters a route checks: the ones its 422s name while every one is a blank.

    A blank (" ") is refused by every parameter that is checked at all (numbers, enums, cursors,
    the search text); each 422 names one, which is left out of the next try. A required one (the
    search text) that is named again once left out gets a plausible "1" instead.
    """
    remaining = [name for name in query_params_read() if name not in CREDENTIAL_PARAMS]
    found: list[str] = []
    filled: dict[str, str] = {}
    for _ in range(2 * len(remaining) + 1):
        if method == "HEAD":  # no body to name a parameter in
            break
        query = "&".join([f"{name}=%20" for name in remaining] + [f"{k}={v}" for k, v in filled.items()])
        response = fuzzer.probe(method, f"{fuzzer.path_for(route)}?{query}", who)
        if response.status_code != 422:
            break
        try:
            named = {str(error.get("field")) for error in response.json().get("errors", [])}
        except ValueError:
            break
        if hits := [name for name in remaining if name in named]:
            found += hits
            remaining = [name for name in remaining if name not in hits]
        elif required := [name for name in found if name in named and name not in filled]:
            filled.update(dict.fromkeys(required, "1"))
        else:
            break
    return found


def _cases(
    fuzzer: Fuzzer, index: int, route: HttpRoute, method: str, who: str, checked: list[str]
) -> Iterator[tuple[str, Case]]:
    """(lane, case) of one route and method; ``index`` rotates which extra values it gets.

    Lanes: "early" runs concurrently; "serial" one at a time (admin credentials on a write: a key
    rotation voids every request in flight); "last" concurrently after both (wrong credentials).
    """
    path = fuzzer.path_for(route)
    benign = _plausible_body(fuzzer.creds["session_id"]) if method in UNSAFE else b""
    json_type = [(b"content-type", b"application/json")] if benign else []
    lane = "serial" if who == "admin" and method in UNSAFE else "early"
    # Bodies: all of them on writes (with and without credentials), the core ones on reads.
    for label, body, content_type in _body_cases(fuzzer.creds["session_id"]):
        typed = [(b"content-type", content_type.encode())] if content_type else []
        if method in UNSAFE or label in CORE_BODIES:
            yield lane, Case(f"body: {label}", method, path, who, typed, body)
        if method in UNSAFE and who != "none" and label in CORE_BODIES:
            yield "early", Case(f"body: {label}", method, path, "none", typed, body)
    # Headers: every header the app reads.
    names = headers_read()
    extras = {names[(2 * index + k) % len(names)]: ROTATING[(index + k) % len(ROTATING)] for k in range(2)}
    for name in names:
        kind = "cookie" if who == "admin" and name in ("cookie", "x-csrf-token") else who  # CSRF goes with the cookie
        others = [h for h in json_type if h[0].decode() != name]
        target = "last" if name in CREDENTIAL_HEADERS and who != "none" else lane
        values = [("mixed", MIXED, False)]
        if name in HEADER_PREFIXES:
            values.append((f"{HEADER_PREFIXES[name].decode()}mixed", HEADER_PREFIXES[name] + MIXED, False))
        if name in extras:
            values.append(extras[name])
        for label, value, raw in values:
            heads = [*others, (name.encode(), value)]
            yield target, Case(f"{name}: {label}", method, path, kind, heads, benign, name, raw, label in FRAMING)
    # Query parameters: every one at once with two hostile values; every value on the ones it checks.
    params = [name for name in query_params_read() if name not in CREDENTIAL_PARAMS]
    for step in (0, len(QUERY_TEXTS) // 2 + 1):
        label, value = _query_values("")[(index + step) % (len(QUERY_TEXTS) + 1)]
        for names in _fitting(params, value):
            every = "&".join(f"{name}={value}" for name in names)
            yield lane, Case(f"every parameter={label}", method, f"{path}?{every}", who, json_type, benign)
    for name in sorted(CREDENTIAL_PARAMS):
        label, value = _query_values(name)[index % len(QUERY_TEXTS)]
        target = "last" if who != "none" else lane
        yield target, Case(f"?{name}={label}", method, f"{path}?{name}={value}", who, json_type, benign)
    for name in checked:
        for label, value in _query_values(name):
            yield lane, Case(f"?{name}={label}", method, f"{path}?{name}={value}", who, json_type, benign)
    # Route parameters: the plausible values and every hostile one.
    for name, catch_all in route.params:
        values = (
            fuzzer.plausible(name) + HOSTILE_SEGMENTS + (["a/b/c/d", "%2E%2E/%2E%2E/host.json"] if catch_all else [])
        )
        for value in values:
            hostile = fuzzer.path_for(route, {name: value})
            yield lane, Case(f"{{{name}}}={value[:24]}", method, hostile, who, json_type, benign)


def _fitting(names: list[str], value: str, limit: int = 60_000) -> Iterator[list[str]]:
    """``names`` in groups whose query (each ``name=value``) stays under httpx's 65,536-character URL limit."""
    group: list[str] = []
    for name in names:
        if group and sum(len(n) + len(value) + 2 for n in [*group, name]) > limit:
            yield group
            group = []
        group.append(name)
    yield group


def _log_record(log: str, tag: str) -> str:
    """What the host logged for the request with correlation id ``tag`` (its traceback), if anything."""
    start = log.find(f"(correlation {tag})")
    if start < 0:
        return ""
    lines = log[start:].splitlines()
    end = next((i for i, line in enumerate(lines[1:], 1) if re.match(r"\d{4}-\d\d-\d\d |[A-Z]+: ", line)), len(lines))
    return "\n".join(lines[:end])


# Nothing is skipped: the chat route's SSE answer is buffered (not a live stream), so it is fuzzed too.
def test_every_route_survives_hostile_input(fuzzing_host: Host) -> None:
    started = time.monotonic()
    routes = http_routes()
    # The discovery's sanity: these are read today, so a pattern that finds none of them is broken.
    assert {"authorization", "idempotency-key", "origin", "content-type", "x-correlation-id"} <= set(headers_read())
    assert {"limit", "after", "cursor", "q", "code"} <= set(query_params_read())
    with cookieless(fuzzing_host.client()) as client:
        fuzzer = Fuzzer(fuzzing_host, client, callers(client))
        pairs = [(route, method) for route in routes for method in route.methods]
        lanes: dict[str, list[Case]] = {"early": [], "serial": [], "last": []}
        for index, (route, method) in enumerate(pairs):
            who = _who(fuzzer, route, method)
            for lane, case in _cases(fuzzer, index, route, method, who, _params_checked(fuzzer, route, method, who)):
                case.route, case.tag = route.template, f"fuzz-{sum(map(len, lanes.values()))}"
                lanes[lane].append(case)
        fuzzer.run(lanes["early"])
        for case in lanes["serial"]:
            if (outcome := fuzzer.check(case)) is not None:
                fuzzer.adopt_rotation(outcome.status, outcome.body)
        fuzzer.run(lanes["last"])  # wrong admin keys lock this client out of admin for a minute

    elapsed = time.monotonic() - started
    print(f"\nfuzzed {len(pairs)} routes and methods with {fuzzer.sent} requests in {elapsed:.1f} s")
    log = fuzzing_host.log()
    if fuzzer.failures:
        lines = [f"{case.tag} {case.method} {case.path[:120]} as {case.who} [{case.label}] -> {detail}"
                 for case, detail in fuzzer.failures]  # fmt: skip
        report = fuzzing_host.log_path.with_name("fuzz-failures.txt")
        report.write_text("\n".join(lines), encoding="utf-8")
        firsts = {
            (case.method, case.route, case.label.split(":")[0].split("=")[0]): case for case, _ in fuzzer.failures
        }
        logged = [record for case in list(firsts.values())[:5] if (record := _log_record(log, case.tag))]
        pytest.fail(
            f"{len(lines)} of {fuzzer.sent} answers broke the rules (all in {report}; host log {fuzzing_host.log_path})"
            ":\n" + "\n".join(lines[:30]) + "\n\n" + "\n\n".join(logged)
        )
