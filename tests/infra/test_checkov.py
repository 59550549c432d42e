"""checkov, offline, with the project's skip list: the template passes, an insecure copy fails."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from infra import marketplace

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".tools" / "bin" / "checkov"
CONFIG = ROOT / "infra" / "checkov.yaml"


def run_checkov(template: Path) -> subprocess.CompletedProcess[str]:
    if not CHECKOV.exists():
        message = "checkov is installed by `make lint` into .tools/ (its pinned dependencies clash with the app's)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [str(CHECKOV), "-f", str(template), "--config-file", str(CONFIG)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_template_has_no_finding() -> None:
    result = run_checkov(marketplace.TEMPLATE)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Failed checks: 0" in result.stdout


def test_an_insecure_storage_account_fails(tmp_path: Path) -> None:
    template = marketplace.load(marketplace.TEMPLATE)
    storage = next(r for r in template["resources"] if r["type"] == "Microsoft.Storage/storageAccounts")
    storage["properties"].update(supportsHttpsTrafficOnly=False, minimumTlsVersion="TLS1_0")
    broken = tmp_path / "mainTemplate.json"
    broken.write_text(json.dumps(template))
    result = run_checkov(broken)
    assert result.returncode == 1
    assert "CKV_AZURE_3" in result.stdout and "CKV_AZURE_44" in result.stdout
