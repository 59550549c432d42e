"""The Teams app package the endpoint serves, checked by Microsoft's own validator; its version counter
over real storage; the privacy and terms pages its manifest points at.

The validator is ``@microsoft/app-manifest``'s ``AppManifestUtils.validateAgainstSchema`` with the
schema bundled in that npm package (installed by ``package.json``), run by
``tests/node/validate_teams_package.mjs``, which also checks the icons.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import Azurite
from devhost.processes import ROOT
from tests.conftest import Host
from tests.support import ADMIN_KEY, host_env, tables

VALIDATOR = ROOT / "tests" / "node" / "validate_teams_package.mjs"
CLIENT_ID = "0b7c4f52-8e21-4d3a-9f60-5a1e2c3d4b5f"
PUBLIC_HOST = "desk.contoso.example"
SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$"


def download(host: Host, **headers: str) -> bytes:
    """The Teams app package, as the dashboard's admin downloads it."""
    with host.client() as api:
        response = api.get("/teams-app.zip", headers={"Authorization": f"Bearer {ADMIN_KEY}", **headers})
    assert response.status_code == 200, response.text
    return response.content


def manifest_of(package: bytes) -> dict[str, Any]:
    """The package's manifest.json."""
    return json.loads(zipfile.ZipFile(io.BytesIO(package)).read("manifest.json"))


def validate(package: bytes, folder: Path) -> dict[str, Any]:
    """Unzip ``package`` into ``folder`` and run Microsoft's validator on it; fails with its errors."""
    if not (ROOT / "node_modules" / "@microsoft" / "app-manifest").is_dir():
        pytest.fail("@microsoft/app-manifest is not installed: run `make setup` (npm ci)")
    zipfile.ZipFile(io.BytesIO(package)).extractall(folder)
    run = subprocess.run(
        ["node", str(VALIDATOR), str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode in (0, 1), f"the validator could not run ({run.returncode}): {run.stderr}{run.stdout}"
    report: dict[str, Any] = json.loads(run.stdout)
    errors = [f"schema: {e}" for e in report["schemaErrors"]] + [f"icon: {e}" for e in report["iconErrors"]]
    assert not errors, "Microsoft's validator refused the package:\n" + "\n".join(errors)
    assert run.returncode == 0
    assert report["schema"].endswith("json-schemas/teams/v1.17/MicrosoftTeams.schema.json")  # the bundled copy
    return report


def test_the_served_package_passes_microsofts_validator(
    azurite: Azurite, start_host: Callable[..., Host], tmp_path: Path
) -> None:
    host = start_host(host_env(azurite, AAD_APP_CLIENT_ID=CLIENT_ID, PUBLIC_HOST=PUBLIC_HOST))
    package = download(host)
    validate(package, tmp_path)
    manifest = manifest_of(package)
    assert "packageName" not in manifest
    assert manifest["validDomains"] == [PUBLIC_HOST]
    assert manifest["developer"]["privacyUrl"] == f"https://{PUBLIC_HOST}/api/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == f"https://{PUBLIC_HOST}/api/terms"


def test_a_local_package_keeps_the_port_and_passes_the_validator(
    azurite: Azurite, start_host: Callable[..., Host], tmp_path: Path
) -> None:
    # No configured host: the request's Host, as on a developer's machine (`make dev` on :7071).
    env = host_env(azurite, AAD_APP_CLIENT_ID=CLIENT_ID, PUBLIC_HOST="", WEBSITE_HOSTNAME="")
    package = download(start_host(env), Host="localhost:7071")
    validate(package, tmp_path)
    manifest = manifest_of(package)
    assert manifest["staticTabs"][0]["contentUrl"] == "https://localhost:7071/api/agent"
    assert manifest["staticTabs"][0]["websiteUrl"] == "https://localhost:7071/api/agent"
    assert manifest["developer"]["privacyUrl"] == "https://localhost:7071/api/privacy"
    assert manifest["webApplicationInfo"]["resource"] == f"api://localhost:7071/{CLIENT_ID}"
    assert manifest["validDomains"] == ["localhost"]


def test_the_version_goes_up_when_the_package_changes(
    fresh_azurite: Azurite, start_host: Callable[..., Host], tmp_path: Path
) -> None:
    base = {"AAD_APP_CLIENT_ID": CLIENT_ID, "PUBLIC_HOST": PUBLIC_HOST, "APP_VERSION": "3.4.0"}
    first_host = start_host(host_env(fresh_azurite, **base, PRIVACY_URL="", TERMS_URL=""))
    first = download(first_host)
    assert download(first_host) == first, "the same content keeps its version (and bytes)"
    first_host.stop()
    assert manifest_of(first)["version"] == "3.4.1"

    # A redeployment with other settings: another package, so Teams must see a higher version.
    own_pages = {"PRIVACY_URL": "https://contoso.example/privacy", "TERMS_URL": "https://contoso.example/terms"}
    second_host = start_host(host_env(fresh_azurite, **base, **own_pages))
    second = download(second_host)
    validate(second, tmp_path)
    manifest = manifest_of(second)
    assert manifest["version"] == "3.4.2"
    assert manifest["id"] == manifest_of(first)["id"], "the same Teams app, updated"
    assert manifest["developer"]["privacyUrl"] == "https://contoso.example/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == "https://contoso.example/terms"

    # The counter lives in the meta table, so any worker (or a restart) continues from it.
    stored = tables(fresh_azurite).get_table_client("meta").get_entity("state", "teams-package")
    assert stored["counter"] == 2 and len(stored["contentHash"]) == 64
    assert all(re.match(SEMVER, manifest_of(p)["version"]) for p in (first, second))


@pytest.mark.parametrize(("path", "title"), [("/privacy", "Privacy statement"), ("/terms", "Terms of use")])
def test_the_privacy_and_terms_pages_are_served(app: Host, path: str, title: str) -> None:
    with app.client() as api:  # anonymous: Teams and the admin center open them for anyone
        response = api.get(path)
        assert response.status_code == 200, response.text
        cached = api.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "frame-ancestors" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert f"<h1>{title}</h1>" in response.text and "<script" not in response.text
    assert cached.status_code == 304
