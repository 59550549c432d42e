"""Streamed replies: time to the first visible words against the whole reply's time.

A fake OpenAI server writes a 30-word reply at a fixed rate (one word every 50 ms, about 1.5 s in
all). The app runs live (the SignalR emulator); a visitor connected like the widget (its own
negotiate, the real WebSocket handshake) posts turns and the clock notes when the first
``ChatMessageDelta`` arrives, when the last one does, when the final ``ChatMessageReceived``
arrives and when the HTTP answer does. Also printed: the SSE route's first ``delta`` event (it
is written when the turn ends, so its ratio is about 1). Not a pass/fail test.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devhost.azurite import start_azurite  # noqa: E402
from devhost.processes import ROOT, free_port, wait_for_port  # noqa: E402
from devhost.signalr import start_emulator  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, ok  # noqa: E402

ORIGIN = "https://bench.example"
RS = "\x1e"
WORD_SECONDS = 0.05
ANSWER = " ".join(f"word{i}" for i in range(30)) + "."
TURNS = 8


async def widget_connection(http: httpx.AsyncClient, auth: dict[str, str]) -> Any:
    """Negotiate through the app like the widget and open the emulator's WebSocket."""
    grant = (await http.post("/negotiate", headers=auth)).json()
    headers = {"Authorization": f"Bearer {grant['accessToken']}"}
    reply = await http.post(grant["url"].replace("/client/?", "/client/negotiate?"), headers=headers)
    reply.raise_for_status()
    ws_url = grant["url"].replace("http", "ws", 1) + f"&id={reply.json()['connectionToken']}"
    ws = await connect(ws_url, additional_headers=headers)
    await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
    if await ws.recv() != "{}" + RS:
        raise RuntimeError("handshake refused")
    return ws


async def one_turn(http: httpx.AsyncClient, ws: Any, auth: dict[str, str], text: str) -> dict[str, float]:
    """Times (s from the request) of the first and last delta, the final message and the HTTP answer."""
    marks: dict[str, float] = {}
    ids: set[str] = set()
    started = time.perf_counter()

    async def listen() -> None:
        async for frame in ws:
            for raw in str(frame).split(RS):
                if not raw:
                    continue
                message = json.loads(raw)
                if message.get("type") != 1:
                    continue
                now = time.perf_counter() - started
                if os.environ.get("BENCH_DEBUG"):
                    print(message["target"], str(message["arguments"])[:100])
                args = message["arguments"][0]
                if message["target"] == "ChatMessageDelta":
                    ids.add(args["messageId"])
                    marks.setdefault("first", now)
                    marks["last"] = now
                    marks["deltas"] = marks.get("deltas", 0) + 1
                elif message["target"] == "ChatMessageReceived" and args["messageId"] in ids:
                    marks["final"] = now  # the stored reply (a repeated push of an older one is skipped)
                    return

    listener = asyncio.create_task(listen())
    response = await http.post("/chat", json={"message": text}, headers=auth)
    marks["http"] = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(response.text)
    await asyncio.wait_for(listener, 10)
    return marks


async def sse_turn(http: httpx.AsyncClient, auth: dict[str, str]) -> tuple[float, float]:
    """Seconds to the SSE route's first delta event and to its end."""
    started = time.perf_counter()
    first = 0.0
    headers = {**auth, "Accept": "text/event-stream"}
    async with http.stream("POST", "/chat", json={"message": "shipping, streamed?"}, headers=headers) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: {") and '"delta"' in line and not first:
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def measure(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        session = (await http.post("/widget/session", json={}, headers={"Origin": ORIGIN})).json()
        auth = {"Authorization": f"Bearer {session['token']}"}
        ws = await widget_connection(http, auth)
        await one_turn(http, ws, auth, "warm up")
        turns = [await one_turn(http, ws, auth, f"shipping question {i}") for i in range(TURNS)]
        await ws.close()
        sse = [await sse_turn(http, auth) for _ in range(3)]

    def med(key: str) -> float:
        return statistics.median(t[key] for t in turns) * 1000

    first, last, final, whole = med("first"), med("last"), med("final"), med("http")
    writing = len(ANSWER.split()) * WORD_SECONDS * 1000
    print(f"fake model: {len(ANSWER.split())} words at {WORD_SECONDS * 1000:.0f} ms each = {writing:.0f} ms of writing")
    print(f"first streamed words (ChatMessageDelta): median {first:7.1f} ms over {TURNS} turns")
    print(f"last delta                             : median {last:7.1f} ms")
    print(f"stored reply (ChatMessageReceived)     : median {final:7.1f} ms")
    print(f"HTTP answer of the turn                : median {whole:7.1f} ms")
    print(f"first words / whole reply              : {first / whole:5.2f}  ({whole / first:4.1f}x sooner)")
    print(f"delta events per turn                  : median {statistics.median(t['deltas'] for t in turns):.0f} "
          f"for {len(ANSWER.split())} model chunks (batched)")  # fmt: skip
    sse_first, sse_end = (statistics.median(x) * 1000 for x in zip(*sse, strict=True))
    print(f"SSE route: first delta event {sse_first:7.1f} ms, end {sse_end:7.1f} ms, ratio {sse_first / sse_end:4.2f}")


def main() -> None:
    """Start Azurite, the emulator, the fake model and the app; measure; print."""
    azurite = start_azurite()
    emulator = start_emulator()
    model = FakeOpenAI(default=ok(ANSWER, chunk_seconds=WORD_SECONDS)).start()
    port = free_port()
    env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string, "ALLOWED_ORIGINS": ORIGIN,
           "ADMIN_KEY": "sdk_bench-key-0123456789", "DEVHOST_LOG_LEVEL": "WARNING", "LLM_PROVIDER": "openai",
           "OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "sk-bench",
           "AZURE_FUNCTIONS_ENVIRONMENT": "Development", "SIGNALR_CONNECTION_STRING": emulator.connection_string,
           "CHAT_MESSAGES_PER_MINUTE": "100000", "WIDGET_SESSIONS_PER_MINUTE": "100000",
           "KNOWLEDGE_TEXT": "Q: Shipping?\nA: Three to five days."}  # fmt: skip
    host = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", str(port), "--settings", "none.json"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=60, process=host)
        asyncio.run(measure(f"http://127.0.0.1:{port}/api"))
    finally:
        host.terminate()
        host.wait()
        model.stop()
        emulator.stop()
        azurite.stop()


if __name__ == "__main__":
    main()
