"""Knowledge base endpoints (admin key or dashboard cookie): sources, their pages, sync, search, and
trying a question on the bot; the queue trigger that indexes url, sitemap and file sources, and the
timer that refreshes them."""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Literal

import azure.functions as func
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from shared.config import get_settings
from shared.errors import Problem
from shared.identity.admin import require_admin
from shared.knowledge import searching, sources
from shared.storage.tables import KNOWLEDGE_QUEUE
from shared.web.http import NO_STORE, decode_cursor, encode_cursor, endpoint, json_response, query_int, read_json
from shared.web.idempotency import request_key

bp = func.Blueprint()
log = logging.getLogger(__name__)

_ORDERING = "knowledge-sources"
_PAGES_ORDERING = "knowledge-pages"
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries, headers and the title around the file itself

Title = Annotated[
    str,
    Field(min_length=1, max_length=sources.MAX_TITLE_CHARS),
    AfterValidator(sources.not_blank),
    AfterValidator(sources.storable),
]
Text = Annotated[str, AfterValidator(sources.not_blank), AfterValidator(sources.storable)]  # size: 413 in the use case
Question = Annotated[
    str,
    Field(min_length=1, max_length=sources.MAX_QUESTION_CHARS),
    AfterValidator(sources.not_blank),
    AfterValidator(sources.storable),
]
Answer = Annotated[
    str,
    Field(min_length=1, max_length=sources.MAX_ANSWER_CHARS),
    AfterValidator(sources.not_blank),
    AfterValidator(sources.storable),
]
Url = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(sources.storable)]
Refresh = Literal["manual", "daily", "weekly"]


