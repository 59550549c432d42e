"""The emulator's state: pending negotiations, live connections, groups and user memberships.

Everything runs on one event loop, so plain dicts need no locks. Hubs are keyed lowercased, as
the service treats hub names case-insensitively.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

RS = "\x1e"  # every JSON hub protocol message ends with the record separator
PENDING_SECONDS = 120.0  # how long a negotiated connection token waits for its WebSocket
MAX_ARGUMENTS = 10  # the official emulator forwards at most ten arguments


def frame(message: dict[str, Any]) -> str:
    """One hub protocol message as text, terminated by the record separator."""
    return json.dumps(message, separators=(",", ":")) + RS


@dataclass
class Pending:
    """A negotiated connection waiting for (or holding) its WebSocket."""

    token: str
    hub: str
    connection_id: str
    user: str | None
    created: float
    attached: bool = False


@dataclass
class Connection:
    """A live, handshaken connection; messages go out through its queue in order."""

    hub: str
    connection_id: str
    user: str | None
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    groups: set[str] = field(default_factory=set)

    def send(self, text: str) -> None:
        """Queue one frame for the writer task."""
        self.outbox.put_nowait(text)

    def close(self) -> None:
        """Ask the writer task to close the socket after what is queued."""
        self.outbox.put_nowait(None)


class HubState:
    """Connections, groups and user groups of every hub."""

    def __init__(self) -> None:
        self.pending: dict[str, Pending] = {}
        self.connections: dict[str, Connection] = {}
        self.groups: dict[tuple[str, str], set[str]] = {}
        self.user_groups: dict[tuple[str, str], dict[str, float | None]] = {}

    # -- negotiation and connection lifecycle ------------------------------------------------

    def negotiate(self, hub: str, user: str | None) -> Pending:
        """Reserve a connection token and id for a client about to open its WebSocket."""
        now = time.monotonic()
        for token, entry in list(self.pending.items()):
            if not entry.attached and now - entry.created > PENDING_SECONDS:
                del self.pending[token]
        # 128 random bits: the token is the only thing that lets a socket claim this connection.
        entry = Pending(secrets.token_urlsafe(16), hub.lower(), secrets.token_urlsafe(12), user, now)
        self.pending[entry.token] = entry
        return entry

    def attach(self, entry: Pending) -> Connection:
        """Turn a handshaken pending entry into a live connection."""
        connection = Connection(entry.hub, entry.connection_id, entry.user)
        self.connections[connection.connection_id] = connection
        return connection

    def detach(self, token: str, connection: Connection | None) -> None:
        """Forget a connection and its token once its socket is gone."""
        self.pending.pop(token, None)
        if connection is None:
            return
        self.connections.pop(connection.connection_id, None)
        for group in connection.groups:
            members = self.groups.get((connection.hub, group))
            if members is not None:
                members.discard(connection.connection_id)
                if not members:
                    del self.groups[(connection.hub, group)]

    # -- lookups ---------------------------------------------------------------------------

    def hub_connections(self, hub: str) -> Iterable[Connection]:
        """Every live connection of ``hub``."""
        return [c for c in self.connections.values() if c.hub == hub]

    def connection(self, hub: str, connection_id: str) -> Connection | None:
        """The live connection with that id on ``hub``."""
        found = self.connections.get(connection_id)
        return found if found is not None and found.hub == hub else None

    def user_connections(self, hub: str, user: str) -> list[Connection]:
        """Live connections of ``user`` on ``hub``."""
        return [c for c in self.connections.values() if c.hub == hub and c.user == user]

    def _live_user_groups(self, hub: str, user: str) -> dict[str, float | None]:
        groups = self.user_groups.get((hub, user), {})
        now = time.monotonic()
        for group, expiry in list(groups.items()):
            if expiry is not None and expiry <= now:
                del groups[group]
        return groups

    def user_in_group(self, hub: str, group: str, user: str) -> bool:
        """True when ``user`` was added to ``group`` and the membership has not expired."""
        return group in self._live_user_groups(hub, user)

    def group_connections(self, hub: str, group: str) -> list[Connection]:
        """Connections added to the group, plus connections of users in the group at this moment."""
        ids = set(self.groups.get((hub, group), ()))
        members = [c for c in self.hub_connections(hub) if c.connection_id in ids]
        members += [
            c
            for c in self.hub_connections(hub)
            if c.connection_id not in ids and c.user is not None and self.user_in_group(hub, group, c.user)
        ]
        return members

    # -- membership ------------------------------------------------------------------------

    def add_connection_to_group(self, connection: Connection, group: str) -> None:
        """Put one connection in a group (until it closes or is removed)."""
        self.groups.setdefault((connection.hub, group), set()).add(connection.connection_id)
        connection.groups.add(group)

    def remove_connection_from_group(self, connection: Connection, group: str) -> None:
        """Take one connection out of a group."""
        members = self.groups.get((connection.hub, group))
        if members is not None:
            members.discard(connection.connection_id)
            if not members:
                del self.groups[(connection.hub, group)]
        connection.groups.discard(group)

    def add_user_to_group(self, hub: str, group: str, user: str, ttl: float | None) -> None:
        """Add a user (all connections, now and later) to a group, for ``ttl`` seconds if given."""
        expiry = time.monotonic() + ttl if ttl is not None else None
        self.user_groups.setdefault((hub, user), {})[group] = expiry

    def remove_user_from_group(self, hub: str, group: str, user: str) -> None:
        """Take a user out of a group."""
        self.user_groups.get((hub, user), {}).pop(group, None)

    def remove_user_from_all_groups(self, hub: str, user: str) -> None:
        """Take a user out of every group of the hub."""
        self.user_groups.pop((hub, user), None)

    # -- delivery --------------------------------------------------------------------------

    @staticmethod
    def deliver(connections: Iterable[Connection], target: str, arguments: list[Any], excluded: set[str]) -> int:
        """Queue an invocation on each connection not excluded; returns how many got it."""
        text = frame({"type": 1, "target": target, "arguments": arguments[:MAX_ARGUMENTS]})
        count = 0
        for connection in connections:
            if connection.connection_id not in excluded:
                connection.send(text)
                count += 1
        return count
