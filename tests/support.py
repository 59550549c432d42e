"""Helpers for tests: settings of a test host, visitors over HTTP, timers, and direct work in Azurite."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from azure.data.tables import TableServiceClient, UpdateMode

from devhost.azurite import Azurite
from devhost.processes import free_port

if TYPE_CHECKING:
    from tests.conftest import Host

T = TypeVar("T")

ADMIN_KEY = "sdk_test-admin-key-0123456789abcdefghijkl"
WEBSITE = "https://shop.example"
KNOWLEDGE = """# Shipping
Q: How long does shipping take?
A: Standard shipping takes 3 to 5 business days; express shipping arrives the next day.

Q: What is your return policy?
A: You can return any unused item within 30 days for a full refund.

# Opening hours
Our support team is available Monday to Friday, 9:00 to 17:00 CET.
"""


def host_env(azurite: Azurite, **extra: str) -> dict[str, str]:
    """Settings of a product host on ``azurite``: the test admin key, one website and the FAQ."""
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "ADMIN_KEY": ADMIN_KEY,
        "ALLOWED_ORIGINS": WEBSITE,
        "KNOWLEDGE_TEXT": KNOWLEDGE,
        **extra,
    }


def dead_storage() -> str:
    """A connection string to a Storage account nobody answers for (an outage)."""
    dead = free_port()
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;TableEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;"
    )


def run_timer(host: Host, name: str) -> None:
    """Fire the timer function ``name`` on ``host`` now, as its schedule would."""
    url = host.base_url.removesuffix("/api") + f"/admin/functions/{name}"
    response = httpx.post(url, json={"input": ""}, timeout=60)
    assert response.status_code == 202, response.text


@dataclass
class Visitor:
    """A widget session: its id and token."""

    session_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}


def new_visitor(api: httpx.Client, origin: str = WEBSITE) -> Visitor:
    """Open a widget session as a browser on ``origin`` would."""
    response = api.post("/widget/session", json={}, headers={"Origin": origin})
    assert response.status_code == 201, response.text
    body = response.json()
    return Visitor(body["sessionId"], body["token"])


def say(api: httpx.Client, visitor: Visitor, text: str, **headers: str) -> httpx.Response:
    """Post a visitor message."""
    return api.post(
        "/chat", json={"message": text, "sessionId": visitor.session_id}, headers={**visitor.auth, **headers}
    )


def history(api: httpx.Client, visitor: Visitor, after: int = 0) -> dict[str, Any]:
    """The widget's view of the conversation."""
    response = api.get(f"/chat/{visitor.session_id}/messages", params={"after": after}, headers=visitor.auth)
    assert response.status_code == 200, response.text
    return response.json()


def tables(azurite: Azurite) -> TableServiceClient:
    """A synchronous Table client on the test Azurite (to look at, or set up, stored state)."""
    return TableServiceClient.from_connection_string(azurite.connection_string)


def stored_messages(azurite: Azurite, session_id: str) -> list[dict[str, Any]]:
    """Every message row of a session, as stored."""
    chats = tables(azurite).get_table_client("chats")
    rows = chats.query_entities(
        "PartitionKey eq @pk and RowKey ge 'm' and RowKey lt 'n'", parameters={"pk": session_id}
    )
    return [_plain(row) for row in rows]


def outbox_rows(azurite: Azurite, session_id: str) -> list[dict[str, Any]]:
    """A session's outbox rows not yet applied, as stored."""
    chats = tables(azurite).get_table_client("chats")
    rows = chats.query_entities(
        "PartitionKey eq @pk and RowKey ge 'o' and RowKey lt 'p'", parameters={"pk": session_id}
    )
    return [_plain(row) for row in rows]