class PairIn(BaseModel):
    """One question and its answer."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    question: Question
    answer: Answer


class SourceIn(BaseModel):
    """A new source: text (``title``, ``text``), qa (``title``, ``pairs``), url or sitemap (``url``, ``maxPages``)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    type: str
    title: Title | None = None
    text: Text | None = None
    pairs: list[PairIn] | None = Field(default=None, min_length=1, max_length=sources.MAX_PAIRS)
    url: Url | None = None
    max_pages: StrictInt | None = Field(default=None, alias="maxPages")
    refresh: Refresh | None = None

    @field_validator("type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in sources.SUPPORTED_TYPES:
            raise ValueError(sources.unsupported_type_message(value))
        return value

    def problem(self) -> Problem | None:
        """The first field that doesn't belong with this type, or is missing for it."""
        fetched = self.type in sources.FETCHED_TYPES
        needs = {"text": ("title", "text"), "qa": ("title", "pairs")}.get(self.type, ("url",))
        for name in needs:
            if getattr(self, name) is None:
                return sources.invalid(name, f"is required for a source of type {self.type!r}")
        for name, value, belongs in (
            ("text", self.text, self.type == "text"),
            ("pairs", self.pairs, self.type == "qa"),
            ("url", self.url, fetched),
            ("maxPages", self.max_pages, fetched),
            ("refresh", self.refresh, fetched),
        ):
            if value is not None and not belongs:
                return sources.invalid(name, f"is not used by a source of type {self.type!r}")
        return None


class QuestionIn(BaseModel):
    """A question to try on the bot from the dashboard."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    question: Annotated[
        str,
        Field(min_length=1, max_length=searching.MAX_QUERY_CHARS),
        AfterValidator(sources.not_blank),
        AfterValidator(sources.storable),
    ]


class SourcePatch(BaseModel):
    """A JSON merge patch of a source: absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    title: Title | None = None
    enabled: StrictBool | None = None
    refresh: Refresh | None = None


def _is_form(req: func.HttpRequest) -> bool:
    return (req.headers.get("content-type") or "").lower().startswith("multipart/form-data")


def read_upload(req: func.HttpRequest) -> tuple[bytes, str, str, str | None]:
    """The ``file`` (bytes, name, media type) and optional ``title`` of a multipart/form-data body."""
    limit = get_settings().knowledge.max_file_bytes
    size = len(req.get_body() or b"")
    if size > limit + _FORM_OVERHEAD:
        raise sources.invalid("file", f"is larger than the limit of {limit} bytes (KNOWLEDGE_MAX_FILE_BYTES)", 413)
    files, form = req.files, req.form
    unknown = sorted({*files.keys(), *form.keys()} - {"file", "title"})
    if unknown:
        raise sources.invalid(unknown[0], "is not a field of a file upload (send 'file' and optionally 'title')")
    upload = files.get("file")
    if upload is None:
        if "file" in form:
            raise sources.invalid("file", "must be a file part (with a filename), not a text field")
        raise sources.invalid("file", f"is required: the document to add ({sources.FILE_KINDS})")
    title = form.get("title")
    if title is not None:
        title = title.strip()
        if not title or len(title) > sources.MAX_TITLE_CHARS or not sources.is_storable(title):
            raise sources.invalid("title", f"must be 1 to {sources.MAX_TITLE_CHARS} characters of text")
    return upload.read(), sources.file_name_of(upload.filename or ""), (upload.mimetype or "").lower(), title


async def _create(req: func.HttpRequest) -> dict[str, object]:
    key = req.headers.get("idempotency-key")
    if _is_form(req):
        data, name, media_type, title = read_upload(req)
        fingerprint = {"file": hashlib.sha256(data).hexdigest(), "name": name, "title": title}
        request = request_key(key, "POST", "knowledge/sources", fingerprint)
        return await sources.add_source_once(
            request, lambda: sources.add_file_source(data, name, media_type, title=title)
        )
    body = read_json(req, SourceIn, max_bytes=2 * get_settings().max_body_bytes)
    if (problem := body.problem()) is not None:
        raise problem
    request = request_key(key, "POST", "knowledge/sources", body.model_dump(by_alias=True))
    if body.type in sources.FETCHED_TYPES:
        assert body.url is not None  # checked by problem()
        url = body.url
        return await sources.add_source_once(
            request,
            lambda: sources.add_site_source(
                body.type, url, title=body.title, max_pages=body.max_pages, refresh=body.refresh or "manual"
            ),
        )
    pairs = [(pair.question, pair.answer) for pair in body.pairs] if body.pairs is not None else None
    title = body.title or ""
    return await sources.add_source_once(
        request, lambda: sources.add_source(body.type, title, text=body.text, pairs=pairs)
    )


@bp.route(route="knowledge/sources", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_sources(req: func.HttpRequest) -> func.HttpResponse:
    """GET: the sources, oldest first, paged (``limit``, ``cursor``). POST: add a source (JSON or a file upload)."""
    await require_admin(req)
    if req.method.upper() == "POST":
        created = await _create(req)
        location = f"/api/knowledge/sources/{created['id']}"
        return json_response(created, 201, headers={**NO_STORE, "Location": location})
    limit = query_int(req, "limit", default=50, low=1, high=200)
    after = decode_cursor(req.params.get("cursor"), _ORDERING)
    items, next_key = await sources.list_sources(limit, after)
    page = {"sources": items, "nextCursor": encode_cursor(next_key, _ORDERING) if next_key else None}
    return json_response(page, headers=NO_STORE)


@bp.route(route="knowledge/sources/{id}", methods=["GET", "PATCH", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_source(req: func.HttpRequest) -> func.HttpResponse:
    """One source: GET it, PATCH ``title``/``enabled``/``refresh`` (merge semantics), DELETE it with its content."""
    await require_admin(req)
    source_id = req.route_params.get("id", "")
    method = req.method.upper()
    if method == "PATCH":
        patch = read_json(req, SourcePatch, max_bytes=4096)
        return json_response(
            await sources.update_source(source_id, patch.model_dump(exclude_unset=True)), headers=NO_STORE
        )
    if method == "DELETE":
        await sources.delete_source(source_id)
        return func.HttpResponse(status_code=204, headers=dict(NO_STORE))
    return json_response(await sources.get_source(source_id), headers=NO_STORE)


@bp.route(route="knowledge/sources/{id}/sync", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_source_sync(req: func.HttpRequest) -> func.HttpResponse:
    """Fetch a url or sitemap source again, or re-read a file source (a multipart ``file`` replaces it): 202."""
    await require_admin(req)
    upload = None
    if _is_form(req):
        data, name, media_type, title = read_upload(req)
        if title is not None:
            raise sources.invalid("title", "is changed with PATCH, not with a sync")
        upload = (data, name, media_type)
    source = await sources.sync_source(req.route_params.get("id", ""), upload)
    return json_response(source, 202, headers=NO_STORE)


@bp.route(route="knowledge/sources/{id}/pages", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_source_pages(req: func.HttpRequest) -> func.HttpResponse:
    """The pages of a url, sitemap or file source as last synced, with each page's status and error."""
    await require_admin(req)
    limit = query_int(req, "limit", default=100, low=1, high=500)
    after = decode_cursor(req.params.get("cursor"), _PAGES_ORDERING)
    items, next_key = await sources.list_pages(req.route_params.get("id", ""), limit, after)
    page = {"pages": items, "nextCursor": encode_cursor(next_key, _PAGES_ORDERING) if next_key else None}
    return json_response(page, headers=NO_STORE)


@bp.route(route="knowledge/search", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_search(req: func.HttpRequest) -> func.HttpResponse:
    """The chunks of enabled sources that best answer ``q`` (``top`` 1-20, default 5)."""
    await require_admin(req)
    top = query_int(req, "top", default=5, low=1, high=20)
    results = await searching.search(req.params.get("q") or "", top)
    return json_response({"results": results}, headers=NO_STORE)


@bp.route(route="knowledge/test", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_test(req: func.HttpRequest) -> func.HttpResponse:
    """Ask the bot ``question`` as a visitor would: the excerpts it read and its answer; no conversation is kept."""
    from shared.knowledge.preview import preview_answer

    await require_admin(req)
    body = read_json(req, QuestionIn, max_bytes=16 * 1024)
    return json_response(await preview_answer(body.question.strip()), headers=NO_STORE)


@bp.queue_trigger(arg_name="msg", queue_name=KNOWLEDGE_QUEUE, connection="AzureWebJobsStorage")
async def knowledge_ingest(msg: func.QueueMessage) -> None:
    """Index one url, sitemap or file source; raising (a Storage outage) lets the host retry the notice."""
    from shared.knowledge.ingestion import run_job
    from shared.storage.knowledge import IngestNotice

    try:
        notice = IngestNotice.decode(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        log.warning("knowledge message %s is not a notice; dropped", msg.id)
        return
    outcome = await run_job(notice)
    log.info("knowledge source %s: %s", notice.source_id, outcome)


# Every five minutes at second 15: away from the minute timers at seconds 0, 30 and 45.
@bp.timer_trigger(schedule="15 */5 * * * *", arg_name="timer", run_on_startup=False, use_monitor=False)
async def knowledge_refresh(timer: func.TimerRequest) -> None:
    """Start due daily/weekly refreshes; re-send lost notices; retry or fail jobs a crash left behind."""
    from shared.knowledge.ingestion import refresh_sources

    run = await refresh_sources()
    if run.refreshed or run.requeued or run.failed:
        log.info("knowledge refresh: %s refreshed, %s re-queued, %s failed", run.refreshed, run.requeued, run.failed)
