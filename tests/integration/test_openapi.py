"""The OpenAPI document covers every route, and Schemathesis holds the running app to it.

Schemathesis (from PyPI) reads ``/api/openapi.json`` from a live devhost and fuzzes every operation three
times over, each with the credentials its routes take: the admin key, an agent's Teams token (the dev
sign-in's) and a visitor's token. It must find no 5xx, no response that violates its schema and no status
the document doesn't list. ``POST /api/ops/rotate-key`` is left out of the run: it would change the key the
rest of the run signs in with (its refusals are covered by the fuzz test and the admin tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devhost.azurite import start_azurite
from devhost.signalr import Emulator
from tests.conftest import Host
from tests.integration.test_agents import agent_token
from tests.integration.test_fuzz import http_routes
from tests.support import ADMIN_KEY, WEBSITE, host_env, new_visitor

CATCH_ALL = "{*path}"  # every unknown path's 404: not an operation
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def fuzzed_host(start_host: Callable[..., Host], signalr: Emulator) -> Iterator[Host]:
    """The product on an Azurite of its own (the fuzzing creates and changes whatever it may), with real time."""
    azurite = start_azurite()
    yield start_host(host_env(azurite, SIGNALR_CONNECTION_STRING=signalr.connection_string))
    azurite.stop()


def test_every_registered_route_is_in_the_document(fuzzed_host: Host) -> None:
    with fuzzed_host.client() as api:
        spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    from shared.web.openapi import path_of

    registered = {(path_of(r.template), m.lower()) for r in http_routes() if r.template != CATCH_ALL for m in r.methods}
    documented = {(path, method) for path, methods in spec["paths"].items() for method in methods}
    assert registered - documented == set(), "routes missing from blueprints/openapi.py"
    assert documented - registered == set(), "documented routes the app doesn't serve"
    hook = spec["paths"]["/webhooks"]["post"]
    assert hook["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EndpointIn"}
    assert {"adminKey": []} in hook["security"]
    assert spec["components"]["schemas"]["EndpointIn"]["properties"]["events"]["items"]["enum"]
    assert "application/problem+json" in hook["responses"]["422"]["content"]
    assert spec["paths"]["/agent/me"]["get"]["security"] == [{"agentToken": []}]


def test_the_reference_page_is_text_only(fuzzed_host: Host) -> None:
    with fuzzed_host.client() as api:
        page = api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and "POST /api/webhooks" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def _schemathesis(host: Host, header: str, *selection: str, extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """Start the Schemathesis CLI against ``host``.

    One worker thread per run: Hypothesis parses lambda sources with ``ast.parse``, which CPython 3.11
    does not make thread-safe ("AST constructor recursion depth mismatch"), so the runs are separate
    processes side by side instead of threads in one.
    """
    command = [
        str(Path(sys.executable).with_name("st")), "run", host.base_url + "/openapi.json", "--url", host.base_url,
        "-H", header, *(h for e in extra for h in ("-H", e)),
        "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
        "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,coverage,fuzzing", "--workers", "1",
        "--request-timeout", "30", "--no-color", "--suppress-health-check", "all", "--continue-on-failure",
        *selection,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(run: subprocess.Popen[str], started: float) -> tuple[int, str, float]:
    """Wait for a Schemathesis run; (exit code, output, seconds)."""
    try:
        output, _ = run.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        run.kill()
        output, _ = run.communicate()
    return run.returncode, output, time.monotonic() - started


def test_schemathesis_finds_nothing_with_admin_agent_and_visitor_credentials(fuzzed_host: Host) -> None:
    with fuzzed_host.client() as api:
        agent = agent_token(api, "Fuzz Agent")["Authorization"]
        visitor = new_visitor(api)
        # Something to find: a session waiting for a person, a webhook endpoint (refused: not public).
        api.post("/chat", json={"message": "a person please", "sessionId": visitor.session_id}, headers=visitor.auth)
        assert api.get("/webhooks", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
    started = time.monotonic()
    running = {
        "admin": _schemathesis(fuzzed_host, f"Authorization: Bearer {ADMIN_KEY}",
                               "--exclude-path-regex", r"^/(agent/|chat|widget|negotiate|ops/rotate-key)"),
        "agent": _schemathesis(fuzzed_host, f"Authorization: {agent}", "--include-path-regex", r"^/agent/"),
        "visitor": _schemathesis(fuzzed_host, f"Authorization: Bearer {visitor.token}",
                                 "--include-path-regex", r"^/(chat|widget|negotiate)", extra=(f"Origin: {WEBSITE}",)),
    }  # fmt: skip
    runs = {name: _finish(run, started) for name, run in running.items()}
    for name, (code, output, seconds) in runs.items():
        print(f"schemathesis ({name}): exit {code} in {seconds:.0f} s\n{output[-3000:]}")
    failed = {name: output[-6000:] for name, (code, output, _) in runs.items() if code != 0}
    assert not failed, "\n\n".join(f"--- {name} ---\n{output}" for name, output in failed.items())
    assert httpx.get(fuzzed_host.base_url + "/health", timeout=10).status_code == 200
