"""Seat metering against a fake Marketplace, through the real timer and msal's managed identity.

SaaS first (resourceId = the subscription id), then the managed application (resourceUri = the managed
resource group's managedBy, read from a fake Resource Manager with the app's user-assigned identity).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from azure.data.tables import UpdateMode

from devhost.azurite import Azurite
from shared.clock import utcnow
from shared.storage.seats import billing_month
from tests.conftest import Host
from tests.fakes.http_server import FakeServer
from tests.fakes.marketplace import IDENTITY_HEADER, MARKETPLACE_RESOURCE, FakeMarketplace
from tests.support import eventually, run_timer, tables


@dataclass
class Metered:
    """A host whose metering talks to a fake Marketplace."""

    host: Host
    market: FakeMarketplace
    server: FakeServer
    azurite: Azurite

    def run(self) -> None:
        """Fire the hourly timer now."""
        run_timer(self.host, "seat_metering")

    def seats(self, count: int) -> None:
        """Make ``count`` agents hold a seat this month."""
        seats = tables(self.azurite).get_table_client("seats")
        for i in range(count):
            seats.upsert_entity({"PartitionKey": billing_month(utcnow()), "RowKey": f"agent-{i}", "firstClaimAt": "x"})

    def health_quantity(self) -> int:
        """``seat.lastReportedQuantity`` from /api/health."""
        return int(httpx.get(self.host.base_url + "/health").json()["seat"]["lastReportedQuantity"])


@pytest.fixture()
def metered(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> Iterator[Metered]:
    """A Start-plan deployment (two seats) metering to a fake Marketplace."""
    market = FakeMarketplace()
    server = market.start()
    host = start_host({
        "AzureWebJobsStorage": fresh_azurite.connection_string, "PLAN_ID": "start",
        "MARKETPLACE_SUBSCRIPTION_ID": "sub-123", "MARKETPLACE_METERING_URL": server.url,
        "IDENTITY_ENDPOINT": f"{server.url}/msi/token", "IDENTITY_HEADER": IDENTITY_HEADER,
    })  # fmt: skip
    # Bootstrap runs on the first request; the test writes seat rows into its tables directly.
    assert httpx.get(host.base_url + "/health/ready", timeout=30).status_code == 200
    yield Metered(host, market, server, fresh_azurite)
    server.stop()


def test_nothing_is_reported_under_quota(metered: Metered) -> None:
    metered.seats(2)
    metered.run()
    assert metered.market.accepted == []
    assert not any(r.path.startswith("/api/usageEvent") for r in metered.server.requests)


def test_one_event_per_hour_for_the_seats_above_quota(metered: Metered) -> None:
    metered.seats(5)
    metered.run()
    metered.run()  # the same hour again (a second instance): nothing new
    assert len(metered.market.accepted) == 1
    event = metered.market.accepted[0]
    assert (event["resourceId"], event["quantity"], event["dimension"], event["planId"]) == (
        "sub-123",
        3.0,
        "seat",
        "start",
    )
    assert event["effectiveStartTime"].endswith(":00:00")
    assert metered.health_quantity() == 3


def test_a_duplicate_counts_as_reported(metered: Metered) -> None:
    metered.seats(3)
    hour = utcnow().replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    metered.market.accepted.append(
        {"resourceId": "sub-123", "dimension": "seat", "effectiveStartTime": hour, "quantity": 1.0}
    )
    metered.run()
    assert [e["quantity"] for e in metered.market.duplicates] == [1.0]  # the one event was a 409 Duplicate
    assert metered.health_quantity() == 1
    metered.run()
    assert len([r for r in metered.server.requests if r.path.startswith("/api/usageEvent")]) == 1


def test_an_outage_is_retried_on_the_next_run(metered: Metered) -> None:
    metered.seats(4)
    metered.market.fail_next = [503, 503]  # the metering API is down for both tries of this run
    metered.run()
    assert metered.market.accepted == [] and metered.health_quantity() == 0
    metered.run()
    assert len(metered.market.accepted) == 1 and metered.market.accepted[0]["quantity"] == 2.0
    assert metered.health_quantity() == 2


def test_a_month_reports_only_the_growth_of_its_peak(metered: Metered) -> None:
    metered.seats(3)
    metered.run()
    assert [e["quantity"] for e in metered.market.accepted] == [1.0]
    metered.seats(5)
    metered.run()  # the same hour: the Marketplace takes one event per hour, so the growth waits
    assert len(metered.market.accepted) == 1
    an_hour_ago = (utcnow() - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    meta = tables(metered.azurite).get_table_client("meta")
    meta.update_entity(
        {"PartitionKey": "state", "RowKey": "metering", "lastReportedHour": an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S")},
        mode=UpdateMode.MERGE,
    )
    metered.run()
    # The fake Marketplace still lives in this hour, so it answers the second event 409 Duplicate:
    # that counts as reported, and what was posted is what matters.
    posted = metered.market.accepted + metered.market.duplicates
    assert [e["quantity"] for e in posted] == [1.0, 2.0]  # the month's events sum to its peak
    assert metered.health_quantity() == 3
    meta.update_entity(
        {"PartitionKey": "state", "RowKey": "metering", "lastReportedHour": an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S")},
        mode=UpdateMode.MERGE,
    )
    metered.run()  # a later hour with no new seat: nothing more
    assert len(metered.market.accepted + metered.market.duplicates) == 2 and metered.health_quantity() == 3


# The managed application: resourceUri from the managed resource group's managedBy, through msal's
# managed-identity client against the fake identity endpoint and a fake Resource Manager.
APP_ID = "/subscriptions/sub-1/resourceGroups/customer-rg/providers/Microsoft.Solutions/applications/support-desk"
GROUP = "/subscriptions/sub-1/resourceGroups/mrg-support-desk-2026"
CLIENT_ID = "0d2f7f1e-2b6c-4b8e-9a43-5e1f3c2d7a90"


@pytest.fixture()
def managed(fresh_azurite: Azurite, start_host: Callable[..., Host]) -> Iterator[Metered]:
    """A Start-plan deployment of the managed application, with a user-assigned identity."""
    market = FakeMarketplace(client_id=CLIENT_ID)
    market.resource_groups[GROUP] = {"location": "westeurope", "managedBy": APP_ID}
    server = market.start()
    host = start_host({
        "AzureWebJobsStorage": fresh_azurite.connection_string, "PLAN_ID": "start",
        "MARKETPLACE_OFFER": "managed-app", "MARKETPLACE_METERING_URL": server.url, "ARM_ENDPOINT": server.url,
        "AZURE_SUBSCRIPTION_ID": "sub-1", "AZURE_RESOURCE_GROUP": "mrg-support-desk-2026", "AZURE_CLIENT_ID": CLIENT_ID,
        "IDENTITY_ENDPOINT": f"{server.url}/msi/token", "IDENTITY_HEADER": IDENTITY_HEADER,
    })  # fmt: skip
    assert httpx.get(host.base_url + "/health/ready", timeout=30).status_code == 200
    yield Metered(host, market, server, fresh_azurite)
    server.stop()


def marketplace_health(metered: Metered) -> dict[str, Any]:
    """``marketplace`` of /api/health."""
    return dict(httpx.get(metered.host.base_url + "/health").json()["marketplace"])


def usage_posts(metered: Metered) -> int:
    return len([r for r in metered.server.requests if r.path.startswith("/api/usageEvent")])


def test_a_managed_application_reports_under_its_managed_by(managed: Metered) -> None:
    managed.seats(5)
    managed.run()
    assert managed.market.accepted == [
        {"resourceUri": APP_ID, "quantity": 3.0, "dimension": "seat", "planId": "start",
         "effectiveStartTime": managed.market.accepted[0]["effectiveStartTime"]}
    ]  # fmt: skip
    # Two tokens from the user-assigned identity: Resource Manager's, then the Marketplace's.
    assert [(q["resource"], q.get("client_id")) for q in managed.market.token_requests] == [
        (managed.market.arm_resource, CLIENT_ID),
        (MARKETPLACE_RESOURCE, CLIENT_ID),
    ]
    health = marketplace_health(managed)
    assert (health["offer"], health["resource"], health["lastRun"]["result"]) == ("managed-app", APP_ID, "accepted")
    assert health["lastRun"]["error"] == "" and "mi-token" not in str(health)
    assert managed.health_quantity() == 3


def test_a_managed_application_duplicate_counts_as_reported(managed: Metered) -> None:
    managed.seats(4)
    hour = utcnow().replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    managed.market.accepted.append({"resourceUri": APP_ID, "dimension": "seat", "effectiveStartTime": hour,
                                    "quantity": 2.0})  # fmt: skip
    managed.run()
    assert [e["resourceUri"] for e in managed.market.duplicates] == [APP_ID]
    assert marketplace_health(managed)["lastRun"]["result"] == "duplicate"
    assert managed.health_quantity() == 2
    managed.run()
    assert usage_posts(managed) == 1  # reported: nothing more this hour


def test_a_failed_event_is_tried_again_at_once_then_by_the_next_run(managed: Metered) -> None:
    managed.seats(3)
    managed.market.fail_next = [503]
    managed.run()
    assert usage_posts(managed) == 2 and [e["quantity"] for e in managed.market.accepted] == [1.0]
    managed.seats(6)
    meta = tables(managed.azurite).get_table_client("meta")
    an_hour_ago = (utcnow() - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    earlier = {
        "PartitionKey": "state",
        "RowKey": "metering",
        "lastReportedHour": an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    meta.update_entity(earlier, mode=UpdateMode.MERGE)
    managed.market.fail_next = [500, 502]  # both tries of this run fail
    managed.run()
    health = marketplace_health(managed)
    assert (health["lastRun"]["result"], health["lastRun"]["error"]) == ("failed", "http-502")
    assert managed.health_quantity() == 1
    managed.run()  # the next run sends the growth the failed one could not
    assert [e["quantity"] for e in managed.market.accepted + managed.market.duplicates][-1] == 3.0
    assert managed.health_quantity() == 4 and marketplace_health(managed)["lastRun"]["result"] in (
        "accepted",
        "duplicate",
    )


def test_without_reader_on_its_resource_group_nothing_is_sent_until_it_has_it(managed: Metered) -> None:
    managed.seats(3)
    managed.market.readers = set()
    managed.run()
    assert usage_posts(managed) == 0 and managed.market.accepted == []
    health = marketplace_health(managed)
    assert (health["lastRun"]["result"], health["lastRun"]["error"], health["resource"]) == (
        "failed",
        "arm-forbidden",
        "",
    )
    managed.market.readers = {GROUP}
    managed.run()
    assert [e["resourceUri"] for e in managed.market.accepted] == [APP_ID]


def test_a_resource_group_no_application_manages_is_reported_not_metered(managed: Metered) -> None:
    managed.market.resource_groups[GROUP] = {"location": "westeurope"}
    managed.seats(3)
    managed.run()
    assert usage_posts(managed) == 0
    assert marketplace_health(managed)["lastRun"]["error"] == "not-a-managed-resource-group"


def test_an_outage_of_the_identity_endpoint_is_retried_by_the_next_run(managed: Metered) -> None:
    managed.seats(3)
    managed.server.down = True
    managed.run()
    managed.server.down = False
    assert marketplace_health(managed)["lastRun"]["error"] == "identity-unavailable"
    assert managed.market.accepted == []

    def later_run_reports() -> bool:
        # msal throttles the identity endpoint for 5 s after a 5xx; the hourly timer is far slower.
        managed.run()
        return [e["quantity"] for e in managed.market.accepted] == [1.0]

    eventually(later_run_reports, timeout=30, what="a later run reporting the seat")
