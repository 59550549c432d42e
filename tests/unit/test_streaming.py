"""Streamed replies: deltas are batched, numbered, complete, and keyed by the stored reply's id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.conversations.models import Message, Session
from shared.conversations.streaming import DeltaPush, reply_id, streamed_reply
from shared.llm.types import BotReply, ReplyStream

ASYNC = pytest.mark.asyncio(loop_scope="session")


class Recorder:
    """A SignalR client that records what it was asked to send (each send takes ``delay``)."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.delay, self.fail = delay, fail

    async def send_to_user(self, user: str, target: str, args: list[Any]) -> bool:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise OSError("SignalR is down")
        self.sent.append((user, target, args[0]))
        return True


def _stream(pieces: list[str], pause: float) -> ReplyStream:
    async def source() -> Any:
        for piece in pieces:
            await asyncio.sleep(pause)
            yield piece
        yield BotReply(text="".join(pieces), model="m", provider="p")

    return ReplyStream(source())


def test_the_reply_id_is_the_one_the_turn_stores_the_reply_under() -> None:
    session = Session(session_id="s1", seq=4)
    assert reply_id(session) == "s1:6"
    assert Message("s1", 6, "bot", "hi").message_id == reply_id(session)  # visitor at 5, the reply at 6


@ASYNC
async def test_deltas_are_batched_numbered_and_add_up_to_the_reply() -> None:
    realtime = Recorder(delay=0.005)
    pieces = [f"word{i} " for i in range(60)]
    push = DeltaPush("s1", "s1:2", realtime=realtime, batch_seconds=0.05)
    reply = await streamed_reply(_stream(pieces, 0.005), push)  # ~0.3 s of writing
    events = [payload for _, _, payload in realtime.sent]
    assert {(user, target) for user, target, _ in realtime.sent} == {("s1", "ChatMessageDelta")}
    assert [e["index"] for e in events] == list(range(len(events)))
    assert "".join(e["delta"] for e in events) == reply.text == "".join(pieces)
    assert {e["messageId"] for e in events} == {"s1:2"} and {e["sessionId"] for e in events} == {"s1"}
    assert events[0]["delta"] == "word0 "  # the first words leave at once
    assert 2 <= len(events) < 20  # batched: far fewer pushes than the 60 pieces


@ASYNC
async def test_a_failing_push_never_breaks_the_reply() -> None:
    push = DeltaPush("s1", "s1:2", realtime=Recorder(fail=True), batch_seconds=0.01)
    reply = await streamed_reply(_stream(["a ", "b"], 0.0), push)
    assert reply.text == "a b" and push.pushes == 0
