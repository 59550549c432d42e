"""A fake embeddings service on loopback: OpenAI's ``POST /v1/embeddings`` and Azure OpenAI's
``POST /openai/deployments/{deployment}/embeddings?api-version=...``.

A text's vector is a bag of its words hashed into ``dimensions`` buckets (default 64), after mapping
words through ``synonyms`` (so "price" and "charge" can land on one bucket, as a real model would put
them close), L2-normalised. Floats or base64 float32 as the request's ``encoding_format`` asks (the
SDK asks for base64). ``down`` answers 503, ``delay`` holds every answer, ``hang`` holds the next ones
until the fake stops. Every request is recorded with its inputs.
https://platform.openai.com/docs/api-reference/embeddings/create
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/embeddings$")
_WORD = re.compile(r"[a-z0-9]+")


def fake_vector(text: str, dimensions: int, synonyms: Mapping[str, str] | None = None) -> list[float]:
    """The fake's vector of ``text``: hashed bag of (synonym-mapped) words, unit length."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        word = (synonyms or {}).get(word, word)
        bucket = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little") % dimensions
        vector[bucket] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


@dataclass
class EmbeddingCall:
    """One request: where it went, its headers and the texts it asked for."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def inputs(self) -> list[str]:
        """The texts to embed (a single string counts as one)."""
        given = self.body.get("input")
        return [given] if isinstance(given, str) else list(given or [])


@dataclass
class FakeEmbeddings:
    """The fake server; read ``calls`` after driving the product."""

    dimensions: int = 64
    synonyms: dict[str, str] = field(default_factory=dict)
    down: bool = False
    delay: float = 0.0
    calls: list[EmbeddingCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._hang = threading.Event()  # set: requests hang until the fake stops
        self._stopping = threading.Event()

    def hang(self, on: bool = True) -> None:
        """Hold (or stop holding) every following request without an answer."""
        if on:
            self._hang.set()
        else:
            self._hang.clear()

    def texts(self) -> list[str]:
        """Every text embedded so far, in order."""
        with self._lock:
            return [text for call in self.calls for text in call.inputs]

    @property
    def url(self) -> str:
        """The root URL (Azure's endpoint), without a trailing slash."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return self.url + "/v1"

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The response to one request's body."""
        dimensions = int(body.get("dimensions") or self.dimensions)
        inputs = EmbeddingCall("", {}, body).inputs
        data = []
        for index, text in enumerate(inputs):
            vector = fake_vector(text, dimensions, self.synonyms)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        data.reverse()  # the API gives each row its index; clients must not rely on the order
        tokens = sum(len(text.split()) for text in inputs)
        return {"object": "list", "data": data, "model": body.get("model", ""),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip

    def start(self) -> FakeEmbeddings:
        """Listen on a free loopback port."""
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                split = urlsplit(self.path)
                azure = _AZURE_PATH.match(split.path)
                if split.path != "/v1/embeddings" and not azure:
                    return self._json(404, {"error": {"message": "not found"}})
                if azure and not parse_qs(split.query).get("api-version"):
                    return self._json(404, {"error": {"code": "404", "message": "missing api-version"}})
                body = json.loads(raw or b"{}")
                with fake._lock:
                    fake.calls.append(EmbeddingCall(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if fake._hang.is_set():
                    fake._stopping.wait(60)
                    return
                if fake.delay:
                    fake._stopping.wait(fake.delay)
                if fake.down:
                    return self._json(503, {"error": {"message": "fake outage", "type": "server_error"}})
                if not EmbeddingCall("", {}, body).inputs:
                    return self._json(400, {"error": {"message": "input must not be empty"}})
                self._json(200, fake.answer(body))

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout under test)

            def log_message(self, *args: Any) -> None:
                return

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release held requests and stop listening."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def inputs_of(calls: Sequence[EmbeddingCall]) -> list[str]:
    """Every text of ``calls``, in order."""
    return [text for call in calls for text in call.inputs]
