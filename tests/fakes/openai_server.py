"""A fake OpenAI-compatible server on loopback: chat completions, plain and streamed (SSE), and transcriptions.

Serves ``POST /v1/chat/completions`` and Azure's
``POST /openai/deployments/{deployment}/chat/completions?api-version=...``, and the multipart
``POST /v1/audio/transcriptions`` (Azure: ``.../deployments/{deployment}/audio/transcriptions``),
which answers ``{"text": transcript}`` and records the uploaded file. Each chat request takes
the next scripted :class:`Behaviour` (ok, an error status with headers, a hang, a stream that
stalls or writes at a fixed rate) or, when the script is empty, the default one (``ok``). Every
request is recorded. Streams are written with HTTP/1.1 chunked encoding and flushed per event, as
the real service does.
https://platform.openai.com/docs/api-reference/chat/streaming
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http_server import Recorded

DEFAULT_TEXT = "Standard shipping takes 3 to 5 business days."
_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")
_AZURE_AUDIO = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/audio/transcriptions$")
DEFAULT_TRANSCRIPT = "Hello, where is my parcel?"


@dataclass
class Upload:
    """A transcription request: its form fields and the uploaded file."""

    fields: dict[str, str]
    filename: str
    content_type: str
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> Upload:
    """The fields and the ``file`` part of a ``multipart/form-data`` body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"content-type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    upload = Upload(fields, "", "", b"")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename():
            upload.filename, upload.content_type, upload.data = str(part.get_filename()), part.get_content_type(), data
        else:
            fields[str(name)] = data.decode()
    return upload


def image_urls(request: dict[str, Any]) -> list[str]:
    """The ``image_url`` URLs (data URIs) of a chat request's messages."""
    found: list[str] = []
    for message in request.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                found.append(str((part.get("image_url") or {}).get("url", "")))
    return found


@dataclass
class Behaviour:
    """What the fake does with one request."""

    kind: str = "ok"  # ok | status | hang
    text: str = DEFAULT_TEXT
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    hang_seconds: float = 30.0
    usage: bool = True  # send usage (streams: only when the request asks for it)
    prompt_tokens: int | None = None  # default: a count derived from the request
    completion_tokens: int | None = None
    stall_after: int | None = None  # streams: hang after this many content chunks
    chunk_seconds: float = 0.0  # streams: the pause before each content chunk (a model writing at a fixed rate)


def ok(text: str = DEFAULT_TEXT, **kwargs: Any) -> Behaviour:
    """Answer with ``text``."""
    return Behaviour("ok", text=text, **kwargs)


def status(code: int, *, retry_after: str | None = None, **headers: str) -> Behaviour:
    """Fail with an HTTP status (an OpenAI-style error body), e.g. 429 with ``Retry-After``."""
    all_headers = {**({"retry-after": retry_after} if retry_after is not None else {}), **headers}
    kind = "rate_limit_exceeded" if code == 429 else "server_error"
    body = {"error": {"message": f"fake {code}", "type": kind, "param": None, "code": kind}}
    return Behaviour("status", status=code, headers=all_headers, body=body)


def hang(seconds: float = 30.0) -> Behaviour:
    """Accept the request and answer nothing for ``seconds`` (or until the fake stops)."""
    return Behaviour("hang", hang_seconds=seconds)


