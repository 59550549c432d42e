"""The bot's reply reaches the visitor while it is generated: ``ChatMessageDelta`` over SignalR.

Each event is ``{sessionId, messageId, index, delta}``: ``index`` counts the events of one reply
from 0, ``delta`` is the text written since the previous event. ``messageId`` is the id the stored
reply will have, ``{sessionId}:{seq}``: a turn commits the visitor's message and the reply together,
so the reply's seq is the session's seq before the turn plus two. If another write takes that seq
first (an agent claiming the conversation mid-turn), the ids differ; clients drop their draft when
the turn's stored messages arrive, so nothing is shown twice.

Deltas are a preview. The stored message stays the one source of truth: the final
``ChatMessageReceived`` (and the REST reply) replaces the streamed text, and a client that missed
deltas, or was never connected, gets the whole message from there. Pieces are batched: one push is
in flight at a time and the next leaves at least :data:`BATCH_SECONDS` later, carrying everything
written meanwhile, so a fast model costs at most a few SignalR calls per second and a slow one no
extra wait. Pushes are best effort (never retried; the final message is).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from shared.conversations.models import Session
from shared.llm.types import BotReply, ReplyStream

log = logging.getLogger(__name__)

BATCH_SECONDS = 0.075
EVENT = "ChatMessageDelta"


def reply_id(before: Session) -> str:
    """The id the bot's reply to the next visitor message will be stored under."""
    return f"{before.session_id}:{before.seq + 2}"


class DeltaPush:
    """Feed the reply's text as it comes; pushes batched ``ChatMessageDelta`` events to the visitor."""

    def __init__(self, session_id: str, message_id: str, *, realtime: Any, batch_seconds: float = BATCH_SECONDS):
        self._session_id, self._message_id = session_id, message_id
        self._realtime = realtime
        self._batch = batch_seconds
        self._pending: list[str] = []
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.pushes = 0  # events sent (for tests and the benchmark)

    def feed(self, piece: str) -> None:
        """Queue ``piece``; the pusher sends it with whatever else is written before its turn."""
        if not piece:
            return
        self._pending.append(piece)
        self._ready.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Send what is still queued and wait for it (the stored message is committed after this)."""
        self._closing.set()
        self._ready.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        index = 0
        while True:
            if not self._pending:
                if self._closing.is_set():
                    return
                await self._ready.wait()  # set by feed() and by close()
                self._ready.clear()
                continue
            delta, self._pending = "".join(self._pending), []
            payload = {"sessionId": self._session_id, "messageId": self._message_id, "index": index, "delta": delta}
            index += 1
            try:
                await self._realtime.send_to_user(self._session_id, EVENT, [payload])
                self.pushes += 1
            except Exception:  # a preview only: the stored message reaches the visitor anyway
                log.debug("a streamed delta could not be pushed", exc_info=True)
            if not self._closing.is_set():  # the next batch leaves a little later (closing: at once)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._batch)


async def streamed_reply(stream: ReplyStream, push: DeltaPush | None) -> BotReply:
    """Run the provider's stream to its end, handing each delta to ``push``; the complete reply."""
    try:
        async for delta in stream:
            if push is not None:
                push.feed(delta)
    finally:
        if push is not None:
            await push.close()
    if stream.reply is None:
        raise RuntimeError("the provider's stream ended without a reply")
    return stream.reply


def pusher(before: Session) -> DeltaPush | None:
    """A delta pusher for the reply to the visitor of ``before``, or None when SignalR is not configured."""
    from shared.realtime.client import get_realtime

    realtime = get_realtime()
    if not realtime.enabled:
        return None
    return DeltaPush(before.session_id, reply_id(before), realtime=realtime)
