"""Build the Azure Marketplace managed-application package: ``python -m infra.marketplace``.

The zip holds, at its root, ``mainTemplate.json`` and ``createUiDefinition.json`` (from this folder)
and ``app.zip`` (``make package``), which the template's ``onedeploy`` fetches from the package's
own location (``_artifactsLocation``). Partner Center takes one package per plan, so the plan is
written into the UI definition's ``planId`` output; the publisher's customer-usage-attribution GUID
names the template's empty ``pid-<GUID>`` deployment.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parent
TEMPLATE = INFRA / "mainTemplate.json"
UI_DEFINITION = INFRA / "createUiDefinition.json"
PLANS = ("start", "growth", "professional")
PID_PREFIX = "pid-"
# Partner Center gives each publisher a tracking GUID; this placeholder marks "not set yet".
PLACEHOLDER_PID = "00000000-0000-0000-0000-000000000000"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same bytes


def load(path: Path) -> dict[str, Any]:
    """A JSON document."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def with_pid(template: dict[str, Any], pid: str) -> dict[str, Any]:
    """The template with its ``pid-<GUID>`` deployment renamed to ``pid``; ``ValueError`` on a bad GUID."""
    pid = pid.strip().lower()
    if not _GUID.match(pid):
        raise ValueError(f"the usage-attribution id must be a GUID, not {pid!r}")
    copy = json.loads(json.dumps(template))
    found = [r for r in copy["resources"] if r["type"] == "Microsoft.Resources/deployments"]
    found = [r for r in found if str(r["name"]).startswith(PID_PREFIX)]
    if len(found) != 1:
        raise ValueError("the template must hold exactly one pid-<GUID> deployment")
    found[0]["name"] = PID_PREFIX + pid
    return copy


def with_plan(ui_definition: dict[str, Any], plan: str) -> dict[str, Any]:
    """The UI definition whose ``planId`` output is ``plan``; ``ValueError`` for an unknown plan."""
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}, not {plan!r}")
    copy = json.loads(json.dumps(ui_definition))
    copy["parameters"]["outputs"]["planId"] = plan
    return copy


def build(out: Path, *, plan: str = "start", pid: str = PLACEHOLDER_PID, app_zip: Path | None = None) -> Path:
    """Write the package to ``out`` and return it."""
    files: dict[str, bytes] = {
        "mainTemplate.json": json.dumps(with_pid(load(TEMPLATE), pid), indent=2).encode(),
        "createUiDefinition.json": json.dumps(with_plan(load(UI_DEFINITION), plan), indent=2).encode(),
    }
    if app_zip is not None:
        files["app.zip"] = app_zip.read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: build the package, say where it is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dist/marketplace.zip"))
    parser.add_argument("--plan", default="start", choices=PLANS)
    parser.add_argument("--pid", default=PLACEHOLDER_PID, help="the publisher's usage-attribution GUID")
    parser.add_argument("--app-zip", type=Path, help="the app package (make package); omitted: templates only")
    args = parser.parse_args(argv)
    if args.app_zip is not None and not args.app_zip.is_file():
        parser.error(f"{args.app_zip} does not exist: run make package first")
    try:
        out = build(args.out, plan=args.plan, pid=args.pid, app_zip=args.app_zip)
    except ValueError as exc:
        parser.error(str(exc))
    if args.pid == PLACEHOLDER_PID and args.app_zip is not None:
        print("note: no PID given; set PID=<your Partner Center tracking GUID> before publishing", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