def eventually(check: Callable[[], T], *, timeout: float = 20.0, what: str = "the condition") -> T:
    """Poll ``check`` until it returns something truthy without failing an assertion; its last result."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            failure: Exception | None = None
        except AssertionError as exc:
            failure = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s") from failure
        time.sleep(0.05)


def settled(azurite: Azurite, *session_ids: str, timeout: float = 20.0) -> None:
    """Wait until the outbox queue trigger has applied every outbox row of these sessions."""
    for session_id in session_ids:
        eventually(
            lambda s=session_id: not outbox_rows(azurite, s), timeout=timeout, what=f"the outbox of {session_id}"
        )


def _plain(entity: Any) -> dict[str, Any]:
    # Int64 properties come back wrapped as EntityProperty(value, type).
    return {key: getattr(value, "value", value) for key, value in dict(entity).items()}


def session_header(azurite: Azurite, session_id: str) -> dict[str, Any]:
    """A session's stored header."""
    return _plain(tables(azurite).get_table_client("chats").get_entity(session_id, "session"))


def set_session(azurite: Azurite, session_id: str, **fields: Any) -> None:
    """Change stored header fields directly (to put a session in a state for a test)."""
    chats = tables(azurite).get_table_client("chats")
    chats.update_entity({"PartitionKey": session_id, "RowKey": "session", **fields}, mode=UpdateMode.MERGE)


def deployment_record(azurite: Azurite) -> dict[str, Any]:
    """The stored deployment record."""
    return dict(tables(azurite).get_table_client("meta").get_entity("deployment", "record"))


def in_storage(azurite: Azurite, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` in this process against ``azurite``, with the app's own repositories."""
    from shared.config import get_settings
    from shared.search import store
    from shared.storage import clients

    def reset() -> None:
        get_settings.cache_clear()
        for cached in (clients.get_table_service, clients.get_blob_service, clients.table_client):
            cached.cache_clear()
        store._container_ready = False
        store._manifest_cache = None

    async def run() -> T:
        try:
            return await make()
        finally:
            await clients.get_table_service().close()
            await clients.get_blob_service().close()

    saved = os.environ.get("AzureWebJobsStorage")
    os.environ["AzureWebJobsStorage"] = azurite.connection_string
    reset()
    try:
        # In a thread of its own, so this loop never touches pytest-asyncio's session loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result()
    finally:
        if saved is None:
            os.environ.pop("AzureWebJobsStorage", None)
        else:
            os.environ["AzureWebJobsStorage"] = saved
        reset()


async def seed_session(
    texts: list[tuple[str, str]], *, at: datetime, cost_micro: int = 0, tokens: tuple[int, int] = (0, 0)
) -> str:
    """A session with messages (sender, text) one second apart, indexed for lists and search."""
    from shared import search
    from shared.conversations.models import Message, Session
    from shared.storage.chats import ChatRepository
    from shared.storage.orderings import IndexedSession, SessionIndexRepository

    session_id = str(uuid.uuid4())
    repo = ChatRepository()
    await repo.create(Session(session_id=session_id, created_at=at, last_activity_at=at), [])
    session = await repo.get(session_id)
    assert session is not None
    messages = []
    for seq, (sender, text) in enumerate(texts, start=1):
        bot = sender == "bot"
        messages.append(
            Message(
                session_id,
                seq,
                sender,
                text,
                created_at=at + timedelta(seconds=seq),
                prompt_tokens=tokens[0] if bot else 0,
                completion_tokens=tokens[1] if bot else 0,
                cost_micro_usd=cost_micro if bot else 0,
            )  # fmt: skip
        )
    session.seq = len(messages)
    session.last_activity_at = at + timedelta(seconds=len(messages))
    bots = sum(1 for sender, _ in texts if sender == "bot")
    session.cost_micro_usd = cost_micro * bots
    session.prompt_tokens, session.completion_tokens = tokens[0] * bots, tokens[1] * bots
    session.preview = texts[-1][1][:200] if texts else ""
    session.version += 1
    await repo.commit(session, messages, None, [])
    await SessionIndexRepository().project(IndexedSession.of(session))
    await search.index_messages(messages)
    return session_id
