"""Approval cards: the agents' routes (Teams SSO) and the queue trigger that sends ``auto-after`` cards."""

from __future__ import annotations

import logging
from typing import Annotated

import azure.functions as func
from pydantic import AfterValidator, BaseModel, Field

from shared.config import get_settings
from shared.conversations import approvals
from shared.conversations.card import REPHRASED, TOLD
from shared.identity.teams import authenticate_agent
from shared.ops.bootstrap import bootstrapped
from shared.storage.approvals import AutoSendNotice
from shared.storage.tables import APPROVALS_QUEUE
from shared.web.http import NO_STORE, MessageText, endpoint, json_response, query_int, read_json
from shared.web.idempotency import RequestKey, request_key
from shared.web.static_files import serve

bp = func.Blueprint()
log = logging.getLogger(__name__)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    return value


Instruction = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_not_blank)]


class SendIn(BaseModel):
    """Send the card; ``text`` replaces the draft (the agent's edit)."""

    text: MessageText | None = None


class InstructionIn(BaseModel):
    """What the bot should do differently."""

    instruction: Instruction


def _card_id(req: func.HttpRequest) -> str:
    return req.route_params.get("id", "")


def _request_key(req: func.HttpRequest, action: str, body: object = None) -> RequestKey | None:
    """The Idempotency-Key of a decision on a card (fingerprinted with the card and the action)."""
    return request_key(req.headers.get("idempotency-key"), "POST", f"agent/approvals/{_card_id(req)}/{action}", body)


@bp.route(route="agent/approvals", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def approvals_list(req: func.HttpRequest) -> func.HttpResponse:
    """Pending approval cards, oldest first, with the conversation and citations behind each draft."""
    await authenticate_agent(req)
    limit = query_int(req, "limit", default=50, low=1, high=200)
    body = await approvals.list_cards(
        status=req.params.get("status") or "pending", limit=limit, cursor=req.params.get("cursor") or None
    )
    return json_response(body, headers=NO_STORE)


@bp.route(route="agent/approvals/{id}/send", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def approvals_send(req: func.HttpRequest) -> func.HttpResponse:
    """Send the card's reply to the visitor, as drafted or edited (409 when it was already handled)."""
    agent = await authenticate_agent(req)
    body = read_json(req, SendIn, max_bytes=get_settings().max_body_bytes, optional=True)
    request = _request_key(req, "send", body.text)
    return json_response(await approvals.send(agent, _card_id(req), body.text, request), headers=NO_STORE)


@bp.route(route="agent/approvals/{id}/dismiss", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def approvals_dismiss(req: func.HttpRequest) -> func.HttpResponse:
    """Drop the card: nothing is sent (409 when it was already handled)."""
    agent = await authenticate_agent(req)
    request = _request_key(req, "dismiss")
    return json_response(await approvals.dismiss(agent, _card_id(req), request), headers=NO_STORE)


@bp.route(route="agent/approvals/{id}/rephrase", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def approvals_rephrase(req: func.HttpRequest) -> func.HttpResponse:
    """The bot drafts the reply again following the instruction: a new card replaces this one."""
    return await _redraft(req, "rephrase", REPHRASED)


@bp.route(route="agent/approvals/{id}/tell-ai", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
@bootstrapped
async def approvals_tell_ai(req: func.HttpRequest) -> func.HttpResponse:
    """An instruction the bot follows for the rest of the conversation; it drafts the reply again."""
    return await _redraft(req, "tell-ai", TOLD)


async def _redraft(req: func.HttpRequest, action: str, kind: str) -> func.HttpResponse:
    """Rephrase and tell-AI alike: the agent's instruction, and the bot drafts the card again."""
    agent = await authenticate_agent(req)
    body = read_json(req, InstructionIn, max_bytes=get_settings().max_body_bytes)
    request = _request_key(req, action, body.instruction)
    answer = await approvals.redraft(agent, _card_id(req), kind, body.instruction, request)
    return json_response(answer, headers=NO_STORE)


@bp.route(route="agent-approvals.js", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def approvals_script(req: func.HttpRequest) -> func.HttpResponse:
    """The agent console's approval cards panel."""
    return serve(req, "agent-approvals.js", max_age=300)


@bp.queue_trigger(arg_name="msg", queue_name=APPROVALS_QUEUE, connection="AzureWebJobsStorage")
async def approvals_auto_send(msg: func.QueueMessage) -> None:
    """Send an ``auto-after`` card whose delay ran out, if it is still pending (raising lets the host retry)."""
    try:
        notice = AutoSendNotice.decode(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        log.warning("approvals message %s is not an auto-send notice; dropped", msg.id)
        return
    sent = await approvals.auto_send(notice.card_id)
    log.info("auto-send of card %s: %s", notice.card_id, "sent" if sent else "already handled")
