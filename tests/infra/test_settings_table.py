"""Every setting the README's tables list is an app setting of the template, and the other way round;
and the app reads the template's settings without a validation error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra import checks, marketplace

README = Path(__file__).resolve().parents[2] / "README.md"
# README settings a deployment from the template does not set, and why.
NOT_IN_TEMPLATE = {
    "AzureWebJobsStorage": "a connection string carries the account key: the template is keyless",
    "STORAGE_CONNECTION_STRING": "the same",
    "SIGNALR_CONNECTION_STRING": "a connection string carries the access key: the template is keyless",
    "AzureSignalRConnectionString": "the same",
    "WEBSITE_HOSTNAME": "Azure sets it",
    "MARKETPLACE_SUBSCRIPTION_ID": "a SaaS offer's",
    "MARKETPLACE_CLIENT_ID": "a SaaS offer's",
    "MARKETPLACE_CLIENT_SECRET": "a SaaS offer's",
    "MARKETPLACE_TENANT_ID": "a SaaS offer's",
    "OPENAI_BASE_URL": "the template's bot is Azure OpenAI's",
    "OPENAI_API_KEY": "the template's bot is Azure OpenAI's",
    "AZURE_SEARCH_API_KEY": "the template's search signs in with the managed identity",
    "KNOWLEDGE_ALLOW_PRIVATE_URLS": "Development only",
    "WEBHOOK_ALLOW_PRIVATE_URLS": "Development only",
    "ACS_CONNECTION_STRING": "a connection string carries the access key: the template's ACS uses the identity",
    "AzureFunctionsJobHost__extensions__queues__<option>": "a pattern, host.json's values stand",
}


def readme_settings() -> list[str]:
    """The names in the first column of every ``| setting | default | meaning |`` table."""
    names: list[str] = []
    in_table = False
    for line in README.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\|\s*setting\s*\|", line):
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            in_table = False
        if in_table:
            names += re.findall(r"`([A-Za-z_][A-Za-z0-9_]*(?:<[a-z]+>)?)`", line.split("|")[1])
    return names


def test_the_readme_and_the_template_list_the_same_settings() -> None:
    documented = set(readme_settings())
    in_template = set(checks.app_settings(marketplace.load(marketplace.TEMPLATE)))
    missing = sorted(documented - in_template - NOT_IN_TEMPLATE.keys())
    assert not missing, (
        f"README settings the template does not set: {missing}. Add them to infra/mainTemplate.json's appSettings "
        "(an empty value keeps the app's default), or to NOT_IN_TEMPLATE here with the reason."
    )
    undocumented = sorted(in_template - documented)
    assert not undocumented, f"template app settings no README table lists: {undocumented}"
    assert not sorted(NOT_IN_TEMPLATE.keys() & in_template), "a setting listed as not in the template is in it"
    assert len(documented) > 60  # the parser found the tables


def test_the_app_reads_the_template_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        name: ("" if value.startswith("[") else value)
        for name, value in checks.app_settings(marketplace.load(marketplace.TEMPLATE)).items()
    }
    # Expressions stand for what Azure fills in; give them values of the right shape.
    values.update({
        "AzureWebJobsStorage__blobServiceUri": "https://st1.blob.core.windows.net/",
        "AzureWebJobsStorage__queueServiceUri": "https://st1.queue.core.windows.net/",
        "AzureWebJobsStorage__tableServiceUri": "https://st1.table.core.windows.net/",
        "AzureSignalRConnectionString__serviceUri": "https://sigr1.service.signalr.net",
        "AZURE_CLIENT_ID": "0d2f7f1e-2b6c-4b8e-9a43-5e1f3c2d7a90", "PLAN_ID": "start", "LLM_PROVIDER": "offline",
        "KNOWLEDGE_BACKEND": "local", "ADMIN_KEY": "k" * 40, "MARKETPLACE_OFFER": "managed-app",
    })  # fmt: skip
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("AzureWebJobsStorage", "STORAGE_CONNECTION_STRING", "SIGNALR_CONNECTION_STRING",
                 "AzureSignalRConnectionString"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    from shared.config import Settings

    settings = Settings()
    sections = [settings.llm, settings.auth, settings.realtime, settings.knowledge, settings.control]
    assert all(section is not None for section in sections)
    assert settings.storage_table_uri.startswith("https://") and settings.storage_connection_string == ""
    assert settings.realtime.service_uri and settings.marketplace_offer == "managed-app"
    assert settings.plan_id == "start" and settings.max_body_bytes == 65536  # "" is the app's default
