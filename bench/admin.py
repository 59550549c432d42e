"""Dashboard reads over a large history: cost, top sessions and search against one Azurite round trip.

Seeds N messages (default 1,000,000; ``--messages`` for quick runs) straight through the app's
storage model: the session orderings in batches, hourly rollups over 7 days, the search index as
one bulk segment, and with ``--with-chats`` each session's header and messages in entity-group
transactions too (the measured routes don't read those rows, and Azurite slows past ~1e5 of them).
Then a devhost serves the admin routes with an empty segment cache, and the latency of
``/api/cost?window=7d``, top sessions and ~50 searches (p50/p95) is printed beside the median
Azurite round trip measured in the same run. Targets: cost and top sessions under 200 ms, search
p95 under 300 ms. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import azurite_first_pages, azurite_point_reads  # noqa: E402
from devhost.azurite import start_azurite  # noqa: E402
from devhost.processes import ROOT, free_port, wait_for_port  # noqa: E402

ADMIN_KEY = "sdk_bench-admin-key-0123456789abcdef"
PER_SESSION = 10
INDEX = "sessionindex"  # shared.storage.tables.SESSIONS_INDEX
CONCURRENCY = 48
_WORDS = (
    "order shipping refund parcel delivery invoice account password login cancel return exchange size colour "
    "price discount coupon payment card bank transfer address postcode tracking courier warehouse stock "
    "subscription renewal upgrade downgrade plan seat agent human help broken damaged missing late early "
    "weekend monday friday tomorrow today morning evening express standard international customs duty tax "
    "café résumé naïve crème brûlée garçon façade jalapeño über smörgåsbord"
).split()
VOCABULARY = _WORDS + [f"{a}{b}" for a in ("pro", "re", "un", "over", "sub") for b in _WORDS[:60]]
_WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]


def messages_of(index: int, start: datetime) -> list[Any]:
    """Session ``index``'s messages (deterministic, so the search seeding can regenerate them)."""
    from shared.conversations.models import Message

    rng = random.Random(index)
    session_id = f"bench-{index:08d}"
    at = start + timedelta(seconds=index * 6)
    out = []
    for seq in range(1, PER_SESSION + 1):
        bot = seq % 2 == 0
        text = " ".join(rng.choices(VOCABULARY, _WEIGHTS, k=rng.randint(6, 18)))
        out.append(
            Message(
                session_id,
                seq,
                "bot" if bot else "visitor",
                text,
                created_at=at + timedelta(seconds=seq),
                prompt_tokens=rng.randint(200, 900) if bot else 0,
                completion_tokens=rng.randint(20, 200) if bot else 0,
                cost_micro_usd=rng.randint(100, 5_000) if bot else 0,
            )  # fmt: skip
        )
    return out


async def seed(sessions: int, start: datetime, *, chats_too: bool = True) -> None:
    """Chats, orderings, rollups and the search segment for ``sessions`` sessions."""
    from azure.data.tables import UpdateMode

    from shared import search
    from shared.conversations.models import Session
    from shared.ops.bootstrap import ensure_bootstrapped
    from shared.storage import tables
    from shared.storage.chats import message_entity, session_entity
    from shared.storage.clients import get_blob_service, get_table_service, table_client
    from shared.storage.orderings import IndexedSession, activity_key, cost_key
    from shared.storage.rollups import RollupRepository

    await ensure_bootstrapped()
    chats, index = table_client(tables.CHATS), table_client(tables.SESSIONS_INDEX)
    gate = asyncio.Semaphore(CONCURRENCY)
    orderings: dict[str, list[dict[str, Any]]] = {"byactivity": [], "bycost": [], "status-closed": []}

    async def write_session(i: int) -> None:
        messages = messages_of(i, start)
        last = messages[-1].created_at
        session = Session(messages[0].session_id, status="closed", created_at=messages[0].created_at,
                          last_activity_at=last, seq=len(messages), preview=messages[-1].text[:200],
                          prompt_tokens=sum(m.prompt_tokens for m in messages),
                          completion_tokens=sum(m.completion_tokens for m in messages),
                          cost_micro_usd=sum(m.cost_micro_usd for m in messages))  # fmt: skip
        operations: list[Any] = [("create", session_entity(session))] + [
            ("create", message_entity(m)) for m in messages
        ]
        async with gate:
            for chunk in range(0, len(operations) if chats_too else 0, 100):
                await chats.submit_transaction(operations[chunk : chunk + 100])
        fields = IndexedSession.of(session).fields()
        orderings["byactivity"].append({"RowKey": activity_key(last, session.session_id), **fields})
        orderings["bycost"].append({"RowKey": cost_key(session.cost_micro_usd, session.session_id), **fields})
        orderings["status-closed"].append({"RowKey": session.session_id, **fields})

    started = time.perf_counter()
    for block in range(0, sessions, 2_000):
        await asyncio.gather(*(write_session(i) for i in range(block, min(block + 2_000, sessions))))
        done = min(block + 2_000, sessions) * PER_SESSION
        print(f"  chats: {done:>9,} messages  {time.perf_counter() - started:6.1f} s", end="\r", flush=True)
    print()

    async def upsert_rows(pk: str, rows: list[dict[str, Any]]) -> None:
        async with gate:
            await index.submit_transaction(
                [("upsert", {"PartitionKey": pk, **row}, {"mode": UpdateMode.REPLACE}) for row in rows]
            )

    await asyncio.gather(
        *(upsert_rows(pk, rows[i : i + 100]) for pk, rows in orderings.items() for i in range(0, len(rows), 100))
    )
    print(f"  session orderings: {time.perf_counter() - started:6.1f} s")
    rollups, now = RollupRepository(), datetime.now(UTC)
    rng = random.Random(7)
    for hour in range(168):  # one add per hour: the rollups' own path, 7 days of traffic
        calls = rng.randint(50, 500)
        await rollups.add(now - timedelta(hours=hour), calls=calls, promptTokens=calls * 600,
                          completionTokens=calls * 110, costMicroUsd=calls * 2_600, sessions=calls // 5,
                          messages=calls * 2, handoffs=calls // 40)  # fmt: skip
    print(f"  rollups: {time.perf_counter() - started:6.1f} s")
    result = await search.bulk_index(m for i in range(sessions) for m in messages_of(i, start))
    print(f"  search segment ({result['docs']:,} docs): {time.perf_counter() - started:6.1f} s")
    await get_table_service().close()
    await get_blob_service().close()


def timed(client: httpx.Client, path: str, params: dict[str, Any]) -> float:
    """Seconds for one authenticated GET that must succeed."""
    began = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:200]}")
    return elapsed


