"""Push latency through the SignalR emulator: REST send to the message arriving on a client WebSocket.

Clients are Python ``websockets`` connections doing the real negotiate and handshake, in this
process, so sender and receivers share one clock (and one event loop: the numbers include the
clients' own parsing). Measured with 1 and with 200 connected clients. Design target: p50 under
20 ms. Not a pass/fail test.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devhost.signalr import Emulator, start_emulator  # noqa: E402
from shared.realtime.client import ConnectionInfo, RealtimeClient, negotiate, parse_connection_string  # noqa: E402

HUB = "bench"
RS = "\x1e"
SENDS = 300
BROADCASTS = 50
MANY = 200


@dataclass
class Receiver:
    """One connected client; resolves waiters as messages arrive."""

    user: str
    ws: ClientConnection
    waiting: dict[int, asyncio.Future[float]] = field(default_factory=dict)
    arrivals: dict[int, float] = field(default_factory=dict)

    async def read(self) -> None:
        """Record the arrival time of every invocation, keyed by its sequence number."""
        async for text in self.ws:
            now = time.perf_counter()
            for raw in str(text).split(RS):
                if not raw:
                    continue
                message = json.loads(raw)
                if message.get("type") != 1:
                    continue
                seq, sent = message["arguments"][0]["seq"], message["arguments"][0]["t"]
                self.arrivals[seq] = now - sent
                future = self.waiting.pop(seq, None)
                if future is not None and not future.done():
                    future.set_result(now - sent)


async def open_client(emulator: Emulator, info: ConnectionInfo, http: httpx.AsyncClient, user: str) -> Receiver:
    """Negotiate with the emulator as ``user``, open the WebSocket and do the handshake."""
    grant = negotiate(user, HUB, info=info)
    headers = {"Authorization": f"Bearer {grant['accessToken']}"}
    reply = await http.post(f"{emulator.endpoint}/client/negotiate", params={"hub": HUB}, headers=headers)
    reply.raise_for_status()
    url = f"ws://127.0.0.1:{emulator.port}/client/?hub={HUB}&id={reply.json()['connectionToken']}"
    ws = await connect(url, additional_headers=headers)
    await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
    if await ws.recv() != "{}" + RS:
        raise RuntimeError("handshake refused")
    return Receiver(user, ws)


async def time_sends(realtime: RealtimeClient, receivers: list[Receiver], count: int, seq0: int) -> list[float]:
    """Send to one random user at a time and wait for it to arrive; latencies in seconds."""
    samples = []
    loop = asyncio.get_running_loop()
    for seq in range(seq0, seq0 + count):
        receiver = random.choice(receivers)
        future: asyncio.Future[float] = loop.create_future()
        receiver.waiting[seq] = future
        if not await realtime.send_to_user(receiver.user, "Bench", [{"seq": seq, "t": time.perf_counter()}]):
            raise RuntimeError("send failed")
        samples.append(await asyncio.wait_for(future, 10))
    return samples


async def time_broadcasts(realtime: RealtimeClient, receivers: list[Receiver], count: int, seq0: int) -> list[float]:
    """Broadcast and wait for every client; returns the time each client got each message."""
    samples: list[float] = []
    loop = asyncio.get_running_loop()
    for seq in range(seq0, seq0 + count):
        futures = []
        for receiver in receivers:
            future: asyncio.Future[float] = loop.create_future()
            receiver.waiting[seq] = future
            futures.append(future)
        if not await realtime.broadcast("Bench", [{"seq": seq, "t": time.perf_counter()}]):
            raise RuntimeError("broadcast failed")
        samples += await asyncio.wait_for(asyncio.gather(*futures), 30)
    return samples


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


async def run(emulator: Emulator) -> None:
    """Connect 1 then 200 clients and time sends and broadcasts."""
    info = parse_connection_string(emulator.connection_string)
    realtime = RealtimeClient(info, HUB, timeout=10)
    rows: dict[str, tuple[int, float, float]] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        receivers = [await open_client(emulator, info, http, "user-0")]
        readers = [asyncio.create_task(receivers[0].read())]
        await time_sends(realtime, receivers, 20, 0)  # warm up connections and code paths
        one = await time_sends(realtime, receivers, SENDS, 1000)
        rows["1 client, send to user"] = (len(one), *percentiles(one))

        started = time.perf_counter()
        more = await asyncio.gather(*(open_client(emulator, info, http, f"user-{i}") for i in range(1, MANY)))
        connect_seconds = time.perf_counter() - started
        receivers += more
        readers += [asyncio.create_task(r.read()) for r in more]
        await time_sends(realtime, receivers, 20, 2000)
        many = await time_sends(realtime, receivers, SENDS, 3000)
        rows[f"{MANY} clients, send to user"] = (len(many), *percentiles(many))
        fan = await time_broadcasts(realtime, receivers, BROADCASTS, 10_000)
        rows[f"{MANY} clients, broadcast (each)"] = (len(fan), *percentiles(fan))
        last = [max(fan[i : i + MANY]) for i in range(0, len(fan), MANY)]
        rows[f"{MANY} clients, broadcast (last)"] = (len(last), *percentiles(last))

        for receiver in receivers:
            await receiver.ws.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    await realtime.aclose()

    print(f"SignalR emulator: REST send -> client WebSocket ({MANY - 1} clients connected in {connect_seconds:.2f} s)")
    print(f"{'scenario':34} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (n, p50, p99) in rows.items():
        print(f"{name:34} {n:6d} {p50:8.2f} {p99:8.2f}")
    base, scaled = rows["1 client, send to user"], rows[f"{MANY} clients, send to user"]
    fan_each, fan_last = rows[f"{MANY} clients, broadcast (each)"], rows[f"{MANY} clients, broadcast (last)"]
    print(f"ratio send to user, {MANY} vs 1 client : p50 {scaled[1] / base[1]:5.2f}x, p99 {scaled[2] / base[2]:5.2f}x")
    print(
        f"ratio broadcast (last) vs 1-client send: p50 {fan_last[1] / base[1]:5.2f}x, p99 {fan_last[2] / base[2]:5.2f}x"
    )
    print(f"ratio broadcast (each) vs 1-client send: p50 {fan_each[1] / base[1]:5.2f}x")
    verdict = "met" if scaled[1] < 20 else "MISSED"
    print(f"target p50 < 20 ms (send to user, {MANY} clients): {verdict}")


def main() -> None:
    """Start the emulator, measure, stop it."""
    emulator = start_emulator()
    try:
        asyncio.run(run(emulator))
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
