"""The events a webhook endpoint can subscribe to, and the ones a commit gives rise to (pure, no I/O).

Each event is ``{"type", "timestamp", "data"}`` as delivered (the Standard Webhooks payload shape).
Approvals and ratings arrive as decision notes (``approval:drafted``, ``approval:<resolution>``,
``rating:given``); the session's own events come from comparing the session before and after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from shared.clock import iso

SESSION_CREATED = "session.created"
SESSION_HANDOFF_REQUESTED = "session.handoff_requested"
SESSION_CLAIMED = "session.claimed"
SESSION_CLOSED = "session.closed"
MESSAGE_CREATED = "message.created"
RATING_CREATED = "rating.created"
APPROVAL_CREATED = "approval.created"
APPROVAL_RESOLVED = "approval.resolved"
TEST = "webhook.test"  # only sent by "send test event"; an endpoint can't subscribe to it

EVENT_TYPES = (
    SESSION_CREATED,
    SESSION_HANDOFF_REQUESTED,
    SESSION_CLAIMED,
    SESSION_CLOSED,
    MESSAGE_CREATED,
    RATING_CREATED,
    APPROVAL_CREATED,
    APPROVAL_RESOLVED,
)


class _Session(Protocol):
    @property
    def session_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def claimed_by(self) -> str: ...

    def public(self) -> dict[str, Any]: ...


class _Message(Protocol):
    @property
    def session_id(self) -> str: ...

    def public(self) -> dict[str, Any]: ...


class _Note(Protocol):
    @property
    def event(self) -> str: ...
    @property
    def details(self) -> Mapping[str, Any]: ...


def event(kind: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    """One event as delivered."""
    return {"type": kind, "timestamp": iso(at), "data": data}


def _note_type(name: str) -> str | None:
    if name == "approval:drafted":
        return APPROVAL_CREATED
    if name.startswith("approval:"):
        return APPROVAL_RESOLVED
    if name == "rating:given":
        return RATING_CREATED
    return None


def commit_events(
    before: _Session | None,
    after: _Session,
    messages: Sequence[_Message],
    notes: Sequence[_Note],
    now: datetime,
) -> list[dict[str, Any]]:
    """The events of a commit that took ``before`` (None: a new session) to ``after``, in the order they happened."""
    session = after.public()
    found: list[dict[str, Any]] = []
    if before is None:
        found.append(event(SESSION_CREATED, {"session": session}, now))
    found += [event(MESSAGE_CREATED, {"sessionId": m.session_id, "message": m.public()}, now) for m in messages]
    changed = before is None or before.status != after.status
    if changed and after.status == "human_requested":
        found.append(event(SESSION_HANDOFF_REQUESTED, {"session": session}, now))
    if after.claimed_by and (before is None or before.claimed_by != after.claimed_by):
        found.append(event(SESSION_CLAIMED, {"session": session}, now))
    if changed and after.status == "closed":
        found.append(event(SESSION_CLOSED, {"session": session}, now))
    for note in notes:
        kind = _note_type(note.event)
        if kind is not None:
            detail = note.event.partition(":")[2]
            data = {"sessionId": after.session_id, **dict(note.details)}
            if kind == APPROVAL_RESOLVED:
                data["resolution"] = detail
            if kind == RATING_CREATED and str(data.get("score", "")).isdigit():
                data["score"] = int(data["score"])  # the note keeps text; integrators get the number
            found.append(event(kind, data, now))
    return found
