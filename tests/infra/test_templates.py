"""The Marketplace template and UI definition pass the offline checks, and broken copies fail them."""

from __future__ import annotations

import json
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra import checks, marketplace

PID = "6e0b2d7a-4a4c-4c55-9d0e-3f1a2b9c8d71"


@pytest.fixture()
def template() -> dict[str, Any]:
    """A fresh copy of infra/mainTemplate.json."""
    return marketplace.load(marketplace.TEMPLATE)


@pytest.fixture()
def ui() -> dict[str, Any]:
    """A fresh copy of infra/createUiDefinition.json."""
    return marketplace.load(marketplace.UI_DEFINITION)


def site(template: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in template["resources"] if r["type"] == "Microsoft.Web/sites")


def test_the_sources_pass_every_check(template: dict[str, Any], ui: dict[str, Any]) -> None:
    assert checks.check_all(template, ui) == []


def test_the_built_package_has_both_files_at_its_root_and_passes(tmp_path: Path) -> None:
    app_zip = tmp_path / "app.zip"
    with zipfile.ZipFile(app_zip, "w") as archive:
        archive.writestr("function_app.py", "app = None\n")
    out = marketplace.build(tmp_path / "marketplace.zip", plan="growth", pid=PID, app_zip=app_zip)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["app.zip", "createUiDefinition.json", "mainTemplate.json"]
    template, ui, problems = checks.read_package(out)
    assert problems == [] and checks.check_all(template, ui) == []
    assert ui["parameters"]["outputs"]["planId"] == "growth"
    assert f"pid-{PID}" in {r["name"] for r in template["resources"]}
    assert checks.main([str(out)]) == 0


