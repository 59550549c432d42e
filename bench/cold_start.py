"""Cold start: process start to the first ``/api/health`` 200, for the product and a bare app.

Both run under devhost on the same machine in the same run, so the ratio is what matters; the
product's number includes importing every blueprint, bootstrap's first Storage calls and one
health report. Target: under 0.5 s for the product's own share. Not a pass/fail test.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devhost.azurite import start_azurite  # noqa: E402
from devhost.processes import ROOT, free_port  # noqa: E402

RUNS = 5


def time_to_first_health(app: str, env: dict[str, str]) -> float:
    """Seconds from spawning devhost to a 200 from /api/health."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", str(port), "--app", app, "--settings", "none.json"],
        cwd=ROOT,
        env={**env, "DEVHOST_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    """Print medians and the ratio product / bare."""
    import os

    azurite = start_azurite()
    try:
        env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "ADMIN_KEY": "sdk_bench-key-0123456789"}
        bare = [time_to_first_health("bench.bare_app:app", env) for _ in range(RUNS)]
        product = [time_to_first_health("function_app:app", env) for _ in range(RUNS)]
    finally:
        azurite.stop()
    bare_median, product_median = statistics.median(bare), statistics.median(product)
    print(f"bare one-function app : median {bare_median * 1000:7.0f} ms over {RUNS} runs")
    print(f"support desk          : median {product_median * 1000:7.0f} ms over {RUNS} runs")
    print(f"ratio product/bare    : {product_median / bare_median:5.2f}x")
    print(f"product's own share   : {(product_median - bare_median) * 1000:7.0f} ms (target: under 500 ms in all)")


if __name__ == "__main__":
    main()