def queries(count: int) -> Iterator[dict[str, Any]]:
    """A mix of common and rare words, two-word ANDs, phrases, prefixes and accent-folded forms."""
    rng = random.Random(11)
    shapes = [
        lambda: rng.choice(VOCABULARY[:20]),
        lambda: rng.choice(VOCABULARY[100:]),
        lambda: f"{rng.choice(VOCABULARY[:40])} {rng.choice(VOCABULARY[:200])}",
        lambda: f'"{rng.choice(VOCABULARY[:30])} {rng.choice(VOCABULARY[:30])}"',
        lambda: rng.choice(VOCABULARY[:50])[:4] + "*",
        lambda: rng.choice(["cafe", "RESUME", "creme brulee", "naive", "Uber"]),
    ]
    for i in range(count):
        yield {"q": shapes[i % len(shapes)](), "limit": 20}


def report(name: str, samples: list[float], baseline: float) -> None:
    """One line: p50, p95 and the ratio to the Azurite round trip."""
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"{name:<34} p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   p50/round trip {p50 / baseline:6.1f}x")


def main() -> None:
    """Seed, serve, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument(
        "--with-chats",
        action="store_true",
        help="also write every message row (the measured routes don't read them; Azurite slows past ~1e5 rows)",
    )
    parser.add_argument("--app", default="function_app:app", help="module:attribute with the admin routes")
    args = parser.parse_args()
    sessions = max(1, args.messages // PER_SESSION)
    azurite = start_azurite()
    cache = tempfile.mkdtemp(prefix="bench-search-")
    env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "ADMIN_KEY": ADMIN_KEY,
           "AZURE_FUNCTIONS_ENVIRONMENT": "Development", "SEARCH_CACHE_DIR": cache}  # fmt: skip
    process = None
    try:
        os.environ.update({k: env[k] for k in ("AzureWebJobsStorage", "ADMIN_KEY", "AZURE_FUNCTIONS_ENVIRONMENT")})
        # The seeding process caches its own copy elsewhere; the host starts cold and downloads.
        os.environ["SEARCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-seed-")
        print(f"seeding {sessions * PER_SESSION:,} messages in {sessions:,} sessions ...")
        began = time.perf_counter()
        asyncio.run(seed(sessions, datetime.now(UTC) - timedelta(days=6), chats_too=args.with_chats))
        print(f"seeded in {time.perf_counter() - began:.0f} s")
        baseline = statistics.median(azurite_point_reads(azurite.connection_string))
        conn = azurite.connection_string
        raw_pages = {pk: azurite_first_pages(conn, INDEX, pk, 21) for pk in ("bycost", "byactivity")}
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "--port", str(port), "--app", args.app, "--settings", "none.json"],
            cwd=ROOT, env={**env, "DEVHOST_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(port, timeout=60, process=process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=300,
                          headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:  # fmt: skip
            timed(client, "/cost", {"window": "24h"})  # bootstrap and warm the worker
            cold = timed(client, "/sessions/search", {"q": "refund"})
            print(f"\nAzurite round trip (median)        {baseline * 1000:7.2f} ms")
            print(f"first search (downloads segment)   {cold * 1000:7.0f} ms")
            runs: list[tuple[str, str, dict[str, Any], int]] = [
                ("GET /cost?window=7d", "/cost", {"window": "7d"}, 30),
                ("GET /cost?window=7d&bucketHours=1", "/cost", {"window": "7d", "bucketHours": 1}, 30),
                ("GET /sessions?sortBy=cost", "/sessions", {"sortBy": "cost", "limit": 20}, 30),
                ("GET /sessions?sortBy=lastActivity", "/sessions", {"sortBy": "lastActivity", "limit": 20}, 30),
            ]
            for name, path, params, repeat in runs:
                report(name, [timed(client, path, params) for _ in range(repeat)], baseline)
            for pk, samples in raw_pages.items():
                report(f"  (SDK alone: first page of {pk})", samples, baseline)
            report(
                "GET /sessions/search (50 queries)",
                [timed(client, "/sessions/search", q) for q in queries(50)],
                baseline,
            )
            first = client.get("/sessions/search", params={"q": "order", "limit": 20}).json()
            page_two = {"q": "order", "limit": 20, "cursor": first["nextCursor"]}
            report(
                "GET /sessions/search (page 2)",
                [timed(client, "/sessions/search", page_two) for _ in range(20)],
                baseline,
            )
        print("targets: cost and top sessions under 200 ms; search p95 under 300 ms")
    finally:
        if process is not None:
            process.terminate()
            process.wait()
        azurite.stop()


if __name__ == "__main__":
    main()
