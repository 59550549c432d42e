"""A fake Marketplace metering API and managed-identity token endpoint, as a real HTTP server."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http_server import FakeServer, Recorded, Reply, json_reply


@dataclass
class FakeMarketplace:
    """Accepts one event per (resource, dimension, hour); a repeat is a 409 Duplicate."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # events answered 409 Duplicate
    tokens_issued: int = 0

    def handle(self, request: Recorded) -> Reply:
        """Route one request."""
        if request.path.startswith("/msi/token"):
            self.tokens_issued += 1
            return json_reply(
                200,
                {
                    "access_token": f"mi-token-{self.tokens_issued}",
                    "token_type": "Bearer",
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": "20e940b3-4c77-4b0b-9a53-9e16a1b010a7",
                },
            )
        if request.method == "POST" and request.path.startswith("/api/usageEvent"):
            if not request.headers.get("Authorization", "").startswith("Bearer mi-token-"):
                return json_reply(403, {"code": "Forbidden"})
            event = request.json()
            key = (event["resourceId"], event["dimension"], event["effectiveStartTime"])
            if any((e["resourceId"], e["dimension"], e["effectiveStartTime"]) == key for e in self.accepted):
                self.duplicates.append(event)
                return json_reply(
                    409,
                    {
                        "additionalInfo": {"acceptedMessage": {**event, "status": "Duplicate"}},
                        "message": "This usage event already exist.",
                        "code": "Conflict",
                    },
                )
            if event["quantity"] <= 0:
                return json_reply(400, {"code": "BadArgument"})
            self.accepted.append(event)
            return json_reply(200, {**event, "usageEventId": f"evt-{len(self.accepted)}", "status": "Accepted"})
        return json_reply(404, {"code": "NotFound"})

    def start(self) -> FakeServer:
        """Serve on a free loopback port."""
        return FakeServer(self.handle).start()
