"""A small Function App exercising the host: route templates, sync/async, bodies, a timer, queues."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient
from pydantic import BaseModel, Field

from shared.web.http import endpoint, json_response, read_json

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
logging.getLogger("azure").setLevel(logging.WARNING)  # as function_app.py: no line per Storage request


def _echo(req: func.HttpRequest, name: str) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(
            {"function": name, "route": dict(req.route_params), "method": req.method, "query": dict(req.params)}
        ),
        mimetype="application/json",
    )


@app.route(route="items/{id:int}", methods=["GET", "DELETE"])
async def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "item_by_id")


@app.route(route="items/new", methods=["GET"])
def item_new(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "item_new")


@app.route(route="items/{name:alpha:minlength(3)}", methods=["GET"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "item_by_name")


@app.route(route="pages/{page?}", methods=["GET"])
async def pages(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "pages")


@app.route(route="files/{*rest}", methods=["GET"])
async def files(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "files")


@app.route(methods=["GET"])
async def bare_name(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, "bare_name")


class Greeting(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    times: int = Field(ge=1, le=3)


@app.route(route="greet", methods=["POST"])
@endpoint
async def greet(req: func.HttpRequest) -> func.HttpResponse:
    body = read_json(req, Greeting, max_bytes=256)
    return json_response({"greeting": " ".join([f"hello {body.name}"] * body.times)})


@app.route(route="crash", methods=["GET"])
@endpoint
async def crash(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internals: connection string AccountKey=abc")


@app.route(route="settings/{name}", methods=["GET"])
def setting(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(os.environ.get(req.route_params["name"], "<unset>"))


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def tick(timer: func.TimerRequest) -> None:
    # Each run appends one line, so the test can see how often and how it fired.
    with Path(os.environ["TICK_FILE"]).open("a", encoding="utf-8") as out:
        out.write(json.dumps({"past_due": timer.past_due}) + "\n")


def _record(msg: func.QueueMessage, queue: str) -> None:
    """One row per delivery in Azurite's ``queueruns`` table, keyed by queue, so a test can see them."""
    table = TableClient.from_connection_string(os.environ["AzureWebJobsStorage"], "queueruns")
    with contextlib.suppress(ResourceExistsError):
        table.create_table()
    table.upsert_entity(
        {
            "PartitionKey": queue,
            "RowKey": f"{msg.id}-{msg.dequeue_count}",
            "message_id": msg.id,
            "body_hex": msg.get_body().hex(),
            "dequeue_count": msg.dequeue_count,
            "pop_receipt": msg.pop_receipt or "",
            "inserted": msg.insertion_time is not None,
        }
    )


def _fail_if_asked(msg: func.QueueMessage) -> None:
    # A body "fail:N" fails the first N deliveries; "fail:always" every one.
    body = msg.get_body()
    if body.startswith(b"fail:"):
        times = body.removeprefix(b"fail:")
        if times == b"always" or (msg.dequeue_count or 0) <= int(times):
            raise RuntimeError(f"failing delivery {msg.dequeue_count} as asked")


@app.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    _record(msg, os.environ["WORK_QUEUE"])
    _fail_if_asked(msg)


@app.queue_trigger(arg_name="item", queue_name="%AUDIT_QUEUE%", connection="AzureWebJobsStorage")
async def audit(item: func.QueueMessage) -> None:
    await asyncio.to_thread(_record, item, os.environ["AUDIT_QUEUE"])
    _fail_if_asked(item)
