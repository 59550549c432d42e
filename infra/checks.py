"""Offline checks of the Marketplace package: ``python -m infra.checks [dist/marketplace.zip]``.

The schemas in ``infra/schemas`` (no network), then the rules of Microsoft's ARM template test
toolkit (arm-ttk) that decide whether Partner Center accepts a managed application, rewritten here
because arm-ttk needs PowerShell: the UI definition's outputs are template parameters (and every
parameter without a default is one), ``location`` is ``[location()]``, no hard-coded regions or
cloud URLs (``environment()`` gives those), apiVersions at most two years old unless they are the
provider's newest stable one, no secrets in outputs, every parameter and variable used,
languageVersion 1.0 (managed applications refuse 2.0), the usage-attribution deployment, and the
keyless settings this product relies on. Each check returns human-readable problems; none means pass.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parent
SCHEMAS = INFRA / "schemas"
MAX_API_AGE = timedelta(days=730)
# The newest stable apiVersion each provider publishes (November 2026): arm-ttk accepts a version
# older than two years only when no newer stable one exists. Update when a provider ships one.
NEWEST_STABLE = {
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
    "Microsoft.Insights/components": "2020-02-02",
    "Microsoft.SignalRService/signalR": "2024-03-01",
    "Microsoft.ManagedIdentity/userAssignedIdentities": "2024-11-30",
}
# Host names that belong to one cloud: templates get them from environment() instead (arm-ttk's list).
CLOUD_DOMAINS = (
    "azure.com",
    "azure.net",
    "azure.cn",
    "azure.us",
    "windows.net",
    "microsoftonline.com",
    "azurewebsites.net",
    "azure-api.net",
    "azurecr.io",
    "azuredatalakestore.net",
    "cloudapp.net",
    "microsoft.com",
)
REGIONS = frozenset(
    """eastus eastus2 westus westus2 westus3 centralus northcentralus southcentralus westcentralus
    canadacentral canadaeast brazilsouth brazilsoutheast mexicocentral chilecentral northeurope westeurope
    uksouth ukwest francecentral francesouth germanywestcentral germanynorth switzerlandnorth
    switzerlandwest norwayeast norwaywest swedencentral swedensouth polandcentral italynorth spaincentral
    austriaeast belgiumcentral denmarkeast finlandcentral greececentral israelcentral qatarcentral
    uaenorth uaecentral southafricanorth southafricawest centralindia southindia westindia jioindiawest
    jioindiacentral eastasia southeastasia japaneast japanwest koreacentral koreasouth australiaeast
    australiasoutheast australiacentral australiacentral2 newzealandnorth indonesiacentral
    malaysiawest taiwannorth usgovvirginia usgovarizona usgovtexas chinanorth chinaeast chinanorth2
    chinaeast2 chinanorth3 chinaeast3""".split()
)
# App settings the Flex Consumption plan does not support: the runtime lives in functionAppConfig,
# code is deployed to the deployment container, and its remote build is onedeploy's own.
FLEX_REFUSED_SETTINGS = frozenset(
    {
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "FUNCTIONS_MAX_HTTP_CONCURRENCY",
        "FUNCTIONS_WORKER_PROCESS_COUNT",
        "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_NODE_DEFAULT_VERSION",
        "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    }
)
# Settings that hold a connection string, hence a key: the template gives their identity-based forms.
KEYED_SETTINGS = frozenset(
    {"AzureWebJobsStorage", "STORAGE_CONNECTION_STRING", "SIGNALR_CONNECTION_STRING", "AzureSignalRConnectionString"}
)
_PARAMETER_REF = re.compile(r"parameters\(\s*'([^']+)'\s*\)")
_VARIABLE_REF = re.compile(r"variables\(\s*'([^']+)'\s*\)")
_BASICS_REF = re.compile(r"basics\(\s*'([^']+)'\s*\)")
_STEPS_REF = re.compile(r"steps\(\s*'([^']+)'\s*\)\.([A-Za-z0-9_]+)")
_API_VERSION = re.compile(r"'(\d{4}-\d{2}-\d{2}(?:-[a-z]+)?)'")
_LITERAL_URL = re.compile(r"https?://(?!\{)", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SECRET_NAME = re.compile(r"password|secret|key|token|connectionstring", re.IGNORECASE)


def strings(node: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """Every string in a JSON document (keys included), with where it is."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", key
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")


