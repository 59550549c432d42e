"""An ASGI Functions host: serves ``function_app.app``'s HTTP triggers, fires its timers, polls its queues.

Routes are ``/<routePrefix>/<route>`` with ASP.NET templates; a path that matches a template but
not its methods gets 405. ``POST /admin/functions/<name>`` runs a non-HTTP function now, as the
real host's admin API does (locally it is not key-protected, like Core Tools); a queue function
gets the body's ``input`` as its message.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devhost.queues import QueueFunction, QueueOptions, QueuePoller, manual_message
from devhost.routing import RouteTemplate
from devhost.settings import is_disabled, resolve_app_setting, route_prefix
from devhost.timers import TimerFunction

log = logging.getLogger("devhost")
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@dataclass
class HttpFunction:
    """One HTTP-triggered function."""

    name: str
    template: RouteTemplate
    methods: set[str]
    arg_name: str
    user_function: Callable[..., Any]


@dataclass
class FunctionIndex:
    """The app's functions, as the host indexed them."""

    prefix: str
    http: list[HttpFunction] = field(default_factory=list)
    timers: dict[str, TimerFunction] = field(default_factory=dict)
    queues: dict[str, QueueFunction] = field(default_factory=dict)

    def resolve(self, method: str, path: str) -> tuple[HttpFunction | None, dict[str, str], set[str]]:
        """(function, route params, allowed methods); function None with methods set means 405."""
        prefix = f"/{self.prefix}" if self.prefix else ""
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return None, {}, set()
        relative = path[len(prefix) :]
        matches = [(fn, params) for fn in self.http if (params := fn.template.match(relative)) is not None]
        if not matches:
            return None, {}, set()
        best = min(fn.template.precedence for fn, _ in matches)
        top = [(fn, params) for fn, params in matches if fn.template.precedence == best]
        for fn, params in top:
            if method in fn.methods:
                return fn, params, fn.methods
        allowed = set().union(*(fn.methods for fn, _ in top))
        return None, {}, allowed


def load_app(spec: str, app_dir: Path) -> func.FunctionApp:
    """Import ``module:attribute`` from the app directory."""
    module_name, _, attribute = spec.partition(":")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    module = importlib.import_module(module_name)
    return getattr(module, attribute or "app")


def index_functions(app: func.FunctionApp, prefix: str) -> FunctionIndex:
    """Index HTTP, timer and queue triggers; disabled functions are left out."""
    index = FunctionIndex(prefix)
    for function in app.get_functions():
        name = str(function.get_function_name())
        if is_disabled(name):
            log.info("function %s is disabled", name)
            continue
        trigger: Any = function.get_trigger()
        user_function = function.get_user_function()
        if trigger is None:
            continue
        if trigger.get_binding_name() == "httpTrigger":
            methods = {str(getattr(m, "value", m)).upper() for m in (trigger.methods or ALL_METHODS)}
            route = trigger.route or name
            index.http.append(HttpFunction(name, RouteTemplate.parse(route), methods, trigger.name, user_function))
        elif trigger.get_binding_name() == "timerTrigger":
            timer = TimerFunction(
                name=name,
                schedule=resolve_app_setting(trigger.schedule),
                arg_name=trigger.name,
                user_function=user_function,
                run_on_startup=bool(trigger.run_on_startup),
            )
            timer.validate()
            index.timers[name] = timer
        elif trigger.get_binding_name() == "queueTrigger":
            queue = QueueFunction(
                name=name,
                queue_name=resolve_app_setting(trigger.queue_name),
                connection=trigger.connection or "AzureWebJobsStorage",
                arg_name=trigger.name,
                user_function=user_function,
            )
            queue.validate()
            index.queues[name] = queue
    return index


def _problem(status: int, detail: str, path: str, correlation: str, headers: dict[str, str] | None = None) -> Response:
    titles = {404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
    body = {
        "type": f"https://supportdesk.dev/problems/{titles[status].lower().replace(' ', '-')}",
        "title": titles[status],
        "status": status,
        "detail": detail,
        "instance": path,
        "correlationId": correlation,
    }
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers={"x-correlation-id": correlation, **(headers or {})},
    )


