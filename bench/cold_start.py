"""Cold start: importing the app and answering the first ``GET /api/health``, product against a bare app.

Each run is a fresh Python process that first imports the harness (devhost's host: ``azure.functions``
and Starlette), as the Functions worker has ``azure.functions`` loaded before it indexes an app. Then
it times (1) importing ``module:app`` and indexing its functions and (2) that plus the first
``/api/health`` answered in-process by devhost's ASGI app (one ASGI call: no socket, no client
library whose import would hide the product's own, no timers). The product's health reads Storage:
one in-memory Azurite serves the whole run.

Runs alternate bare, product, bare, product, ... so drift hits both alike; a first discarded pair
compiles byte code (into a temporary cache) and bootstraps Storage. Target: the product adds under
150 ms to import + first health. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE, PRODUCT = "bench.bare_app:app", "function_app:app"
TARGET_MS = 150.0
ADMIN_KEY = "sdk_bench-admin-key-0123456789abcdef"
# What the product imports; the harness must not, or their cost would go uncounted.
PRODUCT_DEPENDENCIES = ("aiohttp", "azure.core", "azure.data.tables", "azure.storage.blob", "azure.storage.queue",
                        "cryptography", "httpx", "jwt", "msal", "openai", "pydantic", "pydantic_settings",
                        "requests")  # fmt: skip
KNOWLEDGE = "# Shipping\nQ: How long does shipping take?\nA: Standard shipping takes 3 to 5 business days.\n"


class Sample(NamedTuple):
    """Seconds of one cold start."""

    imported: float  # import the app module and index its functions
    healthy: float  # that plus the first /api/health answered
    preloaded: tuple[str, ...] = ()  # product dependencies the harness had imported already
    at_import: tuple[str, ...] = ()  # product dependencies importing the app loaded
    at_health: tuple[str, ...] = ()  # and those the first health call loaded


async def get(asgi: Any, path: str) -> tuple[int, bytes]:
    """(status, body) of one GET sent straight to an ASGI app (no socket, no client library)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"localhost")],
             "client": ("127.0.0.1", 50000), "server": ("localhost", 80)}  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def measure(spec: str) -> Sample:
    """In this (fresh) process: import and index ``spec``, then GET /api/health once."""
    from devhost.host import create_host  # the harness: azure.functions and Starlette

    def loaded(*before: str) -> tuple[str, ...]:
        return tuple(name for name in PRODUCT_DEPENDENCIES if name in sys.modules and name not in before)

    preloaded = loaded()
    started = time.perf_counter()
    asgi, _ = create_host(ROOT, spec)
    imported = time.perf_counter() - started
    at_import = loaded(*preloaded)  # not timed: the times stay the product's own
    resumed = time.perf_counter()
    status, body = asyncio.run(get(asgi, "/api/health"))
    healthy = imported + time.perf_counter() - resumed
    if status != 200:
        raise RuntimeError(f"{spec}: /api/health answered {status} {body[:300]!r}")
    return Sample(imported, healthy, preloaded, at_import, loaded(*preloaded, *at_import))


def cold_start(spec: str, env: dict[str, str]) -> Sample:
    """One ``measure(spec)`` in a new interpreter."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", spec], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"{spec}: the child exited with {done.returncode}\n{done.stderr[-3000:]}")
    imported, healthy, *names = json.loads(done.stdout.strip().splitlines()[-1])
    return Sample(imported, healthy, *(tuple(group) for group in names))


def child_env(storage: str, pycache: str) -> dict[str, str]:
    """Settings of a product host (as tests/support.py ``host_env``), byte code cached in ``pycache``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **env,
        "PYTHONPYCACHEPREFIX": pycache,  # no __pycache__ written into the repository
        "AZURE_FUNCTIONS_ENVIRONMENT": "Development",  # what devhost sets
        "AzureWebJobsStorage": storage,
        "ADMIN_KEY": ADMIN_KEY,
        "ALLOWED_ORIGINS": "https://bench.example",
        "KNOWLEDGE_TEXT": KNOWLEDGE,
    }


def row(name: str, samples: list[float]) -> str:
    """Median, min, max and interquartile range, in ms."""
    ms = sorted(s * 1000 for s in samples)
    q1, _, q3 = statistics.quantiles(ms, n=4, method="inclusive")
    median = statistics.median(ms)
    return f"{name:<30} {median:8.1f} {ms[0]:8.1f} {ms[-1]:8.1f} {q3 - q1:8.1f}"


def added(name: str, bare: list[float], product: list[float]) -> float:
    """Print and return the product's median minus the bare app's, in ms."""
    b, p = statistics.median(bare), statistics.median(product)
    print(f"product adds to {name:<22} {(p - b) * 1000:+8.1f} ms   ratio product/bare {p / b:6.2f}x")
    return (p - b) * 1000


def main() -> None:
    """Start Azurite, run the interleaved cold starts, print the table and the target."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11, help="cold starts of each app (default 11)")
    parser.add_argument("--child", metavar="MODULE:APP", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return

    from devhost.azurite import start_azurite  # imports shared.config: never in a measured child

    azurite = start_azurite()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
            env = child_env(azurite.connection_string, pycache)
            first = [cold_start(BARE, env), cold_start(PRODUCT, env)]
            runs: dict[str, list[Sample]] = {BARE: [], PRODUCT: []}
            for _ in range(args.runs):
                for spec in (BARE, PRODUCT):
                    runs[spec].append(cold_start(spec, env))
    finally:
        azurite.stop()

    print(f"discarded first pair (compiles byte code, bootstraps Storage): import + first health "
          f"bare {first[0].healthy * 1000:.0f} ms, product {first[1].healthy * 1000:.0f} ms")  # fmt: skip
    title = f"ms, {args.runs} runs each, interleaved"
    print(f"\n{title:<30} {'median':>8} {'min':>8} {'max':>8} {'p75-p25':>8}")
    for label, spec in (("bare", BARE), ("product", PRODUCT)):
        print(row(f"{label} import + index", [s.imported for s in runs[spec]]))
        print(row(f"{label} import + first health", [s.healthy for s in runs[spec]]))
    print()
    added("import + index", [s.imported for s in runs[BARE]], [s.imported for s in runs[PRODUCT]])
    extra = added("import + first health", [s.healthy for s in runs[BARE]], [s.healthy for s in runs[PRODUCT]])
    verdict = "met" if extra < TARGET_MS else "NOT met"
    print(f"target: the product adds under {TARGET_MS:.0f} ms to import + first health: {verdict} ({extra:.0f} ms)")
    # Where the heavy dependencies come in, to tell which step a regression belongs to.
    for step, names in (("import + index", {n for s in runs[PRODUCT] for n in s.at_import}),
                        ("first health", {n for s in runs[PRODUCT] for n in s.at_health})):  # fmt: skip
        print(f"product dependencies loaded by {step}: {', '.join(sorted(names)) or 'none'}")
    if preloaded := sorted({name for sample in runs[PRODUCT] for name in sample.preloaded}):
        print(
            f"WARNING: devhost.host itself imports {', '.join(preloaded)}; the product's share of those is not counted"
        )


if __name__ == "__main__":
    main()
