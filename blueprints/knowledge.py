"""Knowledge base endpoints (admin key or dashboard cookie): sources (text, Q&A) and search over them."""

from __future__ import annotations

from typing import Annotated

import azure.functions as func
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, field_validator

from shared.config import get_settings
from shared.identity.admin import require_admin
from shared.knowledge import searching, sources
from shared.web.http import NO_STORE, decode_cursor, encode_cursor, endpoint, json_response, query_int, read_json
from shared.web.idempotency import request_key

bp = func.Blueprint()

_ORDERING = "knowledge-sources"

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


class PairIn(BaseModel):
    """One question and its answer."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    question: Question
    answer: Answer


class SourceIn(BaseModel):
    """A new source: ``{"type": "text", "title", "text"}`` or ``{"type": "qa", "title", "pairs"}``."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    type: str
    title: Title
    text: Text | None = None
    pairs: list[PairIn] | None = Field(default=None, min_length=1, max_length=sources.MAX_PAIRS)

    @field_validator("type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in sources.SUPPORTED_TYPES:
            raise ValueError(sources.unsupported_type_message(value))
        return value


class SourcePatch(BaseModel):
    """A JSON merge patch of a source: absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    title: Title | None = None
    enabled: StrictBool | None = None


@bp.route(route="knowledge/sources", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_sources(req: func.HttpRequest) -> func.HttpResponse:
    """GET: the sources, oldest first, paged (``limit``, ``cursor``). POST: add a text or Q&A source."""
    await require_admin(req)
    if req.method.upper() == "POST":
        body = read_json(req, SourceIn, max_bytes=2 * get_settings().max_body_bytes)
        pairs = [(pair.question, pair.answer) for pair in body.pairs] if body.pairs is not None else None
        request = request_key(req.headers.get("idempotency-key"), "POST", "knowledge/sources", body.model_dump())
        created = await sources.add_source_once(request, body.type, body.title, text=body.text, pairs=pairs)
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
    """One source: GET it, PATCH ``title``/``enabled`` (merge semantics), DELETE it and its chunks."""
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


@bp.route(route="knowledge/search", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def knowledge_search(req: func.HttpRequest) -> func.HttpResponse:
    """The chunks of enabled sources that best answer ``q`` (``top`` 1-20, default 5)."""
    await require_admin(req)
    top = query_int(req, "top", default=5, low=1, high=20)
    results = await searching.search(req.params.get("q") or "", top)
    return json_response({"results": results}, headers=NO_STORE)
