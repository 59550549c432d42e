"""``local.settings.json`` and ``host.json``, read the way Core Tools reads them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def apply_local_settings(path: Path) -> dict[str, Any]:
    """Export ``Values`` as environment variables (an already-set variable wins); return the file."""
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        for name, value in (data.get("Values") or {}).items():
            if name not in os.environ and value is not None:
                os.environ[name] = str(value)
    # Core Tools forces Development locally; so do we, unless the caller chose otherwise.
    os.environ.setdefault("AZURE_FUNCTIONS_ENVIRONMENT", "Development")
    return data


def route_prefix(host_json: Path) -> str:
    """``extensions.http.routePrefix`` (default ``api``), without slashes."""
    if not host_json.exists():
        return "api"
    data = json.loads(host_json.read_text(encoding="utf-8"))
    prefix = ((data.get("extensions") or {}).get("http") or {}).get("routePrefix", "api")
    return str(prefix).strip("/")


def resolve_app_setting(value: str) -> str:
    """``%Name%`` means the value of app setting ``Name``."""
    if len(value) > 2 and value.startswith("%") and value.endswith("%"):
        return os.environ.get(value[1:-1], "")
    return value


def is_disabled(function_name: str) -> bool:
    """``AzureWebJobs.<name>.Disabled = true`` turns a function off."""
    flag = os.environ.get(f"AzureWebJobs.{function_name}.Disabled", "")
    return flag.lower() in ("true", "1")
