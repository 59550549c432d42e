"""``python -m devhost``: serve the Function App locally on http://localhost:7071."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import uvicorn

from devhost.settings import apply_local_settings


def main() -> None:
    """Parse arguments, apply local settings, and serve until interrupted."""
    started = time.perf_counter()
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--app-dir", default=".", help="folder with host.json and function_app.py")
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--port", type=int, default=0, help="port (default: Host.LocalHttpPort or 7071)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--settings", default="local.settings.json")
    args = parser.parse_args()

    app_dir = Path(args.app_dir).resolve()
    local = apply_local_settings(app_dir / args.settings)
    port = args.port or int((local.get("Host") or {}).get("LocalHttpPort", 7071))
    logging.basicConfig(
        level=os.environ.get("DEVHOST_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from devhost.host import create_host

    os.chdir(app_dir)
    asgi, index = create_host(app_dir, args.app)
    logging.getLogger("devhost").info(
        "loaded %d HTTP, %d timer and %d queue functions in %.2fs",
        len(index.http),
        len(index.timers),
        len(index.queues),
        time.perf_counter() - started,
    )
    # No proxy_headers: the host appends the caller's address to X-Forwarded-For itself, as Azure's
    # front end does, instead of trusting what a local caller put there.
    uvicorn.run(
        asgi, host=args.host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=3,
        proxy_headers=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
