"""The ``chats`` table: one partition per session holding its header, messages and replays.

RowKeys: ``session`` (the header), ``m<seq:010d>`` (messages, in order), ``idem-<key>`` (stored
responses for Idempotency-Key replays). Keeping them in one partition lets a chat turn write the
visitor's message, the bot's reply, the header and the replay record in one entity-group
transaction, guarded by the header's ETag: all of it lands or none of it does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import collect, storage_call
from shared.storage.values import as_int, is_safe_key, with_int64

HEADER = "session"
_INT64 = ("costMicroUsd", "promptTokens", "completionTokens")


class ConcurrentUpdate(Exception):
    """The header changed since it was read; re-read and try again."""


def utcnow() -> datetime:
    """The current UTC time (one place, so tests and code agree on the clock)."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str:
    """ISO-8601 UTC with a Z, or empty."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else ""


def parse_iso(text: str) -> datetime | None:
    """Inverse of :func:`iso`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


MAX_SESSION_ID = 64


def message_row(seq: int) -> str:
    """RowKey of message number ``seq``."""
    return f"m{seq:010d}"


@dataclass
class Session:
    """A conversation's header: its state, owner, counters and totals."""

    session_id: str
    status: str = "open"
    created_at: datetime = field(default_factory=utcnow)
    last_activity_at: datetime = field(default_factory=utcnow)
    seq: int = 0
    claimed_by: str = ""
    claimed_by_name: str = ""
    claimed_at: datetime | None = None
    handoff_requested_at: datetime | None = None
    closed_at: datetime | None = None
    origin: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    ai_calls: int = 0
    ai_calls_day: str = ""
    ai_calls_today: int = 0
    preview: str = ""
    etag: str = ""

    def to_entity(self) -> dict[str, Any]:
        """The header entity."""
        return with_int64(
            {
                "PartitionKey": self.session_id,
                "RowKey": HEADER,
                "status": self.status,
                "createdAt": iso(self.created_at),
                "lastActivityAt": iso(self.last_activity_at),
                "seq": self.seq,
                "claimedBy": self.claimed_by,
                "claimedByName": self.claimed_by_name,
                "claimedAt": iso(self.claimed_at),
                "handoffRequestedAt": iso(self.handoff_requested_at),
                "closedAt": iso(self.closed_at),
                "origin": self.origin,
                "promptTokens": self.prompt_tokens,
                "completionTokens": self.completion_tokens,
                "costMicroUsd": self.cost_micro_usd,
                "aiCalls": self.ai_calls,
                "aiCallsDay": self.ai_calls_day,
                "aiCallsToday": self.ai_calls_today,
                "preview": self.preview,
            },
            _INT64,
        )

    @classmethod
    def from_entity(cls, entity: Any) -> Session:
        """Read a header entity."""
        return cls(
            session_id=entity["PartitionKey"],
            status=entity.get("status", "open"),
            created_at=parse_iso(entity.get("createdAt", "")) or utcnow(),
            last_activity_at=parse_iso(entity.get("lastActivityAt", "")) or utcnow(),
            seq=as_int(entity.get("seq")),
            claimed_by=entity.get("claimedBy", ""),
            claimed_by_name=entity.get("claimedByName", ""),
            claimed_at=parse_iso(entity.get("claimedAt", "")),
            handoff_requested_at=parse_iso(entity.get("handoffRequestedAt", "")),
            closed_at=parse_iso(entity.get("closedAt", "")),
            origin=entity.get("origin", ""),
            prompt_tokens=as_int(entity.get("promptTokens")),
            completion_tokens=as_int(entity.get("completionTokens")),
            cost_micro_usd=as_int(entity.get("costMicroUsd")),
            ai_calls=as_int(entity.get("aiCalls")),
            ai_calls_day=entity.get("aiCallsDay", ""),
            ai_calls_today=as_int(entity.get("aiCallsToday")),
            preview=entity.get("preview", ""),
            etag=entity.metadata.get("etag", "") if hasattr(entity, "metadata") else "",
        )

    def copy(self) -> Session:
        """A detached copy (for before/after comparisons)."""
        return Session(**{f.name: getattr(self, f.name) for f in fields(self)})

    def public(self) -> dict[str, Any]:
        """The camelCase form agents and the dashboard see."""
        return {
            "sessionId": self.session_id,
            "status": self.status,
            "createdAt": iso(self.created_at),
            "lastActivityAt": iso(self.last_activity_at),
            "claimedBy": self.claimed_by or None,
            "claimedByName": self.claimed_by_name or None,
            "claimedAt": iso(self.claimed_at) or None,
            "handoffRequestedAt": iso(self.handoff_requested_at) or None,
            "closedAt": iso(self.closed_at) or None,
            "messageCount": self.seq,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "costUsd": round(self.cost_micro_usd / 1_000_000, 6),
            "preview": self.preview,
        }


