"""Humans in control of the AI: the runtime configuration and the audit log you can read.

Owns ``model`` (the configuration's fields and rules, merge patches, diffs), ``presets``,
``hours`` (office hours as time), ``settings`` (the app settings that are its defaults), ``store``
(the effective configuration every worker reads through a short cache, and changes under an
ETag), ``audit`` (recording deployment-wide events; listing and counting events) and ``timeline``
(a session's messages and events in one list). Only the pure names are exported here; the use
cases are imported from their modules.
"""

from shared.control.hours import is_open, next_open
from shared.control.model import (
    AUTONOMY_MODES,
    FIELDS,
    CostCaps,
    InvalidConfig,
    OfficeHours,
    RuntimeConfig,
    diff,
    merge_patch,
    validate,
)
from shared.control.presets import PRESETS, preset_patch

__all__ = [
    "AUTONOMY_MODES",
    "FIELDS",
    "PRESETS",
    "CostCaps",
    "InvalidConfig",
    "OfficeHours",
    "RuntimeConfig",
    "diff",
    "is_open",
    "merge_patch",
    "next_open",
    "preset_patch",
    "validate",
]
