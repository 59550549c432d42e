"""``python -m devhost.signalr --port 8888``: run the SignalR Service emulator until stopped."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from devhost.signalr.app import DEFAULT_ACCESS_KEY, DEFAULT_PING_SECONDS, RedactTokens, create_app


def main(argv: list[str] | None = None) -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(prog="python -m devhost.signalr", description=__doc__)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    parser.add_argument("--ping-seconds", type=float, default=DEFAULT_PING_SECONDS)
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    app = create_app(access_key=args.access_key, ping_seconds=args.ping_seconds)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactTokens())
    # Only the well-known development key is printed; a key passed in stays out of the output.
    key = args.access_key if args.access_key == DEFAULT_ACCESS_KEY else "<your key>"
    print(
        f"SignalR emulator on http://{args.host}:{args.port}\n"
        f"  Endpoint=http://{args.host};Port={args.port};AccessKey={key};Version=1.0;",
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        log_level=args.log_level,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