@dataclass
class Message:
    """One message of a conversation."""

    session_id: str
    seq: int
    sender: str  # visitor | bot | agent | system
    text: str
    created_at: datetime = field(default_factory=utcnow)
    message_id: str = ""
    agent_oid: str = ""
    agent_name: str = ""
    model: str = ""
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    latency_ms: int = 0

    def __post_init__(self) -> None:
        if not self.message_id:
            self.message_id = f"{self.session_id}:{self.seq}"

    def to_entity(self) -> dict[str, Any]:
        """The message entity."""
        return with_int64(
            {
                "PartitionKey": self.session_id,
                "RowKey": message_row(self.seq),
                "messageId": self.message_id,
                "seq": self.seq,
                "sender": self.sender,
                "text": self.text,
                "createdAt": iso(self.created_at),
                "agentOid": self.agent_oid,
                "agentName": self.agent_name,
                "model": self.model,
                "provider": self.provider,
                "promptTokens": self.prompt_tokens,
                "completionTokens": self.completion_tokens,
                "costMicroUsd": self.cost_micro_usd,
                "latencyMs": self.latency_ms,
            },
            _INT64,
        )

    @classmethod
    def from_entity(cls, entity: Any) -> Message:
        """Read a message entity."""
        return cls(
            session_id=entity["PartitionKey"],
            seq=as_int(entity.get("seq")),
            sender=entity.get("sender", ""),
            text=entity.get("text", ""),
            created_at=parse_iso(entity.get("createdAt", "")) or utcnow(),
            message_id=entity.get("messageId", ""),
            agent_oid=entity.get("agentOid", ""),
            agent_name=entity.get("agentName", ""),
            model=entity.get("model", ""),
            provider=entity.get("provider", ""),
            prompt_tokens=as_int(entity.get("promptTokens")),
            completion_tokens=as_int(entity.get("completionTokens")),
            cost_micro_usd=as_int(entity.get("costMicroUsd")),
            latency_ms=as_int(entity.get("latencyMs")),
        )

    def public(self) -> dict[str, Any]:
        """What the widget and the agent console see."""
        body: dict[str, Any] = {
            "id": self.message_id,
            "seq": self.seq,
            "sender": self.sender,
            "text": self.text,
            "createdAt": iso(self.created_at),
        }
        if self.agent_name:
            body["agentName"] = self.agent_name
        return body

    def transcript(self) -> dict[str, Any]:
        """The admin's view: with tokens, cost and model."""
        return {
            **self.public(),
            "agentOid": self.agent_oid or None,
            "model": self.model or None,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "costUsd": round(self.cost_micro_usd / 1_000_000, 6),
            "latencyMs": self.latency_ms,
        }


@dataclass
class Replay:
    """A stored response for an Idempotency-Key."""

    key: str
    status: int
    body: dict[str, Any]

    def to_entity(self, session_id: str) -> dict[str, Any]:
        """The replay entity (same partition as the session)."""
        return {
            "PartitionKey": session_id,
            "RowKey": f"idem-{self.key}",
            "status": self.status,
            "body": json.dumps(self.body),
        }


class ChatRepository:
    """Sessions and their messages, written atomically per turn."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.CHATS)

    async def create(self, session: Session) -> None:
        """Insert a new session header (``ResourceExistsError`` if the id is taken)."""
        await storage_call(self._client.create_entity(session.to_entity()))

    async def get(self, session_id: str) -> Session | None:
        """The header, or None (also for an id that can't be a session's, such as one from a URL)."""
        from azure.core.exceptions import ResourceNotFoundError

        if not is_safe_key(session_id, MAX_SESSION_ID):
            return None
        try:
            entity = await storage_call(self._client.get_entity(session_id, HEADER))
        except ResourceNotFoundError:
            return None
        return Session.from_entity(entity)

    async def commit(self, session: Session, messages: list[Message], replay: Replay | None = None) -> None:
        """Write the header (If-Match its ETag), new messages and a replay record in one transaction."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        operations: list[Any] = [
            (
                "update",
                session.to_entity(),
                {"mode": UpdateMode.REPLACE, "etag": session.etag, "match_condition": MatchConditions.IfNotModified},
            )
        ]
        operations += [("create", message.to_entity()) for message in messages]
        if replay is not None:
            operations.append(("upsert", replay.to_entity(session.session_id), {"mode": UpdateMode.REPLACE}))
        try:
            result = await storage_call(self._client.submit_transaction(operations))
        except TableTransactionError as exc:
            # 412 on the header (someone else wrote) or 409 on a message row (same seq taken).
            if exc.status_code in (409, 412):
                raise ConcurrentUpdate() from exc
            raise
        session.etag = result[0].get("etag", "") if result else ""

    async def messages(self, session_id: str, *, after: int = 0, limit: int = 1000) -> list[Message]:
        """Messages with seq > ``after``, oldest first."""
        query = self._client.query_entities(
            "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
            parameters={"pk": session_id, "low": message_row(after), "high": "n"},
            results_per_page=min(limit, 1000),
        )
        return [Message.from_entity(entity) for entity in await collect(query, limit=limit)]

    async def replay(self, session_id: str, key: str) -> Replay | None:
        """A stored response for this Idempotency-Key, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await storage_call(self._client.get_entity(session_id, f"idem-{key}"))
        except ResourceNotFoundError:
            return None
        return Replay(key, int(entity["status"]), json.loads(entity["body"]))
