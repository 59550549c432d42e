"""The client side of the emulator: negotiate and the WebSocket speaking the JSON hub protocol.

https://github.com/dotnet/aspnetcore/blob/main/src/SignalR/docs/specs/HubProtocol.md
https://github.com/dotnet/aspnetcore/blob/main/src/SignalR/docs/specs/TransportProtocols.md
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

import jwt
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from devhost.signalr.hub import RS, Connection, HubState, frame

log = logging.getLogger(__name__)

HUB_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_`,.\[\]]{0,127}$")
HANDSHAKE_SECONDS = 15.0  # the service's default handshake timeout
# The user claim: the SDK and emulator write asrs.s.uid; the docs and .NET name it nameid.
_USER_CLAIMS = ("asrs.s.uid", "nameid", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier")


def bearer(connection: HTTPConnection, *, query: bool = False) -> str:
    """The Bearer token from ``Authorization``, or (for browsers' sockets) the ``access_token`` query."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return connection.query_params.get("access_token", "") if query else ""


def verify(token: str, access_key: str) -> dict[str, Any] | None:
    """The claims of an HS256 token signed with the AccessKey, or None when forged or expired."""
    if not token:
        return None
    try:
        # Like the official emulator, the audience is not checked; unlike it, lifetime is.
        return jwt.decode(
            token,
            access_key.encode("utf-8"),
            algorithms=["HS256"],
            options={"verify_aud": False, "require": ["exp"]},
        )
    except jwt.PyJWTError:
        return None


def _user(claims: dict[str, Any]) -> str | None:
    for name in _USER_CLAIMS:
        if isinstance(claims.get(name), str) and claims[name]:
            return str(claims[name])
    return None


async def negotiate(request: Request) -> Response:
    """``POST /client/negotiate?hub=H``: reserve a connection for the bearer of a valid token."""
    hub = request.query_params.get("hub", "")
    if not HUB_PATTERN.match(hub):
        return PlainTextResponse("Invalid or missing hub.", status_code=400)
    claims = verify(bearer(request), request.app.state.access_key)
    if claims is None:
        return PlainTextResponse("Unauthorized.", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    entry = request.app.state.hub.negotiate(hub, _user(claims))
    return JSONResponse(
        {
            "connectionToken": entry.token,
            "connectionId": entry.connection_id,
            "negotiateVersion": 1,
            "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}],
        }
    )


async def _deny(websocket: WebSocket, status: int, text: str) -> None:
    # An HTTP status (not a 403 close) tells the client why: uvicorn supports the denial extension.
    try:
        await websocket.send_denial_response(PlainTextResponse(text, status_code=status))
    except RuntimeError:
        await websocket.close(code=1008, reason=text)


async def _receive_text(websocket: WebSocket) -> str:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("text") is not None:
        return str(message["text"])
    return bytes(message.get("bytes") or b"").decode("utf-8", errors="replace")


async def _read_handshake(websocket: WebSocket) -> tuple[str, str]:
    buffer = ""
    while RS not in buffer:
        buffer += await _receive_text(websocket)
    head, _, rest = buffer.partition(RS)
    return head, rest


def _handshake_error(text: str) -> str | None:
    try:
        request = json.loads(text)
    except ValueError:
        return "Handshake request is not valid JSON."
    if not isinstance(request, dict) or request.get("protocol") != "json":
        protocol = request.get("protocol") if isinstance(request, dict) else None
        return f"The protocol '{protocol}' is not supported."
    if request.get("version") != 1:
        return f"The server does not support version {request.get('version')} of the 'json' protocol."
    return None


async def client_socket(websocket: WebSocket) -> None:
    """``/client/?hub=H&id=T``: refuse unknown (404), unauthorized (401) and duplicate (409) sockets."""
    state: HubState = websocket.app.state.hub
    entry = state.pending.get(websocket.query_params.get("id", ""))
    if entry is None or websocket.query_params.get("hub", "").lower() != entry.hub:
        await _deny(websocket, 404, "No Connection with that ID")
        return
    if verify(bearer(websocket, query=True), websocket.app.state.access_key) is None:
        await _deny(websocket, 401, "Unauthorized.")
        return
    if entry.attached:
        await _deny(websocket, 409, "Connection ID is already in use.")
        return
    entry.attached = True
    connection: Connection | None = None
    try:
        await websocket.accept()
        head, rest = await asyncio.wait_for(_read_handshake(websocket), HANDSHAKE_SECONDS)
        error = _handshake_error(head)
        if error is not None:
            await websocket.send_text(frame({"error": error}))
            await websocket.close()
            return
        connection = state.attach(entry)
        await websocket.send_text("{}" + RS)
        log.info("connection %s (hub %s) connected", connection.connection_id, connection.hub)
        await _serve(websocket, connection, rest)
    except (WebSocketDisconnect, TimeoutError):
        pass
    finally:
        state.detach(entry.token, connection)
        if connection is not None:
            log.info("connection %s disconnected", connection.connection_id)


async def _serve(websocket: WebSocket, connection: Connection, rest: str) -> None:
    tasks = [
        asyncio.create_task(_write(websocket, connection)),
        asyncio.create_task(_ping(connection, websocket.app.state.ping_seconds)),
    ]
    try:
        buffer = rest
        while True:
            *messages, buffer = buffer.split(RS)
            for text in messages:
                if not _handle(connection, text):
                    connection.close()
                    await tasks[0]  # let the writer flush and close
                    return
            if tasks[0].done():  # the writer closed the socket (REST delete or a dead peer)
                return
            receive = asyncio.ensure_future(_receive_text(websocket))
            done, _ = await asyncio.wait({receive, tasks[0]}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await receive
                return
            buffer += receive.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _handle(connection: Connection, text: str) -> bool:
    """React to one client message; False when the connection should close."""
    try:
        message = json.loads(text)
        kind = message["type"]
    except (ValueError, KeyError, TypeError):
        connection.send(frame({"type": 7, "error": "Connection closed with an error: invalid message."}))
        return False
    if kind == 7:
        return False
    if kind in (1, 4) and message.get("invocationId"):
        # Serverless mode has no hub methods; an invocation waiting for a result must not hang.
        target = message.get("target", "")
        error = f"Invocation of '{target}' failed: the service is in serverless mode and has no upstream."
        connection.send(frame({"type": 3, "invocationId": message["invocationId"], "error": error}))
    return True  # pings, completions, cancels and fire-and-forget invocations need nothing


async def _write(websocket: WebSocket, connection: Connection) -> None:
    while True:
        text = await connection.outbox.get()
        if text is None:
            with contextlib.suppress(Exception):
                await websocket.close()
            return
        # Coalesce what is already queued: one frame may carry many messages, which keeps fan-out cheap.
        closing = False
        while not connection.outbox.empty():
            more = connection.outbox.get_nowait()
            if more is None:
                closing = True
                break
            text += more
        await websocket.send_text(text)
        if closing:
            with contextlib.suppress(Exception):
                await websocket.close()
            return


async def _ping(connection: Connection, seconds: float) -> None:
    # The client gives up after 30 s of silence (serverTimeoutInMilliseconds), so ping every 15 s.
    text = frame({"type": 6})
    while True:
        await asyncio.sleep(seconds)
        connection.send(text)
