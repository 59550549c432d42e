"""Starting and stopping the local servers: free ports, readiness waits, clean shutdown."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Test workers running side by side (pytest-xdist sets PYTEST_XDIST_WORKER=gw<N>) each take ports from a
# block of their own below Linux's ephemeral range (32768+). Two workers asking the kernel for "any free
# port" can be handed the same one: the second server then fails to bind while the first worker's
# readiness check connects to the other's server and its test talks to the wrong process.
_BLOCK_START, _BLOCK_SIZE = 12000, 2500


def _worker_ports() -> Iterator[int] | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not (worker.startswith("gw") and worker[2:].isdigit()):
        return None
    low = _BLOCK_START + int(worker[2:]) % 8 * _BLOCK_SIZE
    start = random.randrange(_BLOCK_SIZE)  # a rerun doesn't meet the last run's sockets in TIME_WAIT
    return (low + (start + i) % _BLOCK_SIZE for i in itertools.count())


_PORTS = _worker_ports()


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now (and no other test worker will pick)."""
    if _PORTS is not None:
        return next(port for port in _PORTS if _is_free(port))
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
