"""A tiny programmable HTTP server on loopback, in a thread, for faking remote services."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")


Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[Recorded], Reply]


@dataclass
class FakeServer:
    """Routes requests to ``handler``; records them; ``down`` makes every request a 503."""

    handler: Route
    requests: list[Recorded] = field(default_factory=list)
    down: bool = False

    def start(self) -> FakeServer:
        """Listen on a free loopback port."""
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                recorded = Recorded(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                fake.requests.append(recorded)
                status, headers, body = (503, {}, b"down") if fake.down else fake.handler(recorded)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()


def json_reply(status: int, body: Any) -> Reply:
    """A JSON response tuple."""
    return status, {"content-type": "application/json"}, json.dumps(body).encode()
