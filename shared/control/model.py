"""The runtime configuration as data (pure, no I/O): its fields, their rules, merge patches and diffs.

An admin changes these while the app runs (``/api/config``); app settings are the defaults. The
stored record holds only the fields an admin set (the *overrides*), so a field nobody touched keeps
following its app setting. The effective configuration is the defaults with the overrides merged
over them (RFC 7396), validated as a whole by :class:`RuntimeConfig`.
https://www.rfc-editor.org/rfc/rfc7396
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AUTONOMY_MODES = ("auto", "approve", "auto-after")
HANDOFF_MODES = ("offer", "immediate")
MAX_AWAY_MESSAGE = 500
MAX_CAP_USD = 1_000_000.0
MAX_CAP_CALLS = 1_000_000_000
MAX_RANGES_PER_DAY = 6
MAX_CLOSED_DATES = 400
MIN_AUTO_SEND_SECONDS, MAX_AUTO_SEND_SECONDS = 5, 24 * 3600

# Members of the GET body that are not configuration; sending them in a PATCH is a 422.
READ_ONLY = ("sources", "updatedAt", "updatedBy")
# Fields whose value is one leaf of the diff and of ``sources``: nested objects except these are
# compared member by member (the cost caps), these as a whole (office hours).
WHOLE_FIELDS = ("officeHours",)

_RANGE = re.compile(r"(?P<h1>[01][0-9]|2[0-3]):(?P<m1>[0-5][0-9])-(?P<h2>[01][0-9]|2[0-4]):(?P<m2>[0-5][0-9])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_STRICT = ConfigDict(extra="forbid", strict=True, defer_build=True, frozen=True)


def minutes_of(time_range: str) -> tuple[int, int]:
    """``"09:00-17:30"`` as minutes since midnight: (540, 1050)."""
    match = _RANGE.fullmatch(time_range)
    if match is None:
        raise ValueError(f"{time_range!r} is not HH:MM-HH:MM")
    start = int(match["h1"]) * 60 + int(match["m1"])
    end = int(match["h2"]) * 60 + int(match["m2"])
    return start, end


def _time_range(value: str) -> str:
    try:
        start, end = minutes_of(value)
    except ValueError:
        raise ValueError("must be HH:MM-HH:MM (24-hour clock, 24:00 allowed as an end)") from None
    if end > 24 * 60:
        raise ValueError("must end at 24:00 at the latest")
    if start >= end:
        raise ValueError("must start before it ends (a range past midnight is two ranges, one per day)")
    return value


def _closed_date(value: str) -> str:
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date as YYYY-MM-DD") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain more than whitespace")
    return value


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: Table storage can't hold them


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain NUL or unpaired surrogate characters")
    return value


TimeRange = Annotated[str, AfterValidator(_time_range)]
ClosedDate = Annotated[str, AfterValidator(_closed_date)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
UsdCap = Annotated[float | None, Field(ge=0, le=MAX_CAP_USD)]
CallCap = Annotated[int | None, Field(ge=0, le=MAX_CAP_CALLS)]


class CostCaps(BaseModel):
    """Caps on what the bot may spend; past one it hands the visitor to a person (null: no cap)."""

    model_config = _STRICT

    perSessionPerDayUsd: UsdCap = None
    perDayUsd: UsdCap = None
    perMonthUsd: UsdCap = None
    aiCallsPerSessionPerDay: CallCap = None
    aiCallsPerDay: CallCap = None


class OfficeHours(BaseModel):
    """When the team is in: weekly ranges in a time zone, and dates it is closed."""

    model_config = _STRICT

    timezone: str = Field(min_length=1, max_length=64)
    weekly: dict[Weekday, Annotated[list[TimeRange], Field(max_length=MAX_RANGES_PER_DAY)]]
    closedDates: Annotated[list[ClosedDate], Field(max_length=MAX_CLOSED_DATES)] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # UnicodeError is a ValueError
            raise ValueError("must be an IANA time zone such as Europe/Madrid") from None
        return value

    @field_validator("weekly")
    @classmethod
    def _no_overlaps(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, ranges in value.items():
            spans = sorted(minutes_of(r) for r in ranges)
            for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
                if start < end:
                    raise ValueError(f"ranges of {day} overlap")
        return value

    @field_validator("closedDates")
    @classmethod
    def _unique_dates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a date")
        return value


class RuntimeConfig(BaseModel):
    """The effective configuration: every field, validated together."""

    model_config = _STRICT

    botEnabled: bool
    autonomy: Literal["auto", "approve", "auto-after"]
    autoSendAfterSeconds: int = Field(ge=MIN_AUTO_SEND_SECONDS, le=MAX_AUTO_SEND_SECONDS)
    handoffThreshold: float = Field(ge=0, le=1)
    handoffMode: Literal["offer", "immediate"]
    costCaps: CostCaps
    officeHours: OfficeHours | None
    visitorChoice: bool
    awayMessage: Annotated[
        str, Field(min_length=1, max_length=MAX_AWAY_MESSAGE), AfterValidator(_not_blank), AfterValidator(_storable)
    ]


FIELDS = tuple(RuntimeConfig.model_fields)
CAP_FIELDS = tuple(CostCaps.model_fields)


class InvalidConfig(ValueError):
    """The configuration breaks its rules; ``errors`` names each field (``officeHours.timezone``)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def _errors_of(exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        # A bad dict key is reported at ``(..., key, "[key]")``: the key is the field.
        loc = [str(part) for part in error["loc"] if part != "[key]"]
        message = str(error["msg"]).removeprefix("Value error, ")
        errors.append({"field": ".".join(loc) or "body", "message": message})
    return errors


def validate(document: dict[str, Any]) -> RuntimeConfig:
    """The configuration ``document`` describes; :class:`InvalidConfig` naming every bad field."""
    try:
        return RuntimeConfig.model_validate(document)
    except ValidationError as exc:
        raise InvalidConfig(_errors_of(exc)) from None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: ``patch`` applied to ``target`` (neither is changed; null members are removed)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def check_patch(patch: dict[str, Any]) -> None:
    """Refuse what no valid result could contain: read-only members, unknown fields, wrong shapes."""
    errors = [{"field": name, "message": "is read-only"} for name in READ_ONLY if name in patch]
    errors += [
        {"field": name, "message": f"is not a setting; the settings are {', '.join(FIELDS)}"}
        for name in patch
        if name not in FIELDS and name not in READ_ONLY
    ]
    caps = patch.get("costCaps")
    if caps is not None and not isinstance(caps, dict):
        errors.append({"field": "costCaps", "message": "must be an object"})
    elif isinstance(caps, dict):
        errors += [
            {"field": f"costCaps.{name}", "message": f"is not a cap; the caps are {', '.join(CAP_FIELDS)}"}
            for name in caps
            if name not in CAP_FIELDS
        ]
    if errors:
        raise InvalidConfig(errors)


def leaves(document: dict[str, Any]) -> dict[str, Any]:
    """The document as ``{"field" or "costCaps.member": value}``: what diffs and sources speak of."""
    flat: dict[str, Any] = {}
    for name, value in document.items():
        if isinstance(value, dict) and name not in WHOLE_FIELDS:
            for member, inner in value.items():
                flat[f"{name}.{member}"] = inner
        else:
            flat[name] = value
    return flat


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed between two effective documents: ``[{"field", "before", "after"}]``, in field order."""
    old, new = leaves(before), leaves(after)
    names = list(new) + [name for name in old if name not in new]
    return [{"field": n, "before": old.get(n), "after": new.get(n)} for n in names if old.get(n) != new.get(n)]


def touched(overrides: dict[str, Any], name: str) -> bool:
    """Whether the overrides set the leaf ``name`` (``costCaps.perDayUsd``) or anything inside it."""
    head, _, member = name.partition(".")
    if head not in overrides:
        return False
    return not member or (isinstance(overrides[head], dict) and member in overrides[head])


def matches(if_match: str, etag: str) -> bool:
    """RFC 9110 If-Match: ``*`` or a list of strong ETags, one of them ``etag`` (weak ones never match)."""
    candidates = [part.strip() for part in if_match.split(",")]
    return "*" in candidates or etag in candidates
