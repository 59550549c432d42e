"""A local Azure SignalR Service emulator (serverless mode), and a launcher for tests and benches.

The emulator speaks the service's negotiate, WebSocket JSON hub protocol and REST API v1, so the
real ``@microsoft/signalr`` client and ``shared.realtime.client`` work against it unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devhost.processes import Server, free_port, spawn

DEFAULT_ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"

__all__ = ["DEFAULT_ACCESS_KEY", "Emulator", "start_emulator"]


@dataclass
class Emulator:
    """An emulator process on a fixed port; it can be stopped and started again on that port."""

    port: int
    access_key: str = DEFAULT_ACCESS_KEY
    ping_seconds: float = 15.0
    log_path: Path | None = None
    server: Server | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """Base URL of the emulator."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        """The connection string the app settings would carry."""
        return f"Endpoint=http://127.0.0.1;Port={self.port};AccessKey={self.access_key};Version=1.0;"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.server is not None and self.server.process.poll() is None

    def start(self) -> Emulator:
        """Start the process and wait until the port accepts."""
        if self.running:
            return self
        command = [
            sys.executable, "-m", "devhost.signalr", "--port", str(self.port),
            "--access-key", self.access_key, "--ping-seconds", str(self.ping_seconds),
        ]  # fmt: skip
        if self.log_path is None:
            self.server = spawn("signalr", command, port=self.port, stdout=subprocess.DEVNULL)
        else:
            # Appended, so a restart keeps what the previous run printed.
            with self.log_path.open("ab") as log_file:
                self.server = spawn("signalr", command, port=self.port, stdout=log_file.fileno())
        return self

    def stop(self) -> None:
        """Stop the process (its clients see their sockets close)."""
        if self.server is not None:
            self.server.stop()

    def restart(self) -> Emulator:
        """Stop, then start again on the same port with empty state."""
        self.stop()
        return self.start()

    def log(self) -> str:
        """What the emulator printed so far (empty without a log file)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_emulator(
    *,
    port: int | None = None,
    access_key: str = DEFAULT_ACCESS_KEY,
    ping_seconds: float = 15.0,
    log_path: Path | None = None,
) -> Emulator:
    """Start an emulator on ``port`` (a free one by default)."""
    return Emulator(port or free_port(), access_key, ping_seconds, log_path).start()
