"""What a website pays for the snippet: widget.js bytes on the wire, against the 20 KB gzip budget.

Served by the app itself (devhost on a free port, gzip negotiated as a browser does). The SignalR
client is loaded only when a visitor opens the chat, so it is printed apart, as the ratio's baseline.
Not a pass/fail test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devhost.azurite import start_azurite  # noqa: E402
from devhost.processes import ROOT, free_port, wait_for_port  # noqa: E402

BUDGET = 20 * 1024


def wire_size(client: httpx.Client, path: str) -> tuple[int, int]:
    """(bytes on the wire with gzip, bytes uncompressed) of one GET."""
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        response.raise_for_status()
        wire = sum(len(chunk) for chunk in response.iter_raw())
    plain = len(client.get(path, headers={"Accept-Encoding": "identity"}).content)
    return wire, plain


def main() -> None:
    azurite = start_azurite()
    port = free_port()
    env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "AZURE_FUNCTIONS_ENVIRONMENT": "Development"}
    host = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", str(port), "--settings", "none.json"],
        cwd=ROOT, env={**env, "DEVHOST_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=60, process=host)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=30) as client:
            widget, widget_plain = wire_size(client, "/widget.js")
            signalr, signalr_plain = wire_size(client, "/vendor/signalr.js")
    finally:
        host.terminate()
        host.wait()
        azurite.stop()
    print(f"widget.js          : {widget:7,} bytes gzipped ({widget_plain:,} plain), {widget / BUDGET:5.1%} of 20 KB")
    print(f"signalr (on open)  : {signalr:7,} bytes gzipped ({signalr_plain:,} plain)")
    print(f"ratio widget/signalr: {widget / signalr:4.2f}x  (the snippet loads only the widget)")


if __name__ == "__main__":
    main()
