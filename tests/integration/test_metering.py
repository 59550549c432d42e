"""Seat metering against a fake Marketplace, through the real timer and msal's managed identity."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from azure.data.tables import UpdateMode

from devhost.azurite import Azurite
from shared.clock import utcnow
from shared.storage.seats import billing_month
from tests.conftest import Host
from tests.fakes.http_server import FakeServer
from tests.fakes.marketplace import FakeMarketplace
from tests.support import run_timer, tables


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
        "IDENTITY_ENDPOINT": f"{server.url}/msi/token", "IDENTITY_HEADER": "secret-header",
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
    metered.server.down = True
    metered.run()
    assert metered.market.accepted == [] and metered.health_quantity() == 0
    metered.server.down = False
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