def test_the_builder_refuses_a_bad_pid_or_plan(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GUID"):
        marketplace.build(tmp_path / "m.zip", pid="not-a-guid")
    with pytest.raises(ValueError, match="plan"):
        marketplace.build(tmp_path / "m.zip", plan="enterprise")


def test_a_missing_parameter_fails(template: dict[str, Any], ui: dict[str, Any]) -> None:
    del template["parameters"]["planId"]
    problems = checks.check_all(template, ui)
    assert "createUiDefinition output 'planId' is not a mainTemplate parameter" in problems
    assert "parameters('planId') is not declared" in problems


def test_a_ui_output_without_a_parameter_fails(template: dict[str, Any], ui: dict[str, Any]) -> None:
    ui["parameters"]["outputs"]["teamsAppTitle"] = "[steps('website').teamsAppName]"
    assert checks.check_all(template, ui) == [
        "createUiDefinition output 'teamsAppTitle' is not a mainTemplate parameter"
    ]


def test_a_required_parameter_missing_from_the_ui_fails(template: dict[str, Any], ui: dict[str, Any]) -> None:
    del ui["parameters"]["outputs"]["adminKey"]
    assert "mainTemplate parameter 'adminKey' has no default and no createUiDefinition output" in checks.check_all(
        template, ui
    )


def test_the_location_output_is_required(template: dict[str, Any], ui: dict[str, Any]) -> None:
    ui["parameters"]["outputs"]["location"] = "[basics('appName')]"
    assert "createUiDefinition must output location as [location()]" in checks.check_all(template, ui)


def test_a_hard_coded_location_fails(template: dict[str, Any], ui: dict[str, Any]) -> None:
    template["resources"][0]["location"] = "westeurope"
    problems = checks.check_location(template, ui)
    assert any("must come from parameters('location')" in p for p in problems)
    assert any("hard-coded region 'westeurope'" in p for p in problems)


def test_a_hard_coded_url_fails(template: dict[str, Any]) -> None:
    settings = site(template)["properties"]["siteConfig"]["appSettings"]
    settings.append({"name": "ARM", "value": "https://management.azure.com/"})
    settings.append({"name": "STORAGE", "value": "[format('{0}.blob.core.windows.net', 'x')]"})
    problems = checks.check_urls(template)
    assert len(problems) == 2 and all("hard-coded URL" in p for p in problems)


def test_old_and_preview_api_versions_fail(template: dict[str, Any]) -> None:
    assert checks.check_api_versions(template, today=date(2026, 11, 30)) == []
    template["resources"][1]["apiVersion"] = "2023-01-01"  # the storage account
    template["resources"][0]["apiVersion"] = "2025-01-31-preview"  # the identity
    problems = checks.check_api_versions(template, today=date(2026, 11, 30))
    assert any("Microsoft.Storage/storageAccounts@2023-01-01: older than two years" in p for p in problems)
    assert any("2025-01-31-preview: a preview apiVersion" in p for p in problems)
    # Two years on, today's versions age out too, unless they are the provider's newest stable one.
    later = checks.check_api_versions(marketplace.load(marketplace.TEMPLATE), today=date(2027, 7, 1))
    assert any("Microsoft.Storage/storageAccounts@2025-06-01" in p for p in later)
    assert not any("Microsoft.Authorization/roleAssignments" in p for p in later)


def test_secrets_in_outputs_fail(template: dict[str, Any], ui: dict[str, Any]) -> None:
    template["outputs"]["adminKey"] = {"type": "string", "value": "[parameters('adminKey')]"}
    template["outputs"]["storage"] = {"type": "object", "value": "[listKeys(resourceId('x', 'y'), '2025-06-01')]"}
    problems = checks.check_outputs(template)
    assert "output 'adminKey': its name says it holds a secret" in problems
    assert "output 'adminKey': it returns a secure parameter" in problems
    assert "output 'storage': list*() returns secrets" in problems


def test_an_unused_parameter_or_variable_fails(template: dict[str, Any]) -> None:
    template["parameters"]["unused"] = {"type": "string", "defaultValue": "x"}
    template["variables"]["alsoUnused"] = "[parameters('location')]"
    problems = checks.check_references(template)
    assert problems == ["parameter 'unused' is never used", "variable 'alsoUnused' is never used"]


def test_a_secure_parameter_with_a_default_fails(template: dict[str, Any]) -> None:
    template["parameters"]["azureOpenAiApiKey"]["defaultValue"] = "sk-123"
    assert "secure parameter 'azureOpenAiApiKey' must not have a default value" in checks.check_references(template)


def test_language_version_2_fails(template: dict[str, Any], ui: dict[str, Any]) -> None:
    template["languageVersion"] = "2.0"
    problems = checks.check_all(template, ui)
    assert "languageVersion is '2.0': managed applications accept 1.0 only" in problems
    assert any(p.startswith("schema deploymentTemplate") and "languageVersion" in p for p in problems)


def test_the_ui_schema_wants_a_validation_message_on_every_text_box(
    template: dict[str, Any], ui: dict[str, Any]
) -> None:
    del ui["parameters"]["basics"][0]["constraints"]["validations"][0]["message"]
    ui["parameters"]["steps"][0]["elements"].append({"name": "typo", "type": "Microsoft.Common.TextBoxx"})
    problems = checks.check_all(template, ui)
    assert any("'message' is a required property" in p for p in problems)
    assert any("'Microsoft.Common.TextBoxx' is not one of" in p for p in problems)


def test_a_ui_reference_to_a_missing_element_fails(ui: dict[str, Any]) -> None:
    ui["parameters"]["outputs"]["teamsAppName"] = "[steps('website').teamsName]"
    assert checks.check_ui_references(ui) == [
        "$.outputs.teamsAppName: steps('website').teamsName names no element of that step"
    ]


def test_keys_and_settings_flex_refuses_fail(template: dict[str, Any]) -> None:
    settings = site(template)["properties"]["siteConfig"]["appSettings"]
    settings.append({"name": "FUNCTIONS_WORKER_RUNTIME", "value": "python"})
    settings.append({"name": "SIGNALR_CONNECTION_STRING", "value": "[listKeys(resourceId('a', 'b'), '2024-03-01')]"})
    settings.append({"name": "STORAGE", "value": "[concat('AccountName=x;AccountKey=', 'y')]"})
    next(r for r in template["resources"] if r["type"] == "Microsoft.Storage/storageAccounts")["properties"][
        "allowSharedKeyAccess"
    ] = True
    problems = checks.check_deployment(template)
    assert "app setting FUNCTIONS_WORKER_RUNTIME: the Flex Consumption plan does not support it" in problems
    assert "app setting SIGNALR_CONNECTION_STRING: carries a key (use the managed identity)" in problems
    assert "app setting STORAGE: carries a key (use the managed identity)" in problems
    assert "Microsoft.Storage/storageAccounts: allowSharedKeyAccess must be False (keyless)" in problems


def test_the_usage_attribution_deployment_is_required(template: dict[str, Any]) -> None:
    template["resources"] = [r for r in template["resources"] if not r["name"].startswith("pid-")]
    assert "exactly one pid-<GUID> usage-attribution deployment is needed" in checks.check_deployment(template)


def test_a_broken_package_fails_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ui = marketplace.load(marketplace.UI_DEFINITION)
    ui["parameters"]["outputs"]["orphan"] = "x"
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("mainTemplate.json", json.dumps(marketplace.load(marketplace.TEMPLATE)))
        archive.writestr("createUiDefinition.json", json.dumps(ui))
    assert checks.main([str(broken)]) == 1
    assert "FAIL createUiDefinition output 'orphan' is not a mainTemplate parameter" in capsys.readouterr().out
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as archive:
        archive.writestr("package/mainTemplate.json", "{}")
    assert checks.main([str(nested)]) == 1
