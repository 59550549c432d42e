"""``make dev``: Azurite, the SignalR emulator and the Functions host, until Ctrl-C.

Works with or without a terminal; SIGINT or SIGTERM stops every child and leaves none behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sys
import threading
import urllib.request

from devhost.azurite import start_azurite
from devhost.processes import ROOT, Server, spawn
from devhost.seed import seed_knowledge

AZURITE_PORTS = (10000, 10001, 10002)


def _local_values() -> dict[str, str]:
    path = ROOT / "local.settings.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get("Values") or {})


def _signalr_port(values: dict[str, str]) -> int | None:
    """The emulator's port from the SignalR connection string, or None when it isn't available."""
    if importlib.util.find_spec("devhost.signalr") is None:
        return None
    from shared.realtime.client import parse_connection_string

    conn = os.environ.get("SIGNALR_CONNECTION_STRING") or values.get("SIGNALR_CONNECTION_STRING", "")
    return parse_connection_string(conn).port if conn else 8888


def main() -> None:
    """Start the stack, print where it is, wait for a signal, stop it all."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    values = _local_values()
    servers: list[Server] = []
    azurite = None
    try:
        azurite = start_azurite(location=ROOT / ".azurite", ports=AZURITE_PORTS)
        env = {"AzureWebJobsStorage": azurite.connection_string}
        signalr_port = _signalr_port(values)
        if signalr_port:
            command = [sys.executable, "-m", "devhost.signalr", "--port", str(signalr_port)]
            servers.append(spawn("signalr", command, port=signalr_port))
        servers.append(
            spawn("functions", [sys.executable, "-m", "devhost", "--port", "7071"], port=7071, env=env, timeout=60)
        )
        _announce(signalr_port)
        stop.wait()
    finally:
        print("\nstopping the local stack...", flush=True)
        for server in reversed(servers):
            server.stop()
        if azurite is not None:
            azurite.stop()


def _announce(signalr_port: int | None) -> None:
    base = "http://localhost:7071/api"
    with contextlib.suppress(OSError):
        urllib.request.urlopen(f"{base}/health", timeout=30).read()  # bootstraps, creating the key
    key_file = ROOT / ".admin-key"
    key = key_file.read_text(encoding="utf-8").strip() if key_file.exists() else os.environ.get("ADMIN_KEY", "")
    knowledge = _seed(base, key)
    lines = [
        "",
        "Support desk is running:",
        f"  health            {base}/health",
        f"  demo page         {base}/demo",
        f"  dashboard         {base}/dashboard?code={key}" if key else f"  dashboard         {base}/dashboard",
        f"  agent console     {base}/agent",
        f"  SignalR emulator  http://localhost:{signalr_port}" if signalr_port else "  SignalR           (polling)",
        f"  admin key         {key or '(set by ADMIN_KEY)'}  (also in .admin-key)",
        f"  knowledge         {knowledge}",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)


def _seed(base: str, key: str) -> str:
    """The sample knowledge base on first start; a failure is reported, never fatal."""
    if not key:
        return "no admin key: sample knowledge not added"
    try:
        return seed_knowledge(base, key, ROOT / ".azurite" / "knowledge-seeded")
    except Exception as exc:  # noqa: BLE001 - the stack runs without samples; say why
        return f"sample knowledge not added: {exc}"


if __name__ == "__main__":
    main()
