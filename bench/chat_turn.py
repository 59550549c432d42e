"""Chat turn cost: server time of one visitor turn (offline bot) against one Azurite round trip.

Both are measured in the same run on the same machine. "Server overhead" is the turn's HTTP
latency minus a no-op request's (the devhost and HTTP cost both share). The Storage calls a turn
makes inside the request are counted in-process, by the repository layer's call counter. Then 50
visitors chat concurrently and the throughput and error count are printed. Not a pass/fail test.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import azurite_point_reads  # noqa: E402
from devhost.azurite import start_azurite  # noqa: E402
from devhost.processes import ROOT, free_port, wait_for_port  # noqa: E402

ORIGIN = "https://bench.example"
KNOWLEDGE = "Q: How long does shipping take?\nA: Three to five business days."
TURNS = 200
VISITORS = 50
TURNS_EACH = 10


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> tuple[float, httpx.Response]:
    """Latency and response of one request."""
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - started, response


async def concurrent_visitors(base: str) -> tuple[int, int, float]:
    """(turns, errors, seconds) for VISITORS chatting at once."""
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=VISITORS)) as client:

        async def visitor(index: int) -> tuple[int, int]:
            session = await client.post("/widget/session", json={}, headers={"Origin": ORIGIN})
            if session.status_code != 201:
                return 0, 1
            body = session.json()
            auth = {"Authorization": f"Bearer {body['token']}"}
            ok = errors = 0
            for turn in range(TURNS_EACH):
                reply = await client.post("/chat", json={"message": f"shipping question {turn}"}, headers=auth)
                ok, errors = (ok + 1, errors) if reply.status_code == 200 else (ok, errors + 1)
            return ok, errors

        started = time.perf_counter()
        results = await asyncio.gather(*(visitor(i) for i in range(VISITORS)))
        elapsed = time.perf_counter() - started
    return sum(r[0] for r in results), sum(r[1] for r in results), elapsed


def wait_for_outbox(connection_string: str, session_id: str, timeout: float = 30) -> None:
    """Wait (untimed) until the queue trigger has applied the session's outbox."""
    from azure.data.tables import TableClient

    with TableClient.from_connection_string(connection_string, "chats") as chats:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = chats.query_entities(
                "PartitionKey eq @pk and RowKey ge 'o' and RowKey lt 'p'", parameters={"pk": session_id}
            )
            if not list(rows):
                return
            time.sleep(0.02)
    raise TimeoutError("the outbox was not applied")


def storage_calls(connection_string: str) -> dict[str, int]:
    """Storage calls made inside the request, per kind of request, with the app loaded in this process."""
    os.environ.update({"AzureWebJobsStorage": connection_string, "ALLOWED_ORIGINS": ORIGIN, "LLM_PROVIDER": "offline",
                       "ADMIN_KEY": "sdk_bench-key-0123456789", "AZURE_FUNCTIONS_ENVIRONMENT": "Development",
                       "KNOWLEDGE_TEXT": KNOWLEDGE})  # fmt: skip
    from devhost.host import create_host
    from shared.storage.calls import start_counting

    asgi, _ = create_host(ROOT)

    async def run() -> dict[str, int]:
        counts: dict[str, int] = {}
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench/api") as client:

            async def count(name: str, method: str, url: str, **kwargs: object) -> httpx.Response:
                counter = start_counting()  # the ASGI app runs in this task's context: it counts here
                response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
                counts[name] = counter.calls
                return response

            await client.get("/health")
            body = (
                await count("open a widget session", "POST", "/widget/session", json={}, headers={"Origin": ORIGIN})
            ).json()
            auth = {"Authorization": f"Bearer {body['token']}"}
            for i in range(3):  # warm: the deployment record and the guard's rollup read are cached
                await client.post("/chat", json={"message": f"warm {i}"}, headers=auth)
            turn = await count("chat turn (bot answers)", "POST", "/chat", json={"message": "shipping?"}, headers=auth)
            assert turn.status_code == 200, turn.text
            await count("ask for a person", "POST", "/chat/handoff", json={}, headers=auth)
            queued = await count("message while waiting (202)", "POST", "/chat", json={"message": "hi"}, headers=auth)
            assert queued.status_code == 202, queued.text
        return counts

    return asyncio.run(run())


