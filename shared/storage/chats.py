"""The ``chats`` table: one partition per session holding everything one commit writes.

RowKeys: ``session`` (the header), ``m<seq:010d>`` (messages, in order), ``idem-<key>`` (stored
responses for Idempotency-Key replays), ``o<version:010d>-<kind>`` (the outbox: one row per
consequence of a commit, deleted once applied). Keeping them in one partition lets a commit write
the header, its messages, the replay record and the outbox rows in one entity-group transaction,
guarded by the header's ETag: all of it lands or none of it does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.clock import iso, parse_iso, utcnow
from shared.conversations.card import Card
from shared.conversations.models import Message, Session
from shared.storage import tables
from shared.storage.clients import table_client
from shared.storage.errors import ConcurrentUpdate, collect, storage_call
from shared.storage.values import as_int, is_safe_key, with_int64

HEADER = "session"
REPLAY_PREFIX = "idem-"
OUTBOX_LOW, OUTBOX_HIGH = "o", "p"
MAX_SESSION_ID = 64
_INT64 = ("costMicroUsd", "promptTokens", "completionTokens", "costTodayMicroUsd")


def message_row(seq: int) -> str:
    """RowKey of message number ``seq``."""
    return f"m{seq:010d}"


def outbox_row(version: int, kind: str) -> str:
    """RowKey of the outbox row of ``kind`` written by commit ``version``."""
    return f"o{version:010d}-{kind}"


def session_entity(session: Session) -> dict[str, Any]:
    """The header entity."""
    return with_int64(
        {
            "PartitionKey": session.session_id,
            "RowKey": HEADER,
            "status": session.status,
            "createdAt": iso(session.created_at),
            "lastActivityAt": iso(session.last_activity_at),
            "seq": session.seq,
            "version": session.version,
            "claimedBy": session.claimed_by,
            "claimedByName": session.claimed_by_name,
            "claimedAt": iso(session.claimed_at),
            "handoffRequestedAt": iso(session.handoff_requested_at),
            "closedAt": iso(session.closed_at),
            "origin": session.origin,
            "channel": session.channel,
            "address": session.address,
            "pageUrl": session.page_url,
            "pageTitle": session.page_title,
            "promptTokens": session.prompt_tokens,
            "completionTokens": session.completion_tokens,
            "costMicroUsd": session.cost_micro_usd,
            "aiCalls": session.ai_calls,
            "aiCallsDay": session.ai_calls_day,
            "aiCallsToday": session.ai_calls_today,
            "costTodayMicroUsd": session.cost_today_micro_usd,
            "preview": session.preview,
            "visitorPreview": session.visitor_preview,
            "recent": json.dumps(session.recent, ensure_ascii=False, separators=(",", ":")),
            "rateMinute": session.rate_minute,
            "rateCount": session.rate_count,
            "card": json.dumps(session.card.stored(), ensure_ascii=False, separators=(",", ":"))
            if session.card
            else "",
            "instructions": json.dumps(session.instructions, ensure_ascii=False, separators=(",", ":")),
            "rating": session.rating,
            "ratingComment": session.rating_comment,
        },
        _INT64,
    )


def session_from_entity(entity: Any) -> Session:
    """Read a header entity."""
    try:
        recent = [(str(sender), str(text)) for sender, text in json.loads(entity.get("recent") or "[]")]
    except (ValueError, TypeError):
        recent = []
    return Session(
        session_id=entity["PartitionKey"],
        status=entity.get("status", "open"),
        created_at=parse_iso(entity.get("createdAt", "")) or utcnow(),
        last_activity_at=parse_iso(entity.get("lastActivityAt", "")) or utcnow(),
        seq=as_int(entity.get("seq")),
        version=as_int(entity.get("version")),
        claimed_by=entity.get("claimedBy", ""),
        claimed_by_name=entity.get("claimedByName", ""),
        claimed_at=parse_iso(entity.get("claimedAt", "")),
        handoff_requested_at=parse_iso(entity.get("handoffRequestedAt", "")),
        closed_at=parse_iso(entity.get("closedAt", "")),
        origin=entity.get("origin", ""),
        channel=entity.get("channel") or "web",
        address=entity.get("address", ""),
        page_url=entity.get("pageUrl", ""),
        page_title=entity.get("pageTitle", ""),
        prompt_tokens=as_int(entity.get("promptTokens")),
        completion_tokens=as_int(entity.get("completionTokens")),
        cost_micro_usd=as_int(entity.get("costMicroUsd")),
        ai_calls=as_int(entity.get("aiCalls")),
        ai_calls_day=entity.get("aiCallsDay", ""),
        ai_calls_today=as_int(entity.get("aiCallsToday")),
        cost_today_micro_usd=as_int(entity.get("costTodayMicroUsd")),
        preview=entity.get("preview", ""),
        visitor_preview=entity.get("visitorPreview", ""),
        recent=recent,
        rate_minute=entity.get("rateMinute", ""),
        rate_count=as_int(entity.get("rateCount")),
        card=_card(entity.get("card")),
        instructions=_strings(entity.get("instructions")),
        rating=as_int(entity.get("rating")),
        rating_comment=entity.get("ratingComment", ""),
        etag=_etag(entity),
    )


def _card(raw: Any) -> Card | None:
    try:
        return Card.from_stored(json.loads(raw)) if raw else None
    except (ValueError, TypeError, KeyError):
        return None


def _strings(raw: Any) -> list[str]:
    try:
        stored = json.loads(raw or "[]")
    except (ValueError, TypeError):
        return []
    return [str(item) for item in stored] if isinstance(stored, list) else []


def message_entity(message: Message) -> dict[str, Any]:
    """The message entity (a bot answer's citations as JSON)."""
    entity = with_int64(
        {
            "PartitionKey": message.session_id,
            "RowKey": message_row(message.seq),
            "messageId": message.message_id,
            "seq": message.seq,
            "sender": message.sender,
            "text": message.text,
            "createdAt": iso(message.created_at),
            "agentOid": message.agent_oid,
            "agentName": message.agent_name,
            "model": message.model,
            "provider": message.provider,
            "promptTokens": message.prompt_tokens,
            "completionTokens": message.completion_tokens,
            "costMicroUsd": message.cost_micro_usd,
            "latencyMs": message.latency_ms,
        },
        _INT64,
    )
    if message.citations:
        entity["citations"] = json.dumps(message.citations, ensure_ascii=False, separators=(",", ":"))
    return entity


def _url(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _citations(raw: Any) -> list[dict[str, str | None]]:
    try:
        stored = json.loads(raw or "[]")
    except (ValueError, TypeError):
        return []
    if not isinstance(stored, list):
        return []
    return [
        {"sourceId": str(c.get("sourceId", "")), "title": str(c.get("title", "")), "url": _url(c.get("url"))}
        for c in stored
        if isinstance(c, dict)
    ]


def message_from_entity(entity: Any) -> Message:
    """Read a message entity."""
    return Message(
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
        citations=_citations(entity.get("citations")),
    )


def _etag(entity: Any) -> str:
    return str(entity.metadata.get("etag", "")) if hasattr(entity, "metadata") else ""


@dataclass
class Replay:
    """A stored response for an Idempotency-Key, with the fingerprint of the request that made it."""

    key: str
    fingerprint: str
    status: int
    body: dict[str, Any]
    created_at: datetime = field(default_factory=utcnow)
    etag: str = ""  # set when read: an expired record is replaced under this ETag

    def entity(self, session_id: str) -> dict[str, Any]:
        """The replay entity (same partition as the session)."""
        return {
            "PartitionKey": session_id,
            "RowKey": REPLAY_PREFIX + self.key,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "body": json.dumps(self.body, ensure_ascii=False, separators=(",", ":")),
            "createdAt": iso(self.created_at),
        }

    @classmethod
    def from_entity(cls, entity: Any) -> Replay:
        """Read a replay entity."""
        return cls(
            key=entity["RowKey"].removeprefix(REPLAY_PREFIX),
            fingerprint=entity.get("fingerprint", ""),
            status=as_int(entity.get("status")),
            body=json.loads(entity.get("body") or "{}"),
            created_at=parse_iso(entity.get("createdAt", "")) or utcnow(),
            etag=_etag(entity),
        )


@dataclass
class OutboxRow:
    """One consequence of a commit, waiting to be applied by the outbox queue trigger."""

    session_id: str
    version: int
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)

    @property
    def row_key(self) -> str:
        """Its RowKey: commit order first, so a partition range reads the outbox in order."""
        return outbox_row(self.version, self.kind)

    def entity(self) -> dict[str, Any]:
        """The outbox entity."""
        return {
            "PartitionKey": self.session_id,
            "RowKey": self.row_key,
            "kind": self.kind,
            "version": self.version,
            "payload": json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")),
            "createdAt": iso(self.created_at),
        }

    @classmethod
    def from_entity(cls, entity: Any) -> OutboxRow:
        """Read an outbox entity."""
        return cls(
            session_id=entity["PartitionKey"],
            version=as_int(entity.get("version")),
            kind=entity.get("kind", ""),
            payload=json.loads(entity.get("payload") or "{}"),
            created_at=parse_iso(entity.get("createdAt", "")) or utcnow(),
        )


@dataclass
class Loaded:
    """A session header and, when a key was given, its replay record: read in one query."""

    session: Session | None
    replay: Replay | None = None


class ChatRepository:
    """Sessions, their messages, replays and outbox, written atomically per commit."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or table_client(tables.CHATS)

    async def load(self, session_id: str, replay_key: str | None = None) -> Loaded:
        """The header and the key's replay record in one round trip (None for an unusable id)."""
        if not is_safe_key(session_id, MAX_SESSION_ID):
            return Loaded(None)
        if replay_key is None:
            return Loaded(await self.get(session_id))
        query = self._client.query_entities(
            "PartitionKey eq @pk and ( RowKey eq @header or RowKey eq @replay )",
            parameters={"pk": session_id, "header": HEADER, "replay": REPLAY_PREFIX + replay_key},
        )
        loaded = Loaded(None)
        for entity in await collect(query):
            if entity["RowKey"] == HEADER:
                loaded.session = session_from_entity(entity)
            else:
                loaded.replay = Replay.from_entity(entity)
        return loaded

    async def get(self, session_id: str) -> Session | None:
        """The header, or None (also for an id that can't be a session's, such as one from a URL)."""
        from azure.core.exceptions import ResourceNotFoundError

        if not is_safe_key(session_id, MAX_SESSION_ID):
            return None
        try:
            entity = await storage_call(self._client.get_entity(session_id, HEADER))
        except ResourceNotFoundError:
            return None
        return session_from_entity(entity)

    async def create(self, session: Session, outbox: list[OutboxRow]) -> None:
        """Insert a new session header with its outbox rows (``ConcurrentUpdate`` if the id is taken)."""
        operations: list[Any] = [("create", session_entity(session))]
        operations += [("create", row.entity()) for row in outbox]
        await self._submit(session, operations)

    async def commit(
        self, session: Session, messages: list[Message], replay: Replay | None, outbox: list[OutboxRow]
    ) -> None:
        """Write the header (If-Match its ETag), new messages, a replay record and outbox rows at once.

        The replay record is inserted, never upserted: if another request stored one for the key
        first, the whole transaction fails and the caller returns that request's answer. An expired
        record (read with its ETag) is replaced under that ETag.
        """
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        if_match = {"mode": UpdateMode.REPLACE, "etag": session.etag, "match_condition": MatchConditions.IfNotModified}
        operations: list[Any] = [("update", session_entity(session), if_match)]
        operations += [("create", message_entity(message)) for message in messages]
        if replay is not None and replay.etag:
            replace = {
                "mode": UpdateMode.REPLACE,
                "etag": replay.etag,
                "match_condition": MatchConditions.IfNotModified,
            }
            operations.append(("update", replay.entity(session.session_id), replace))
        elif replay is not None:
            operations.append(("create", replay.entity(session.session_id)))
        operations += [("create", row.entity()) for row in outbox]
        await self._submit(session, operations)

    async def _submit(self, session: Session, operations: list[Any]) -> None:
        from azure.data.tables import TableTransactionError

        try:
            result = await storage_call(self._client.submit_transaction(operations))
        except TableTransactionError as exc:
            # 412: someone else changed the header; 409: a row to insert (message, replay) exists.
            if exc.status_code in (409, 412):
                raise ConcurrentUpdate() from exc
            raise
        session.etag = result[0].get("etag", "") if result else ""

    async def messages(
        self, session_id: str, *, after: int = 0, upto: int | None = None, limit: int = 1000
    ) -> list[Message]:
        """Messages with ``after`` < seq <= ``upto``, oldest first."""
        high = message_row(upto + 1) if upto is not None else "n"
        query = self._client.query_entities(
            "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
            parameters={"pk": session_id, "low": message_row(after), "high": high},
            results_per_page=min(limit, 1000),
        )
        return [message_from_entity(entity) for entity in await collect(query, limit=limit)]

    async def outbox(self, session_id: str) -> list[OutboxRow]:
        """The session's outbox rows not yet applied, in commit order."""
        query = self._client.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": session_id, "low": OUTBOX_LOW, "high": OUTBOX_HIGH},
        )
        return [OutboxRow.from_entity(entity) for entity in await collect(query)]

    async def delete_outbox(self, rows: list[OutboxRow]) -> None:
        """Remove applied outbox rows of one session, in as few transactions as possible.

        A row already gone (another worker applied it too) fails its transaction; those rows are
        then deleted one by one, the missing ones ignored.
        """
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableTransactionError

        for start in range(0, len(rows), 100):
            chunk = rows[start : start + 100]
            try:
                await storage_call(self._client.submit_transaction([("delete", row.entity()) for row in chunk]))
                continue
            except TableTransactionError:
                pass
            for row in chunk:
                try:
                    await storage_call(self._client.delete_entity(row.session_id, row.row_key))
                except ResourceNotFoundError:
                    pass