def _to_starlette(result: Any) -> Response:
    if result is None:
        return Response(status_code=204)
    if isinstance(result, str):
        return Response(result, media_type="text/plain")
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"a function returned {type(result).__name__}, not HttpResponse")
    headers = dict(result.headers.items())
    if not any(k.lower() == "content-type" for k in headers) and result.mimetype:
        charset = (
            f"; charset={result.charset}"
            if result.charset and result.mimetype.startswith(("text/", "application/"))
            else ""
        )
        headers["Content-Type"] = f"{result.mimetype}{charset}"
    return Response(result.get_body(), status_code=result.status_code, headers=headers)


class AnyPathConvertor(Convertor[str]):
    """Starlette's ``path`` with newlines too (an encoded CR or LF in a segment must reach the app)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPathConvertor())


def build_asgi(index: FunctionIndex, queue_options: QueueOptions | None = None) -> Starlette:
    """The ASGI app serving ``index``, with timers and queue pollers started in its lifespan."""
    options = queue_options or QueueOptions()

    async def dispatch(request: Request) -> Response:
        correlation = request.headers.get("x-correlation-id") or str(uuid.uuid4())
        path = request.url.path
        fn, params, allowed = index.resolve(request.method, path)
        if fn is None:
            if allowed:
                return _problem(
                    405,
                    f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}.",
                    path,
                    correlation,
                    {"Allow": ", ".join(sorted(allowed))},
                )
            return _problem(404, "No such endpoint.", path, correlation)
        body = await request.body()
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        # Like the Azure front end, append the connecting address to X-Forwarded-For.
        peer = request.client.host if request.client else "127.0.0.1"
        forwarded = headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {peer}" if forwarded else peer
        req = func.HttpRequest(
            request.method,
            str(request.url),
            headers=headers,
            params=dict(request.query_params),
            route_params=params,
            body=body,
        )
        try:
            if inspect.iscoroutinefunction(fn.user_function):
                result = await fn.user_function(**{fn.arg_name: req})
            else:
                result = await run_in_threadpool(fn.user_function, **{fn.arg_name: req})
            return _to_starlette(result)
        except Exception:
            log.exception("function %s failed", fn.name)
            return _problem(500, "The function failed.", path, correlation)

    async def run_function(request: Request) -> Response:
        name = request.path_params["name"].lower()
        timer = next((t for n, t in index.timers.items() if n.lower() == name), None)
        queue = next((q for n, q in index.queues.items() if n.lower() == name), None)
        if timer is None and queue is None:
            return Response(status_code=404)
        try:
            if queue is not None:
                try:
                    payload = json.loads(await request.body() or b"{}")
                except ValueError:
                    payload = {}
                text = payload.get("input") if isinstance(payload, dict) else None
                await queue.invoke(manual_message(text if isinstance(text, str) else ""))
            elif timer is not None:
                await timer.invoke(past_due=False, next_run=None)
        except Exception:
            log.exception("function %s failed", request.path_params["name"])
            return Response(json.dumps({"status": "failed"}), status_code=500, media_type="application/json")
        return Response(json.dumps({"status": "completed"}), status_code=202, media_type="application/json")

    async def host_status(_: Request) -> Response:
        body = {"state": "Running", "functions": [f.name for f in index.http] + list(index.timers) + list(index.queues)}
        return Response(json.dumps(body), media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(timer.run_forever()) for timer in index.timers.values()]
        tasks += [asyncio.create_task(QueuePoller(queue, options).run_forever()) for queue in index.queues.values()]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    routes = [
        Route("/admin/functions/{name}", run_function, methods=["POST"]),
        Route("/admin/host/status", host_status, methods=["GET"]),
        Route("/{path:anypath}", dispatch, methods=ALL_METHODS),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def create_host(app_dir: Path, spec: str = "function_app:app") -> tuple[Starlette, FunctionIndex]:
    """Load the app from ``app_dir`` and build the ASGI host for it."""
    app = load_app(spec, app_dir)
    index = index_functions(app, route_prefix(app_dir / "host.json"))
    return build_asgi(index, QueueOptions.from_host_json(app_dir / "host.json")), index
