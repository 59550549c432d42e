"""Starting and stopping the local servers: free ports, readiness waits, clean shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts on ``port``; fail early if ``process`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


@dataclass
class Server:
    """A child process we started, stopped with its whole process group."""

    name: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the group, then SIGKILL what is left."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)


def spawn(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 30.0,
    stdout: int | None = None,
) -> Server:
    """Start ``command`` in its own process group and wait until ``port`` accepts.

    A port something else already listens on is refused up front: otherwise the readiness check
    would talk to that other server while ours dies unseen.
    """
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        raise RuntimeError(f"{name}: port {port} is already in use; stop whatever listens there first")
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not None else None,
        start_new_session=True,
    )
    server = Server(name, process, port)
    try:
        wait_for_port(port, timeout=timeout, process=process)
    except Exception:
        server.stop()
        raise
    return server
