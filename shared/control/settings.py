"""The runtime configuration's defaults: app settings, read once per worker (``settings.control``).

The kill switch and the AI-call caps keep their names in the main settings (``BOT_ENABLED``,
``MAX_AI_CALLS_*``); the others are declared here. Values are read as text and checked one by one
when the defaults are built: a malformed one is logged and its built-in default used, so a typo in
an app setting never stops the chat.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import Settings
from shared.control.model import InvalidConfig, validate

log = logging.getLogger(__name__)

DEFAULT_AWAY_MESSAGE = "Our team is away right now. Leave your email address and we'll reply as soon as we're back."
DEFAULT_RETENTION_DAYS = 90

BUILT_IN: dict[str, Any] = {
    "botEnabled": True,
    "autonomy": "auto",
    "autoSendAfterSeconds": 60,
    "handoffThreshold": 0.35,
    "handoffMode": "offer",
    "costCaps": {
        "perSessionPerDayUsd": None,
        "perDayUsd": None,
        "perMonthUsd": None,
        "aiCallsPerSessionPerDay": 50,
        "aiCallsPerDay": 2000,
    },
    "officeHours": None,
    "visitorChoice": False,
    "awayMessage": DEFAULT_AWAY_MESSAGE,
}


class ControlSettings(BaseSettings):
    """App settings that default the runtime configuration and bound the audit log (raw text)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore")

    autonomy: str = Field(default="", validation_alias="AUTONOMY")
    auto_send_after_seconds: str = Field(default="", validation_alias="AUTO_SEND_AFTER_SECONDS")
    handoff_threshold: str = Field(default="", validation_alias="HANDOFF_THRESHOLD")
    handoff_mode: str = Field(default="", validation_alias="HANDOFF_MODE")
    max_cost_usd_per_session_day: str = Field(default="", validation_alias="MAX_COST_USD_PER_SESSION_DAY")
    max_cost_usd_per_day: str = Field(default="", validation_alias="MAX_COST_USD_PER_DAY")
    max_cost_usd_per_month: str = Field(default="", validation_alias="MAX_COST_USD_PER_MONTH")
    office_hours: str = Field(default="", validation_alias="OFFICE_HOURS")
    visitor_choice: str = Field(default="", validation_alias="VISITOR_CHOICE")
    away_message: str = Field(default="", validation_alias="AWAY_MESSAGE")
    audit_retention_days: str = Field(default="", validation_alias="AUDIT_RETENTION_DAYS")

    @property
    def retention_days(self) -> int:
        """How many days of audit events are kept (``AUDIT_RETENTION_DAYS``, 1 to 3650)."""
        try:
            days = int(self.audit_retention_days)
        except ValueError:
            return DEFAULT_RETENTION_DAYS
        return days if 1 <= days <= 3650 else DEFAULT_RETENTION_DAYS


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(text)


def _number(text: str) -> float:
    return float(text)


def _whole(text: str) -> int:
    return int(text)


def _json(text: str) -> Any:
    return json.loads(text)


# (field path, setting attribute, app-setting name, parser)
_FROM_CONTROL: tuple[tuple[str, str, str, Any], ...] = (
    ("autonomy", "autonomy", "AUTONOMY", str.strip),
    ("autoSendAfterSeconds", "auto_send_after_seconds", "AUTO_SEND_AFTER_SECONDS", _whole),
    ("handoffThreshold", "handoff_threshold", "HANDOFF_THRESHOLD", _number),
    ("handoffMode", "handoff_mode", "HANDOFF_MODE", str.strip),
    ("costCaps.perSessionPerDayUsd", "max_cost_usd_per_session_day", "MAX_COST_USD_PER_SESSION_DAY", _number),
    ("costCaps.perDayUsd", "max_cost_usd_per_day", "MAX_COST_USD_PER_DAY", _number),
    ("costCaps.perMonthUsd", "max_cost_usd_per_month", "MAX_COST_USD_PER_MONTH", _number),
    ("officeHours", "office_hours", "OFFICE_HOURS", _json),
    ("visitorChoice", "visitor_choice", "VISITOR_CHOICE", _boolean),
    ("awayMessage", "away_message", "AWAY_MESSAGE", str),
)
# (field path, main Settings attribute, app-setting name)
_FROM_MAIN = (
    ("botEnabled", "bot_enabled", "BOT_ENABLED"),
    ("costCaps.aiCallsPerSessionPerDay", "max_ai_calls_per_session_day", "MAX_AI_CALLS_PER_SESSION_DAY"),
    ("costCaps.aiCallsPerDay", "max_ai_calls_per_day", "MAX_AI_CALLS_PER_DAY"),
)


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    head, _, member = path.partition(".")
    if member:
        document[head] = {**document[head], member: value}
    else:
        document[head] = value


def defaults(settings: Settings) -> tuple[dict[str, Any], set[str]]:
    """The default document (built-in values under the app settings) and the fields app settings set."""
    document = json.loads(json.dumps(BUILT_IN))
    from_settings: set[str] = set()
    for path, attribute, _ in _FROM_MAIN:
        if attribute in settings.model_fields_set:
            _put(document, path, getattr(settings, attribute))
            from_settings.add(path)
    control = settings.control
    for path, attribute, name, parse in _FROM_CONTROL:
        raw = getattr(control, attribute)
        if not raw:
            continue
        candidate = json.loads(json.dumps(document))
        try:
            _put(candidate, path, parse(raw))
            validate(candidate)
        except (ValueError, InvalidConfig) as exc:  # json.JSONDecodeError is a ValueError
            log.error("app setting %s is not usable and is ignored: %s", name, exc)
            continue
        document = candidate
        from_settings.add(path)
    return document, from_settings
