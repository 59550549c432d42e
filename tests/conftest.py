"""Shared fixtures: a real Azurite and real devhost processes serving the app over HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devhost.azurite import Azurite, start_azurite
from devhost.processes import ROOT, Server, free_port, spawn
from tests.support import host_env

pytest_plugins = [
    "tests.fixtures.realtime",
    "tests.fixtures.identity",
    "tests.fixtures.llm",
    "tests.fixtures.browser",
]

# Settings a developer may have exported for their own use; a test host must not inherit them
# (real LLM calls, another knowledge base, a real SignalR). Empty counts as unset in the app.
_SCRUBBED = (
    "ADMIN_KEY", "LLM_PROVIDER", "OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT", "KNOWLEDGE_TEXT", "KNOWLEDGE_FILE", "LLM_PRICES",
    "SIGNALR_CONNECTION_STRING", "AzureSignalRConnectionString", "PLANS_URL", "PLAN_ID",
    "AAD_APP_CLIENT_ID", "AAD_APP_TENANT_ID", "MARKETPLACE_METERING_URL", "DEPLOYMENT_ID",
)  # fmt: skip


@dataclass
class Host:
    """A running devhost and where it logs."""

    server: Server
    base_url: str
    log_path: Path

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTP client for this host's /api."""
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.base_url, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        """What the host printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Stop the host."""
        self.server.stop()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite for the whole run, on free ports."""
    instance = start_azurite()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def start_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Host]]:
    """Start a devhost with settings; every host started is stopped at the end of the run."""
    hosts: list[Host] = []

    def start(env: dict[str, str], *, app: str = "function_app:app") -> Host:
        port = free_port()
        folder = tmp_path_factory.mktemp("host")
        log_path = folder / "host.log"
        settings = {
            **dict.fromkeys(_SCRUBBED, ""),
            "AZURE_FUNCTIONS_ENVIRONMENT": "Development",
            "ADMIN_KEY_FILE": str(folder / "admin-key"),
            "DEVHOST_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # Every test client is 127.0.0.1 and the counters live in the (shared) Azurite, so limits
            # would leak between tests; the tests of the limits set their own.
            "WIDGET_SESSIONS_PER_MINUTE": "100000",
            "CHAT_MESSAGES_PER_MINUTE": "100000",
            **env,
        }
        with log_path.open("wb") as log_file:
            server = spawn(
                "functions",
                [sys.executable, "-m", "devhost", "--port", str(port), "--app", app, "--settings", "none.json"],
                port=port,
                env=settings,
                cwd=ROOT,
                timeout=60,
                stdout=log_file.fileno(),
            )
        host = Host(server, f"http://127.0.0.1:{port}/api", log_path)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.stop()


@pytest.fixture(scope="session")
def app(azurite: Azurite, start_host: Callable[..., Host]) -> Host:
    """The product, on the shared Azurite, with a known admin key, one website and a small FAQ."""
    return start_host(host_env(azurite))


@pytest.fixture(scope="module")
def module_azurite() -> Iterator[Azurite]:
    """An Azurite for one test module alone: every host on a shared Azurite takes outbox messages
    from the same queue, so a module whose hosts have settings of their own (channels, a paid bot,
    approvals) would lose its deliveries to the others'."""
    instance = start_azurite()
    yield instance
    instance.stop()


@pytest.fixture()
def fresh_azurite() -> Iterator[Azurite]:
    """An empty Azurite of its own, for tests that count everything in it."""
    instance = start_azurite()
    yield instance
    instance.stop()


@pytest.fixture()
def api(app: Host) -> Iterator[httpx.Client]:
    """An HTTP client for the product's /api."""
    with app.client() as client:
        yield client


def pytest_configure(config: pytest.Config) -> None:
    """Tests import the app's packages from the repository root."""
    os.environ.setdefault("AZURE_FUNCTIONS_ENVIRONMENT", "Development")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# The longest modules, measured (make test prints the slowest tests). make test hands whole modules to
# its workers in collection order, so one of these collected last would run alone at the end.
LONGEST_MODULES = (
    "tests/integration/test_openapi.py",
    "tests/integration/test_fuzz.py",
    "tests/unit/test_layout.py",
    "tests/integration/test_outbox.py",
    "tests/e2e/test_knowledge_page.py",
    "tests/e2e/test_agent_console_tools.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collect the longest modules first (each module's tests stay together and in order)."""
    rank = {module: index for index, module in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
