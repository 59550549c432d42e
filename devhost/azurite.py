"""Azurite from the project's npm packages: persisted for ``make dev``, in memory for tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from devhost.processes import ROOT, Server, free_port, spawn
from shared.config import AZURITE_ACCOUNT_KEY

AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"


@dataclass
class Azurite:
    """A running Azurite and the connection string that reaches it."""

    server: Server
    blob_port: int
    queue_port: int
    table_port: int
    in_memory: bool = False  # the safe default: an on-disk store gets time to shut down cleanly

    @property
    def connection_string(self) -> str:
        """Full-form connection string (the SDKs don't all expand the dev shortcut)."""
        return (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/devstoreaccount1;"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/devstoreaccount1;"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/devstoreaccount1;"
        )

    def stop(self) -> None:
        """Stop Azurite.

        In memory there is nothing to flush, so it isn't given time to wait for clients that still
        hold connections open (a test's host outlives its Azurite); on disk it shuts down cleanly.
        """
        self.server.stop(timeout=0.5 if self.in_memory else 5.0)


def start_azurite(*, location: Path | None = None, ports: tuple[int, int, int] | None = None) -> Azurite:
    """Start Azurite on free ports (or the given ones); in memory unless ``location`` is set."""
    if not AZURITE_BIN.exists():
        raise RuntimeError("Azurite is not installed: run `make setup` (npm ci)")
    blob, queue, table = ports or (free_port(), free_port(), free_port())
    command = [
        str(AZURITE_BIN), "--silent", "--skipApiVersionCheck", "--loose",
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
    ]  # fmt: skip
    if location is None:
        command.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        command += ["--location", str(location)]
    server = spawn("azurite", command, port=table, stdout=subprocess.DEVNULL)
    # The table port comes up last-ish; make sure blob answers too before handing it out.
    from devhost.processes import wait_for_port

    wait_for_port(blob, timeout=15, process=server.process)
    return Azurite(server, blob, queue, table, in_memory=location is None)