def resources(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every resource, nested child resources included."""
    stack = list(template.get("resources", []))
    while stack:
        resource = stack.pop(0)
        if isinstance(resource, dict):
            yield resource
            stack.extend(resource.get("resources", []))


def schema_problems(document: dict[str, Any], schema_name: str) -> list[str]:
    """Validation errors against a schema shipped in ``infra/schemas``."""
    import jsonschema

    schema = json.loads((SCHEMAS / schema_name).read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"schema {schema_name}: {'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]


def check_language_version(template: dict[str, Any]) -> list[str]:
    """Managed applications deploy languageVersion 1.0 only: no languageVersion 2.0 or its features."""
    problems = []
    version = template.get("languageVersion")
    if version not in (None, "1.0"):
        problems.append(f"languageVersion is {version!r}: managed applications accept 1.0 only")
    if not isinstance(template.get("resources"), list):
        problems.append("resources must be an array (symbolic names need languageVersion 2.0)")
    for feature in ("definitions", "extensions", "imports"):
        if feature in template:
            problems.append(f"'{feature}' needs languageVersion 2.0")
    for resource in resources(template):
        if resource.get("existing"):
            problems.append(f"resource {resource.get('name')}: 'existing' needs languageVersion 2.0")
    return problems


def check_ui_outputs(template: dict[str, Any], ui: dict[str, Any]) -> list[str]:
    """Every UI output is a template parameter; every parameter without a default is a UI output."""
    parameters = template.get("parameters", {})
    outputs = ui.get("parameters", {}).get("outputs", {})
    problems = [f"createUiDefinition output '{name}' is not a mainTemplate parameter" for name in outputs
                if name not in parameters]  # fmt: skip
    problems += [
        f"mainTemplate parameter '{name}' has no default and no createUiDefinition output"
        for name, spec in parameters.items()
        if "defaultValue" not in spec and name not in outputs
    ]
    return problems


def check_location(template: dict[str, Any], ui: dict[str, Any]) -> list[str]:
    """``location`` comes from the UI as ``[location()]``; resources take it from the parameter."""
    problems = []
    if ui.get("parameters", {}).get("outputs", {}).get("location") != "[location()]":
        problems.append("createUiDefinition must output location as [location()]")
    location = template.get("parameters", {}).get("location")
    if location is None:
        problems.append("mainTemplate needs a 'location' parameter")
    elif location.get("defaultValue", "[resourceGroup().location]") not in ("[resourceGroup().location]", "global"):
        problems.append("the location parameter's default must be [resourceGroup().location]")
    for resource in resources(template):
        value = resource.get("location")
        if value is not None and value != "global" and "parameters('location')" not in str(value):
            problems.append(
                f"resource {resource.get('name')}: location {value!r} must come from parameters('location')"
            )
    for where, text in strings(template):
        if text.strip().lower().replace(" ", "") in REGIONS:
            problems.append(f"{where}: hard-coded region {text!r}")
    return problems


def check_urls(template: dict[str, Any]) -> list[str]:
    """No literal URLs or cloud host names: ``environment()`` and resource properties give them."""
    problems = []
    for where, text in strings(template):
        if where.endswith(".$schema") or text.startswith("https://schema.management.azure.com/schemas/"):
            continue
        lowered = text.lower()
        if _LITERAL_URL.search(text) or any(domain in lowered for domain in CLOUD_DOMAINS):
            problems.append(f"{where}: hard-coded URL or cloud host in {text[:80]!r}")
    return problems


def check_api_versions(template: dict[str, Any], today: date | None = None) -> list[str]:
    """apiVersions: stable, and at most two years old unless the provider has no newer stable one."""
    today = today or date.today()
    problems = []
    seen: set[tuple[str, str]] = {(str(r.get("type")), str(r.get("apiVersion"))) for r in resources(template)}
    # reference('...', 'yyyy-mm-dd') calls carry apiVersions too: check them against their resource type.
    for _, text in strings(template):
        for call in re.finditer(r"reference\(resourceId\('([^']+)'[^)]*\),\s*'([^']+)'", text):
            seen.add((call.group(1), call.group(2)))
    for kind, version in sorted(seen):
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", version):
            problems.append(f"{kind}@{version}: a preview apiVersion (use a stable one)")
            continue
        released = date.fromisoformat(version)
        if today - released > MAX_API_AGE and NEWEST_STABLE.get(kind) != version:
            problems.append(
                f"{kind}@{version}: older than two years and not the newest stable apiVersion "
                "(use a newer one, or record the provider's newest in infra/checks.py NEWEST_STABLE)"
            )
    return problems


def check_outputs(template: dict[str, Any]) -> list[str]:
    """No secrets in outputs: no secret-sounding names, no list*() calls, no secure parameters."""
    secure = {name for name, spec in template.get("parameters", {}).items()
              if str(spec.get("type", "")).lower() in ("securestring", "secureobject")}  # fmt: skip
    problems = []
    for name, output in template.get("outputs", {}).items():
        text = json.dumps(output.get("value"))
        if _SECRET_NAME.search(name):
            problems.append(f"output '{name}': its name says it holds a secret")
        if re.search(r"\blist[A-Za-z]*\(", text):
            problems.append(f"output '{name}': list*() returns secrets")
        if any(name in secure for name in _PARAMETER_REF.findall(text)):
            problems.append(f"output '{name}': it returns a secure parameter")
    for required in ("dashboardUrl", "widgetScriptUrl"):
        if required not in template.get("outputs", {}):
            problems.append(f"output '{required}' is missing")
    return problems


def check_references(template: dict[str, Any]) -> list[str]:
    """Every parameter and variable is used; every one used is declared."""
    body = {key: value for key, value in template.items() if key != "parameters"}
    used_text = json.dumps(body) + json.dumps(
        {name: spec.get("defaultValue") for name, spec in template.get("parameters", {}).items()}
    )
    parameters = set(template.get("parameters", {}))
    variables = set(template.get("variables", {}))
    used_parameters = set(_PARAMETER_REF.findall(used_text))
    variables_text = json.dumps({k: v for k, v in body.items() if k != "variables"})
    # A variable counts as used when something other than its own definition names it.
    used_variables = set(_VARIABLE_REF.findall(variables_text))
    for name, value in template.get("variables", {}).items():
        used_variables |= set(_VARIABLE_REF.findall(json.dumps(value))) - {name}
    problems = [f"parameter '{name}' is never used" for name in sorted(parameters - used_parameters)]
    problems += [f"parameters('{name}') is not declared" for name in sorted(used_parameters - parameters)]
    problems += [f"variable '{name}' is never used" for name in sorted(variables - used_variables)]
    problems += [f"variables('{name}') is not declared" for name in sorted(used_variables - variables)]
    for name, spec in template.get("parameters", {}).items():
        if str(spec.get("type", "")).lower() in ("securestring", "secureobject") and spec.get("defaultValue"):
            problems.append(f"secure parameter '{name}' must not have a default value")
    return problems


def check_ui_references(ui: dict[str, Any]) -> list[str]:
    """Every ``basics('x')`` and ``steps('s').x`` in the UI definition names an element that exists."""
    parameters = ui.get("parameters", {})
    basics = {element["name"] for element in parameters.get("basics", [])}
    steps = {step["name"]: {element["name"] for element in step.get("elements", [])}
             for step in parameters.get("steps", [])}  # fmt: skip
    problems = []
    for where, text in strings(parameters):
        for name in _BASICS_REF.findall(text):
            if name not in basics:
                problems.append(f"{where}: basics('{name}') names no basics element")
        for step, name in _STEPS_REF.findall(text):
            if name not in steps.get(step, set()):
                problems.append(f"{where}: steps('{step}').{name} names no element of that step")
    return problems


def app_settings(template: dict[str, Any]) -> dict[str, str]:
    """The Function App's app settings, name to value (expressions as written)."""
    for resource in resources(template):
        if resource.get("type") == "Microsoft.Web/sites":
            settings = resource.get("properties", {}).get("siteConfig", {}).get("appSettings", [])
            return {item["name"]: item["value"] for item in settings}
    return {}


def check_deployment(template: dict[str, Any]) -> list[str]:
    """The usage-attribution deployment, Flex Consumption's settings, and no keys anywhere."""
    problems = []
    deployments = [r for r in resources(template) if r.get("type") == "Microsoft.Resources/deployments"]
    pids = [r for r in deployments if str(r.get("name", "")).startswith("pid-")]
    if len(pids) != 1:
        problems.append("exactly one pid-<GUID> usage-attribution deployment is needed")
    else:
        guid = str(pids[0]["name"]).removeprefix("pid-")
        inner = pids[0].get("properties", {}).get("template", {})
        if not _GUID.match(guid):
            problems.append(f"pid deployment: {guid!r} is not a lowercase GUID")
        if inner.get("resources") != []:
            problems.append("pid deployment: its template must be empty")
    settings = app_settings(template)
    if not settings:
        problems.append("no Microsoft.Web/sites resource with app settings")
    for name in sorted(FLEX_REFUSED_SETTINGS & settings.keys()):
        problems.append(f"app setting {name}: the Flex Consumption plan does not support it")
    for name, value in settings.items():
        if name in KEYED_SETTINGS or re.search(r"accountkey=|listkeys\(|accesskey=", str(value), re.IGNORECASE):
            problems.append(f"app setting {name}: carries a key (use the managed identity)")
    expectations = {
        "Microsoft.Storage/storageAccounts": ("allowSharedKeyAccess", False),
        "Microsoft.SignalRService/signalR": ("disableLocalAuth", True),
        "Microsoft.Insights/components": ("DisableLocalAuth", True),
    }
    for resource in resources(template):
        expected = expectations.get(str(resource.get("type")))
        if expected and resource.get("properties", {}).get(expected[0]) is not expected[1]:
            problems.append(f"{resource['type']}: {expected[0]} must be {expected[1]} (keyless)")
    return problems


def check_all(template: dict[str, Any], ui: dict[str, Any], today: date | None = None) -> list[str]:
    """Every check on one template and UI definition."""
    return [
        *schema_problems(template, "deploymentTemplate.schema.json"),
        *schema_problems(ui, "createUiDefinition.schema.json"),
        *check_language_version(template),
        *check_ui_outputs(template, ui),
        *check_location(template, ui),
        *check_urls(template),
        *check_api_versions(template, today),
        *check_outputs(template),
        *check_references(template),
        *check_ui_references(ui),
        *check_deployment(template),
    ]


def read_package(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(template, UI definition, problems with the zip's layout)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        required = ("mainTemplate.json", "createUiDefinition.json")
        problems = [f"{name} must be at the zip's root" for name in required if name not in names]
        if problems:
            return {}, {}, problems
        template = json.loads(archive.read("mainTemplate.json"))
        ui = json.loads(archive.read("createUiDefinition.json"))
    return template, ui, problems


def main(argv: list[str] | None = None) -> int:
    """Check a built package (or, with no argument, the sources in ``infra/``); exit 1 on a problem."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        template, ui, problems = read_package(Path(args[0]))
        if not problems:
            problems = check_all(template, ui)
    else:
        template = json.loads((INFRA / "mainTemplate.json").read_text(encoding="utf-8"))
        ui = json.loads((INFRA / "createUiDefinition.json").read_text(encoding="utf-8"))
        problems = check_all(template, ui)
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{'FAILED' if problems else 'OK'}: {len(problems)} problem(s) in {args[0] if args else 'infra/'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
