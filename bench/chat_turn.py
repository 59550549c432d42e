"""Chat turn cost: server time of one visitor turn (offline bot) against one Azurite round trip.

Both are measured in the same run on the same machine. "Server overhead" is the turn's HTTP
latency minus a no-op request's (the devhost and HTTP cost both share). Then 50 visitors chat
concurrently and the throughput and error count are printed. Not a pass/fail test.
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


def main() -> None:
    """Start Azurite and the app, measure, print."""
    azurite = start_azurite()
    port = free_port()
    env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "ALLOWED_ORIGINS": ORIGIN,
           "ADMIN_KEY": "sdk_bench-key-0123456789", "DEVHOST_LOG_LEVEL": "WARNING", "LLM_PROVIDER": "offline",
           "CHAT_MESSAGES_PER_MINUTE": "100000", "WIDGET_SESSIONS_PER_MINUTE": "100000",
           "MAX_AI_CALLS_PER_SESSION_DAY": "100000", "MAX_AI_CALLS_PER_DAY": "1000000",
           "KNOWLEDGE_TEXT": "Q: How long does shipping take?\nA: Three to five business days."}  # fmt: skip
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
            turns = []
            for i in range(TURNS):
                latency, response = timed(client, "POST", "/chat", json={"message": f"shipping? {i}"}, headers=auth)
                assert response.status_code == 200, response.text
                turns.append(latency)
        round_trip = azurite_point_reads(azurite.connection_string, TURNS)
        served, errors, seconds = asyncio.run(concurrent_visitors(base))
    finally:
        host.terminate()
        host.wait()
        azurite.stop()
    rt, turn, idle = _median_ms(round_trip), _median_ms(turns), _median_ms(noop)
    overhead = turn - idle
    print(f"Azurite round trip (point read)  : median {rt:6.2f} ms over {TURNS}")
    print(f"no-op request (/health/live)     : median {idle:6.2f} ms over {TURNS}")
    p95 = statistics.quantiles(turns, n=20)[18] * 1000
    print(f"chat turn (offline bot)          : median {turn:6.2f} ms, p95 {p95:6.2f} ms")
    ratio = overhead / rt
    print(f"server overhead of a turn        : {overhead:6.2f} ms = {ratio:4.1f}x one Azurite round trip (target 3x)")
    print(
        f"{VISITORS} concurrent visitors x {TURNS_EACH} turns : {served} ok, {errors} errors in {seconds:5.2f} s "
        f"= {served / seconds:6.1f} turns/s"
    )


if __name__ == "__main__":
    main()
