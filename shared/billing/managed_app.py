"""Which Marketplace managed application this deployment belongs to: its resource group's ``managedBy``.

A managed application deploys into a managed resource group whose ``managedBy`` is the application's
resource id; usage events name it as ``resourceUri``. The app reads its own resource group from Azure
Resource Manager with its managed identity (the template grants it Reader there) and keeps the answer
for the worker's life: an application never moves to another resource group.
https://learn.microsoft.com/azure/marketplace/marketplace-metering-service-apis
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

from shared.config import Settings
from shared.identity import managed_identity

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# Resource groups: GET .../resourceGroups/{name} (api-version 2021-04-01 returns managedBy).
RESOURCE_GROUP_API_VERSION = "2021-04-01"
_resolved: dict[tuple[str, str, str], str] = {}


class ManagedAppUnresolved(RuntimeError):
    """The application could not be found; ``reason`` is a short code for the health report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def subscription_of(settings: Settings, owner_name: str = "") -> str:
    """The subscription id: the setting, else the first part of App Service's ``WEBSITE_OWNER_NAME``."""
    if settings.azure_subscription_id:
        return settings.azure_subscription_id.strip()
    # WEBSITE_OWNER_NAME is "<subscription id>+<resource group>-<region>webspace".
    return owner_name.partition("+")[0].strip() if "+" in owner_name else ""


async def resolve_resource_uri(
    settings: Settings, *, owner_name: str = "", transport: httpx.AsyncBaseTransport | None = None
) -> str:
    """The managed application's id (``managedBy`` of this resource group); ``ManagedAppUnresolved`` otherwise."""
    subscription = subscription_of(settings, owner_name)
    group = settings.azure_resource_group.strip()
    if not subscription or not group:
        raise ManagedAppUnresolved("resource-group-unknown")
    arm = settings.arm_endpoint.rstrip("/")
    key = (arm, subscription, group.lower())
    if key in _resolved:
        return _resolved[key]
    try:
        # The token's audience is ARM itself ("https://management.azure.com/").
        token = await managed_identity.get_token(f"{arm}/", client_id=settings.managed_identity_client_id)
    except managed_identity.ManagedIdentityUnavailable as exc:
        log.warning("metering: %s", exc)
        raise ManagedAppUnresolved("identity-unavailable") from None
    import httpx

    url = f"{arm}/subscriptions/{quote(subscription, safe='')}/resourceGroups/{quote(group, safe='')}"
    try:
        async with httpx.AsyncClient(timeout=settings.metering_timeout_seconds, transport=transport) as client:
            response = await client.get(
                url,
                params={"api-version": RESOURCE_GROUP_API_VERSION},
                headers={"Authorization": f"Bearer {token}"},
            )
    except httpx.HTTPError as exc:
        log.warning("metering: Resource Manager unreachable: %s", type(exc).__name__)
        raise ManagedAppUnresolved("arm-unreachable") from None
    if response.status_code in (401, 403):
        # The identity lacks Reader on its resource group (the template's role assignment).
        raise ManagedAppUnresolved("arm-forbidden")
    if response.status_code != 200:
        raise ManagedAppUnresolved(f"arm-{response.status_code}")
    try:
        managed_by = str(response.json().get("managedBy") or "")
    except ValueError:
        raise ManagedAppUnresolved("arm-bad-answer") from None
    if not managed_by:
        raise ManagedAppUnresolved("not-a-managed-resource-group")
    _resolved[key] = managed_by
    return managed_by
