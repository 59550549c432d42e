"""A fake Azure AI Search service on loopback: just what ``azure-search-documents`` calls for knowledge.

Serves the data-plane REST API the SDK (12.x, api-version 2026-04-01) sends:

* ``PUT|GET|DELETE /indexes('{name}')``: the index definition, checked like the service checks it
  (one string key, vector fields with a profile, semantic fields that exist, no change to an
  existing field);
* ``POST /indexes('{name}')/docs/search.index``: ``upload``, ``merge``, ``mergeOrUpload`` and
  ``delete`` actions, answered 200 or 207 with a status per key (at most 1,000 actions, else 413);
* ``POST /indexes('{name}')/docs/search.post.search``: a naive text match (words in searchable
  fields, weighted by the default scoring profile) and cosine similarity on vectors, fused by RRF
  like the service; ``$filter`` of ``eq``/``ne``/``gt``/``lt`` clauses joined by ``and``;
  ``queryType: semantic`` adds a ``@search.rerankerScore`` (0-4: the share of query words found in
  the semantic configuration's fields) and reorders by it; ``select``, ``orderby``, ``top``, ``skip``.

Credentials: the ``api-key`` header must equal ``api_key``, or ``Authorization: Bearer`` carry one of
``tokens``; none is 401, a wrong one 403 (as the service answers). Every request is recorded.
``fail(...)`` scripts error statuses, ``refuse`` a status for one document's action, ``hang(...)``
a slow answer, ``down`` a 503 for everything, ``forbid_definitions`` a 403 to index changes.
``start(tls=(certfile, keyfile))`` serves HTTPS (the SDK sends bearer tokens only over TLS).
https://learn.microsoft.com/rest/api/searchservice/
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.http_server import Recorded

API_KEY = "fake-admin-key-0123456789abcdef0123456789abcdef"
_PATH = re.compile(r"^/indexes(?:\('(?P<quoted>[^']+)'\)|/(?P<plain>[^/(]+))(?P<rest>/.*)?$")
_KEY = re.compile(r"[A-Za-z0-9_\-=]{1,1024}")
_WORD = re.compile(r"\w+")
_CLAUSE = re.compile(r"^\s*(\w+)\s+(eq|ne|gt|lt|ge|le)\s+('(?:[^']|'')*'|true|false|null|-?\d+(?:\.\d+)?)\s*$")
_RRF_K = 60


class ServiceError(Exception):
    """An error answer: status and the service's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Failure:
    """A scripted error answer for the next request matching ``path_contains``."""

    status: int
    path_contains: str = ""
    retry_after: str | None = None


@dataclass
class _Index:
    definition: dict[str, Any]
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, dict[str, Any]]:
        return {f["name"]: f for f in self.definition["fields"]}

    @property
    def key(self) -> str:
        return next(f["name"] for f in self.definition["fields"] if f.get("key"))


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files in ``folder``: (certfile, keyfile).

    The certificate is its own CA: clients trust it with ``connection_verify=certfile``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "search-cert.pem", folder / "search-key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(certfile), str(keyfile)


def _words(value: Any) -> list[str]:
    if isinstance(value, list):
        return [w for item in value for w in _words(item)]
    return _WORD.findall(str(value or "").casefold())


def _literal(raw: str) -> Any:
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    return float(raw) if "." in raw else int(raw)


def _matches(document: dict[str, Any], expression: str | None, fields: dict[str, dict[str, Any]]) -> bool:
    """Whether ``document`` passes an OData filter of ``field op literal`` clauses joined by ``and``."""
    if not expression:
        return True
    for clause in re.split(r"\s+and\s+", expression.strip()):
        parsed = _CLAUSE.match(clause)
        if not parsed:
            raise ServiceError(400, "InvalidRequestParameter", f"Invalid expression: unsupported filter {clause!r}")
        name, op, raw = parsed.groups()
        if name not in fields or not fields[name].get("filterable"):
            raise ServiceError(400, "InvalidRequestParameter", f"Invalid expression: '{name}' is not filterable")
        value, wanted = document.get(name), _literal(raw)
        if op == "eq":
            ok = value == wanted
        elif op == "ne":
            ok = value != wanted
        elif value is None or wanted is None:
            ok = False
        else:
            ok = {"gt": value > wanted, "lt": value < wanted, "ge": value >= wanted, "le": value <= wanted}[op]
        if not ok:
            return False
    return True


def _cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