class FakeOpenAI:
    """The fake server: ``script(...)`` behaviours, then read ``requests``."""

    def __init__(self, *, model: str = "gpt-4o-mini-2024-07-18", default: Behaviour | None = None) -> None:
        self.model = model
        self.default = default or ok()  # what an unscripted request gets
        self.requests: list[Recorded] = []
        self.transcript = DEFAULT_TRANSCRIPT  # what every transcription answers
        self.uploads: list[Upload] = []  # the transcription requests' files
        self._script: deque[Behaviour] = deque()
        self._changed = threading.Condition()
        self._stopping = threading.Event()

    # -- scripting and inspection -------------------------------------------------------------

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        with self._changed:
            self._script.extend(behaviours)

    def _next(self) -> Behaviour:
        with self._changed:
            return self._script.popleft() if self._script else self.default

    def _record(self, request: Recorded) -> None:
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """Block until ``count`` requests arrived (AssertionError after ``timeout``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    @property
    def url(self) -> str:
        """The server's root URL (the Azure endpoint), without a trailing slash."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``)."""
        return self.url + "/v1"

    # -- responses ---------------------------------------------------------------------------

    def usage(self, request: dict[str, Any], behaviour: Behaviour, text: str) -> dict[str, int]:
        """Usage numbers: scripted ones, else derived from the request and reply sizes."""
        prompt = behaviour.prompt_tokens
        if prompt is None:
            prompt = sum(len(str(m.get("content", "")).split()) + 4 for m in request.get("messages", []))
        completion = behaviour.completion_tokens if behaviour.completion_tokens is not None else len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def completion(self, request: dict[str, Any], behaviour: Behaviour) -> dict[str, Any]:
        """A non-streamed chat completion."""
        body: dict[str, Any] = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": behaviour.text},
                    "finish_reason": "stop",
                }
            ],
        }
        if behaviour.usage:
            body["usage"] = self.usage(request, behaviour, behaviour.text)
        return body

    def chunks(self, request: dict[str, Any], behaviour: Behaviour) -> list[dict[str, Any]]:
        """The chunks of a streamed completion: role, one per word, finish, then usage if asked."""
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time())}
        base["model"] = self.model

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        pieces = re.findall(r"\S+\s*", behaviour.text)
        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"content": piece}) for piece in pieces]
        out.append(chunk({}, "stop"))
        wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        if behaviour.usage and wants_usage:
            out.append({**base, "choices": [], "usage": self.usage(request, behaviour, behaviour.text)})
        return out

    # -- server ------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        """Listen on a free loopback port."""
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like the real API

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                headers = {key.lower(): value for key, value in self.headers.items()}
                recorded = Recorded("POST", self.path, headers, self.rfile.read(length))
                fake._record(recorded)
                try:
                    self._answer(recorded)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout under test); nothing to answer

            def _answer(self, recorded: Recorded) -> None:
                split = urlsplit(recorded.path)
                if split.path == "/v1/audio/transcriptions" or _AZURE_AUDIO.match(split.path):
                    return self._transcription(recorded)
                azure = _AZURE_PATH.match(split.path)
                if split.path != "/v1/chat/completions" and not azure:
                    return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                if azure and not parse_qs(split.query).get("api-version"):
                    return self._json(404, {"error": {"code": "404", "message": "missing api-version"}})
                behaviour = fake._next()
                if behaviour.kind == "hang":
                    fake._stopping.wait(behaviour.hang_seconds)
                    return self._json(200, fake.completion(recorded.json(), ok()))
                if behaviour.kind == "status":
                    return self._json(behaviour.status, behaviour.body or {}, behaviour.headers)
                request = recorded.json()
                if request.get("stream"):
                    return self._stream(request, behaviour)
                return self._json(200, fake.completion(request, behaviour))

            def _transcription(self, recorded: Recorded) -> None:
                upload = parse_multipart(recorded.headers.get("content-type", ""), recorded.body)
                with fake._changed:
                    fake.uploads.append(upload)
                if not upload.data or not upload.fields.get("model"):
                    return self._json(400, {"error": {"message": "file and model are required", "type": "invalid"}})
                return self._json(200, {"text": fake.transcript})

            def _json(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, request: dict[str, Any], behaviour: Behaviour) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for index, chunk in enumerate(fake.chunks(request, behaviour)):
                    # Chunk 0 is the role-only chunk, so ``stall_after`` counts content chunks.
                    if behaviour.stall_after is not None and index > behaviour.stall_after:
                        fake._stopping.wait(behaviour.hang_seconds)
                        return
                    if behaviour.chunk_seconds and 0 < index and chunk["choices"] and chunk["choices"][0]["delta"]:
                        fake._stopping.wait(behaviour.chunk_seconds)
                    self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                return

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that hung up mid-response is expected under test

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and stop listening."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
