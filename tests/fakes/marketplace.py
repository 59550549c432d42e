"""A fake Marketplace metering API, managed-identity endpoint and Resource Manager, as a real HTTP server.

The identity endpoint speaks App Service's protocol (``GET $IDENTITY_ENDPOINT?resource=...&api-version=2019-08-01``,
header ``X-IDENTITY-HEADER``, optional ``client_id``), so msal's real ``ManagedIdentityClient`` talks to it.
Each token remembers the resource it was issued for: the metering API takes only Marketplace tokens and
Resource Manager only its own, as the real services check the audience.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http_server import FakeServer, Recorded, Reply, json_reply

MARKETPLACE_RESOURCE = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
IDENTITY_HEADER = "secret-header"


@dataclass
class FakeMarketplace:
    """Accepts one event per (resource, dimension, hour); a repeat is a 409 Duplicate."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # events answered 409 Duplicate
    tokens_issued: int = 0
    token_resources: dict[str, str] = field(default_factory=dict)  # token -> the resource it is for
    token_requests: list[dict[str, str]] = field(default_factory=list)  # query of each identity call
    client_id: str = ""  # when set, the identity endpoint serves only this user-assigned identity
    arm_resource: str = ""  # the audience Resource Manager accepts (set by start(): "<url>/")
    resource_groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # "/subscriptions/s/resourceGroups/g"
    readers: set[str] = field(default_factory=lambda: {"*"})  # groups the identity may read ("*": all)
    fail_next: list[int] = field(default_factory=list)  # statuses for the next usage events, then normal

    def _token(self, request: Recorded) -> Reply:
        query = {key: values[0] for key, values in parse_qs(urlsplit(request.path).query).items()}
        self.token_requests.append(query)
        if request.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            return json_reply(401, {"statusCode": 401, "message": "missing or wrong X-IDENTITY-HEADER"})
        if self.client_id and query.get("client_id") != self.client_id:
            return json_reply(400, {"statusCode": 400, "message": "No managed identity with that client id"})
        self.tokens_issued += 1
        token = f"mi-token-{self.tokens_issued}"
        self.token_resources[token] = query.get("resource", "")
        return json_reply(200, {"access_token": token, "token_type": "Bearer", "resource": query.get("resource"),
                                "expires_on": str(int(time.time()) + 3600)})  # fmt: skip

    def _audience(self, request: Recorded) -> str:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return self.token_resources.get(token, "")

    def _resource_group(self, request: Recorded) -> Reply:
        path = urlsplit(request.path).path
        if self._audience(request) != self.arm_resource:
            return json_reply(401, {"error": {"code": "InvalidAuthenticationToken"}})
        if "*" not in self.readers and path.lower() not in {g.lower() for g in self.readers}:
            return json_reply(403, {"error": {"code": "AuthorizationFailed"}})
        group = next((body for key, body in self.resource_groups.items() if key.lower() == path.lower()), None)
        if group is None:
            return json_reply(404, {"error": {"code": "ResourceGroupNotFound"}})
        return json_reply(200, {"id": path, "name": path.rsplit("/", 1)[-1], **group})

    def _usage_event(self, request: Recorded) -> Reply:
        if self._audience(request) != MARKETPLACE_RESOURCE:
            return json_reply(403, {"code": "Forbidden"})
        if self.fail_next:
            return json_reply(self.fail_next.pop(0), {"code": "InternalServerError"})
        event = request.json()
        resource = event.get("resourceUri") or event.get("resourceId")
        key = (resource, event["dimension"], event["effectiveStartTime"])
        if any((e.get("resourceUri") or e.get("resourceId"), e["dimension"], e["effectiveStartTime"]) == key
               for e in self.accepted):  # fmt: skip
            self.duplicates.append(event)
            return json_reply(
                409,
                {
                    "additionalInfo": {"acceptedMessage": {**event, "status": "Duplicate"}},
                    "message": "This usage event already exist.",
                    "code": "Conflict",
                },
            )
        if event["quantity"] <= 0 or not resource:
            return json_reply(400, {"code": "BadArgument"})
        self.accepted.append(event)
        return json_reply(200, {**event, "usageEventId": f"evt-{len(self.accepted)}", "status": "Accepted"})

    def handle(self, request: Recorded) -> Reply:
        """Route one request."""
        if request.path.startswith("/msi/token"):
            return self._token(request)
        if request.method == "GET" and request.path.startswith("/subscriptions/"):
            return self._resource_group(request)
        if request.method == "POST" and request.path.startswith("/api/usageEvent"):
            return self._usage_event(request)
        return json_reply(404, {"code": "NotFound"})

    def start(self) -> FakeServer:
        """Serve on a free loopback port."""
        server = FakeServer(self.handle).start()
        self.arm_resource = f"{server.url}/"
        return server