class FakeAzureSearch:
    """The fake service: start it, point the SDK at ``url``, then read ``indexes`` and ``requests``."""

    def __init__(self, *, api_key: str = API_KEY, tokens: tuple[str, ...] = ()) -> None:
        self.api_key = api_key
        self.tokens = set(tokens)
        self.indexes: dict[str, _Index] = {}
        self.requests: list[Recorded] = []
        self.down = False
        self.refuse: dict[str, int] = {}  # document key -> the status its indexing action gets
        self.forbid_definitions = False  # 403 to index definition changes (a data-plane-only role)
        self._failures: deque[Failure] = deque()
        self._hang_seconds = 0.0
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._scheme = "http"

    # -- scripting and inspection -------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, path_contains: str = "", retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests (whose path contains ``path_contains``) with ``status``."""
        with self._lock:
            self._failures.extend(Failure(status, path_contains, retry_after) for _ in range(times))

    def hang(self, seconds: float) -> None:
        """Hold every answer back ``seconds`` (0 to stop) or until the fake stops."""
        self._hang_seconds = seconds

    def documents(self, index: str = "knowledge") -> dict[str, dict[str, Any]]:
        """A copy of an index's documents by key."""
        with self._lock:
            return {key: dict(doc) for key, doc in self.indexes[index].documents.items()}

    def bodies(self, suffix: str) -> list[dict[str, Any]]:
        """The JSON bodies of the requests whose path (without the query) ends with ``suffix``."""
        with self._lock:
            return [r.json() for r in self.requests if urlsplit(r.path).path.endswith(suffix) and r.body]

    @property
    def url(self) -> str:
        """The service endpoint, without a trailing slash."""
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"

    # -- the service ---------------------------------------------------------------------------

    def _authorize(self, headers: dict[str, str]) -> None:
        key, bearer = headers.get("api-key"), headers.get("authorization", "")
        if key is None and not bearer:
            raise ServiceError(401, "Unauthorized", "Authentication is required.")
        if key is not None and key == self.api_key:
            return
        if bearer.startswith("Bearer ") and bearer[7:] in self.tokens:
            return
        raise ServiceError(403, "Forbidden", "Authorization failed.")

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        """One request: (status, JSON body or None)."""
        split = urlsplit(path)
        if not parse_qs(split.query).get("api-version"):
            raise ServiceError(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
        self._authorize(headers)
        route = _PATH.match(split.path)
        if not route:
            raise ServiceError(404, "ResourceNotFound", f"No resource at {split.path}")
        name = unquote(route.group("quoted") or route.group("plain"))
        rest = route.group("rest") or ""
        with self._lock:
            if rest == "" and method in ("PUT", "DELETE") and self.forbid_definitions:
                raise ServiceError(403, "Forbidden", "Authorization failed.")
            if rest == "" and method == "PUT":
                return self._put_index(name, body)
            index = self.indexes.get(name)
            if index is None:
                raise ServiceError(404, "ResourceNameNotFound", f"The index '{name}' was not found.")
            if rest == "" and method == "GET":
                return 200, index.definition
            if rest == "" and method == "DELETE":
                del self.indexes[name]
                return 204, None
            if rest == "/docs/search.index" and method == "POST":
                return self._index(index, body)
            if rest == "/docs/search.post.search" and method == "POST":
                return 200, {"value": self._search(index, body)}
        raise ServiceError(404, "ResourceNotFound", f"No resource at {split.path}")

    def _put_index(self, name: str, definition: dict[str, Any]) -> tuple[int, Any]:
        if definition.get("name") != name:
            raise ServiceError(400, "InvalidRequestParameter", "The index name in the body does not match the URL.")
        fields = definition.get("fields") or []
        keys = [f for f in fields if f.get("key")]
        if len(keys) != 1 or keys[0].get("type") != "Edm.String":
            raise ServiceError(400, "InvalidRequestParameter", "An index needs exactly one key field of Edm.String.")
        names = {f["name"] for f in fields}
        profiles = {p["name"]: p for p in (definition.get("vectorSearch") or {}).get("profiles") or []}
        algorithms = {a["name"] for a in (definition.get("vectorSearch") or {}).get("algorithms") or []}
        for f in fields:
            if f.get("type") == "Collection(Edm.Single)":
                if not 2 <= int(f.get("dimensions") or 0) <= 4096:
                    raise ServiceError(400, "InvalidField", f"Vector field '{f['name']}' needs dimensions.")
                profile = profiles.get(f.get("vectorSearchProfile") or "")
                if profile is None or profile.get("algorithm") not in algorithms:
                    raise ServiceError(400, "InvalidField", f"Vector field '{f['name']}' has no valid profile.")
        for config in (definition.get("semantic") or {}).get("configurations") or []:
            prioritized = config.get("prioritizedFields") or {}
            used = [(prioritized.get("titleField") or {}).get("fieldName")]
            used += [s["fieldName"] for s in prioritized.get("prioritizedContentFields") or []]
            used += [s["fieldName"] for s in prioritized.get("prioritizedKeywordsFields") or []]
            if any(u is not None and u not in names for u in used):
                raise ServiceError(400, "InvalidSemanticConfiguration", f"Unknown field in '{config['name']}'.")
        existing = self.indexes.get(name)
        if existing is not None:
            for old in existing.definition["fields"]:
                new = next((f for f in fields if f["name"] == old["name"]), None)
                if new is None or any(new.get(a) != old.get(a) for a in ("type", "key", "dimensions")):
                    raise ServiceError(
                        400, "CannotChangeExistingField", f"Existing field '{old['name']}' cannot be changed."
                    )
            existing.definition = definition
            return 200, definition
        self.indexes[name] = _Index(definition)
        return 201, definition

    def _index(self, index: _Index, body: dict[str, Any]) -> tuple[int, Any]:
        actions = body.get("value") or []
        if len(actions) > 1000:
            raise ServiceError(413, "RequestEntityTooLarge", "A batch may hold at most 1000 documents.")
        fields, key_name = index.fields, index.key
        for action in actions:
            unknown = set(action) - set(fields) - {"@search.action"}
            if unknown:
                raise ServiceError(400, "InvalidDocument", f"The property '{sorted(unknown)[0]}' does not exist.")
            for name, value in action.items():
                dims = fields.get(name, {}).get("dimensions")
                if dims and value is not None and len(value) != dims:
                    raise ServiceError(400, "InvalidDocument", f"'{name}' must have {dims} dimensions.")
        results = []
        for action in actions:
            kind, key = action.get("@search.action", "upload"), str(action.get(key_name, ""))
            document = {k: v for k, v in action.items() if k != "@search.action"}
            status, message = 200, None
            if not _KEY.fullmatch(key):
                status, message = 400, f"Invalid document key: '{key}'."
            elif key in self.refuse:
                status, message = self.refuse[key], "Scripted failure."
            elif kind == "delete":
                index.documents.pop(key, None)
            elif kind == "merge" and key not in index.documents:
                status, message = 404, "Document not found."
            elif kind in ("merge", "mergeOrUpload") and key in index.documents:
                index.documents[key].update(document)
            elif kind in ("upload", "mergeOrUpload"):
                status = 200 if key in index.documents else 201
                index.documents[key] = document
            else:
                status, message = 400, f"Unknown action '{kind}'."
            results.append({"key": key, "status": status < 300, "errorMessage": message, "statusCode": status})
        return (200 if all(r["status"] for r in results) else 207), {"value": results}

    def _text_scores(self, index: _Index, text: str | None, search_fields: list[str]) -> dict[str, float]:
        definition = index.definition
        texts = ("Edm.String", "Collection(Edm.String)")
        fields = [n for n, f in index.fields.items() if f.get("searchable") and f.get("type") in texts]
        fields = [n for n in fields if not search_fields or n in search_fields]
        profile: dict[str, Any] = next(
            (
                p
                for p in definition.get("scoringProfiles") or []
                if p["name"] == definition.get("defaultScoringProfile")
            ),
            {},
        )
        weights = (profile.get("text") or {}).get("weights") or {}
        terms = _words(text)
        scores: dict[str, float] = {}
        for key, document in index.documents.items():
            if not terms:  # "*" or nothing: every document, equally
                scores[key] = 1.0
                continue
            score = 0.0
            for name in fields:
                words = _words(document.get(name))
                score += float(weights.get(name, 1.0)) * sum(words.count(term) for term in terms)
            if score:
                scores[key] = score
        return scores

    def _search(self, index: _Index, body: dict[str, Any]) -> list[dict[str, Any]]:
        fields = index.fields
        allowed = {k for k, d in index.documents.items() if _matches(d, body.get("filter"), fields)}
        text = body.get("search")
        search_fields = [s.strip() for s in (body.get("searchFields") or "").split(",") if s.strip()]
        text_scores = {k: s for k, s in self._text_scores(index, text, search_fields).items() if k in allowed}
        ranked: list[dict[str, float]] = []
        vector_queries = body.get("vectorQueries") or []
        has_text = bool(_words(text)) or not vector_queries
        if has_text:
            ranked.append(text_scores)
        for query in vector_queries:
            if query.get("kind") != "vector":
                raise ServiceError(400, "InvalidRequestParameter", "Only 'vector' queries are supported.")
            name = query["fields"]
            if fields.get(name, {}).get("dimensions") != len(query["vector"]):
                raise ServiceError(400, "InvalidRequestParameter", f"The vector query does not fit '{name}'.")
            similar = {
                k: _cosine(query["vector"], index.documents[k][name]) for k in allowed if index.documents[k].get(name)
            }
            best = sorted(similar.items(), key=lambda kv: -kv[1])[: int(query.get("k") or 50)]
            ranked.append(dict(best))
        if len(ranked) == 1:
            scores = ranked[0]
        else:  # reciprocal rank fusion, as the service fuses hybrid results
            scores = {}
            for result in ranked:
                for rank, (key, _) in enumerate(sorted(result.items(), key=lambda kv: -kv[1]), start=1):
                    scores[key] = scores.get(key, 0.0) + 1.0 / (_RRF_K + rank)
        hits = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        reranker: dict[str, float] = {}
        if body.get("queryType") == "semantic":
            reranker = self._rerank(index, body, [key for key, _ in hits[:50]])
            hits = sorted(hits[:50], key=lambda kv: -reranker[kv[0]])
        if body.get("orderby"):
            name, _, direction = body["orderby"].partition(" ")
            if not fields.get(name, {}).get("sortable"):
                raise ServiceError(400, "InvalidRequestParameter", f"'{name}' is not sortable.")
            hits.sort(key=lambda kv: cast(Any, index.documents[kv[0]].get(name)), reverse=direction.strip() == "desc")
        skip, top = int(body.get("skip") or 0), int(body.get("top") or 50)
        select = [s.strip() for s in (body.get("select") or "").split(",") if s.strip()]
        visible = [n for n, f in fields.items() if f.get("retrievable", True)]
        out = []
        for key, score in hits[skip : skip + min(top, 1000)]:
            document = index.documents[key]
            row = {n: document.get(n) for n in (select or visible)}
            row["@search.score"] = score
            if key in reranker:
                row["@search.rerankerScore"] = reranker[key]
            out.append(row)
        return out

    def _rerank(self, index: _Index, body: dict[str, Any], keys: list[str]) -> dict[str, float]:
        configs = {c["name"]: c for c in (index.definition.get("semantic") or {}).get("configurations") or []}
        config = configs.get(body.get("semanticConfiguration") or "")
        if config is None:
            raise ServiceError(400, "InvalidRequestParameter", "Unknown semantic configuration.")
        prioritized = config["prioritizedFields"]
        names = [(prioritized.get("titleField") or {}).get("fieldName")]
        names += [s["fieldName"] for s in prioritized.get("prioritizedContentFields") or []]
        names += [s["fieldName"] for s in prioritized.get("prioritizedKeywordsFields") or []]
        terms = set(_words(body.get("search")))
        scores = {}
        for key in keys:
            words = {w for n in names if n for w in _words(index.documents[key].get(n))}
            scores[key] = 4.0 * len(terms & words) / len(terms) if terms else 0.0
        return scores

    # -- server ------------------------------------------------------------------------------

    def _next_failure(self, path: str) -> Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.path_contains in path:
                    self._failures.remove(failure)
                    return failure
        return None

    def start(self, *, tls: tuple[str, str] | None = None) -> FakeAzureSearch:
        """Listen on a free loopback port (HTTPS with ``tls=(certfile, keyfile)``)."""
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                headers = {key.lower(): value for key, value in self.headers.items()}
                recorded = Recorded(self.command, self.path, headers, self.rfile.read(length))
                with fake._lock:
                    fake.requests.append(recorded)
                if fake._hang_seconds:
                    fake._stopping.wait(fake._hang_seconds)
                failure = fake._next_failure(self.path)
                if fake.down or failure:
                    status = failure.status if failure else 503
                    extra = {"retry-after": failure.retry_after} if failure and failure.retry_after else {}
                    return self._json(status, {"error": {"code": "Fake", "message": f"scripted {status}"}}, extra)
                try:
                    status, body = fake.handle(self.command, self.path, headers, recorded.json())
                except ServiceError as error:
                    return self._json(error.status, {"error": {"code": error.code, "message": error.message}})
                self._json(status, body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; odata.metadata=none")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that gave up (a timeout under test) is expected

        self._server = _Server(("127.0.0.1", 0), _Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release held answers and stop listening."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