def main() -> None:
    """Start Azurite and the app, measure, print."""
    azurite = start_azurite()
    azurite_for_counts = start_azurite()
    port = free_port()
    env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "ALLOWED_ORIGINS": ORIGIN,
           "ADMIN_KEY": "sdk_bench-key-0123456789", "DEVHOST_LOG_LEVEL": "WARNING", "LLM_PROVIDER": "offline",
           "CHAT_MESSAGES_PER_MINUTE": "100000", "WIDGET_SESSIONS_PER_MINUTE": "100000",
           "MAX_AI_CALLS_PER_SESSION_DAY": "100000", "MAX_AI_CALLS_PER_DAY": "1000000",
           "KNOWLEDGE_TEXT": KNOWLEDGE}  # fmt: skip
    host = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", str(port), "--settings", "none.json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_port(port, timeout=60, process=host)
        with httpx.Client(base_url=base, timeout=60) as client:
            client.get("/health")
            body = client.post("/widget/session", json={}, headers={"Origin": ORIGIN}).json()
            auth = {"Authorization": f"Bearer {body['token']}"}
            for _ in range(20):  # warm up
                client.post("/chat", json={"message": "warm up"}, headers=auth)
                client.get("/health/live")
            noop = [timed(client, "GET", "/health/live")[0] for _ in range(TURNS)]
            turns, spaced = [], []
            for i in range(TURNS):
                latency, response = timed(client, "POST", "/chat", json={"message": f"shipping? {i}"}, headers=auth)
                assert response.status_code == 200, response.text
                turns.append(latency)
            for i in range(TURNS // 4):  # as in a real chat: the last turn's outbox is applied before the next
                wait_for_outbox(azurite.connection_string, body["sessionId"])
                latency, response = timed(client, "POST", "/chat", json={"message": f"returns? {i}"}, headers=auth)
                assert response.status_code == 200, response.text
                spaced.append(latency)
        round_trip = azurite_point_reads(azurite.connection_string, TURNS)
        served, errors, seconds = asyncio.run(concurrent_visitors(base))
    finally:
        host.terminate()
        host.wait()
        azurite.stop()
    calls = storage_calls(azurite_for_counts.connection_string)
    azurite_for_counts.stop()
    rt, turn, idle, quiet = _median_ms(round_trip), _median_ms(turns), _median_ms(noop), _median_ms(spaced)
    overhead = turn - idle
    print(f"Azurite round trip (point read)  : median {rt:6.2f} ms over {TURNS}")
    print(f"no-op request (/health/live)     : median {idle:6.2f} ms over {TURNS}")
    p95 = statistics.quantiles(turns, n=20)[18] * 1000
    print(f"chat turn, back to back          : median {turn:6.2f} ms, p95 {p95:6.2f} ms (outbox work runs beside)")
    print(f"chat turn, outbox applied between: median {quiet:6.2f} ms")
    ratio, quiet_ratio = overhead / rt, (quiet - idle) / rt
    print(f"server overhead of a turn        : {overhead:6.2f} ms = {ratio:4.1f}x one Azurite round trip back to back")
    print(f"{'':35}{quiet - idle:6.2f} ms = {quiet_ratio:4.1f}x with the outbox applied between (target 3x)")
    for name, count in calls.items():
        print(f"storage calls in the request     : {count} for {name}{' (target: at most 4)' if 'bot' in name else ''}")
    print(
        f"{VISITORS} concurrent visitors x {TURNS_EACH} turns : {served} ok, {errors} errors in {seconds:5.2f} s "
        f"= {served / seconds:6.1f} turns/s"
    )


if __name__ == "__main__":
    main()
