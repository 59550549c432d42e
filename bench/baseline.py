"""The baseline every benchmark divides by: one Azurite point read with the app's async SDK."""

from __future__ import annotations

import asyncio
import time


def azurite_point_reads(connection_string: str, samples: int = 200) -> list[float]:
    """Seconds of ``samples`` point reads of the deployment record (after one warm-up read)."""
    from azure.data.tables.aio import TableServiceClient

    async def run() -> list[float]:
        async with TableServiceClient.from_connection_string(connection_string) as service:
            table = service.get_table_client("meta")
            await table.get_entity("deployment", "record")
            times = []
            for _ in range(samples):
                began = time.perf_counter()
                await table.get_entity("deployment", "record")
                times.append(time.perf_counter() - began)
            return times

    return asyncio.run(run())


def azurite_first_pages(
    connection_string: str, table: str, partition: str, size: int, samples: int = 20
) -> list[float]:
    """Seconds to read the first ``size`` rows of a partition with the SDK (what a paged list costs).

    Azurite filters by scanning the whole table, so on a large table this, not the app, is the
    floor of any paged listing; Azure Table storage seeks by partition instead.
    """
    from azure.data.tables.aio import TableClient

    async def run() -> list[float]:
        async with TableClient.from_connection_string(connection_string, table) as client:
            times = []
            for _ in range(samples):
                began = time.perf_counter()
                pages = client.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=size
                ).by_page()
                async for row in await pages.__anext__():
                    del row
                times.append(time.perf_counter() - began)
            return times

    return asyncio.run(run())
