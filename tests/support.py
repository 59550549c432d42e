"""Helpers for integration tests: visitors over HTTP, and direct looks into Azurite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from azure.data.tables import TableServiceClient, UpdateMode

from devhost.azurite import Azurite

WEBSITE = "https://shop.example"


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
