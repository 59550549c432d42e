"""The runtime configuration without I/O: field rules, merge patches, presets, defaults, office hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.config import Settings
from shared.control.hours import is_open, next_open
from shared.control.model import (
    FIELDS,
    InvalidConfig,
    OfficeHours,
    check_patch,
    diff,
    matches,
    merge_patch,
    validate,
)
from shared.control.presets import PRESETS, preset_patch
from shared.control.settings import BUILT_IN, defaults

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday


def fields_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        validate(document)
    return [error["field"] for error in caught.value.errors]


def patched(patch: dict[str, Any]) -> dict[str, Any]:
    return merge_patch(BUILT_IN, patch)


# --- fields ------------------------------------------------------------------------------------------


def test_the_built_in_defaults_are_valid_and_today_s_behaviour() -> None:
    config = validate(BUILT_IN)
    assert config.botEnabled is True and config.autonomy == "auto" and config.officeHours is None
    assert config.costCaps.aiCallsPerSessionPerDay == 50 and config.costCaps.aiCallsPerDay == 2000
    assert config.costCaps.perDayUsd is None
    assert list(FIELDS) == list(BUILT_IN)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"botEnabled": "false"}, "botEnabled"),  # strict: a string is not a boolean
        ({"autonomy": "yolo"}, "autonomy"),
        ({"autoSendAfterSeconds": 1}, "autoSendAfterSeconds"),
        ({"autoSendAfterSeconds": 1.5}, "autoSendAfterSeconds"),
        ({"handoffThreshold": 1.01}, "handoffThreshold"),
        ({"handoffThreshold": -0.1}, "handoffThreshold"),
        ({"handoffThreshold": True}, "handoffThreshold"),
        ({"handoffMode": "later"}, "handoffMode"),
        ({"costCaps": {"perDayUsd": -1}}, "costCaps.perDayUsd"),
        ({"costCaps": {"perMonthUsd": "10"}}, "costCaps.perMonthUsd"),
        ({"costCaps": {"aiCallsPerDay": 1.5}}, "costCaps.aiCallsPerDay"),
        ({"visitorChoice": 1}, "visitorChoice"),
        ({"awayMessage": "   "}, "awayMessage"),
        ({"awayMessage": "x" * 501}, "awayMessage"),
        ({"awayMessage": "nul \x00 inside"}, "awayMessage"),
        ({"officeHours": {"timezone": "Mars/Olympus", "weekly": {}}}, "officeHours.timezone"),
        ({"officeHours": {"timezone": "../../etc/passwd", "weekly": {}}}, "officeHours.timezone"),
        ({"officeHours": {"weekly": {}}}, "officeHours.timezone"),
        ({"officeHours": {"timezone": "UTC"}}, "officeHours.weekly"),
        ({"officeHours": {"timezone": "UTC", "weekly": {"someday": []}}}, "officeHours.weekly.someday"),
        ({"officeHours": {"timezone": "UTC", "weekly": {"mon": ["9-17"]}}}, "officeHours.weekly.mon.0"),
        ({"officeHours": {"timezone": "UTC", "weekly": {"mon": ["17:00-09:00"]}}}, "officeHours.weekly.mon.0"),
        ({"officeHours": {"timezone": "UTC", "weekly": {"mon": ["09:00-24:30"]}}}, "officeHours.weekly.mon.0"),
        ({"officeHours": {"timezone": "UTC", "weekly": {"mon": ["09:00-13:00", "12:00-17:00"]}}},
         "officeHours.weekly"),
        ({"officeHours": {"timezone": "UTC", "weekly": {}, "closedDates": ["2026-02-30"]}},
         "officeHours.closedDates.0"),
        ({"officeHours": {"timezone": "UTC", "weekly": {}, "closedDates": ["2026-12-25", "2026-12-25"]}},
         "officeHours.closedDates"),
        ({"officeHours": {"timezone": "UTC", "weekly": {}, "extra": 1}}, "officeHours.extra"),
    ],
)  # fmt: skip
def test_an_invalid_value_is_refused_naming_its_field(patch: dict[str, Any], field: str) -> None:
    assert fields_of(patched(patch)) == [field]


def test_valid_values_pass() -> None:
    config = validate(
        patched(
            {
                "autonomy": "auto-after",
                "autoSendAfterSeconds": 30,
                "handoffThreshold": 1,  # an integer is a number
                "costCaps": {"perSessionPerDayUsd": 0.25, "perDayUsd": 10, "aiCallsPerDay": 0},
                "officeHours": {
                    "timezone": "Europe/Madrid",
                    "weekly": {"mon": ["09:00-13:00", "15:00-18:00"], "sat": ["10:00-24:00"]},
                    "closedDates": ["2026-12-25"],
                },
                "visitorChoice": True,
                "awayMessage": "Back soon ✨",
            }
        )
    )
    assert config.costCaps.perDayUsd == 10.0 and config.officeHours is not None
    assert config.officeHours.weekly["sat"] == ["10:00-24:00"]


def test_a_patch_with_unknown_or_read_only_members_is_refused_before_merging() -> None:
    with pytest.raises(InvalidConfig) as caught:
        check_patch({"botEnabled": False, "sources": {}, "colour": "red", "costCaps": {"perYearUsd": 1}})
    assert [e["field"] for e in caught.value.errors] == ["sources", "colour", "costCaps.perYearUsd"]
    with pytest.raises(InvalidConfig):
        check_patch({"costCaps": 5})
    check_patch({"botEnabled": None, "costCaps": None})  # resetting is fine


def test_merge_patch_follows_rfc_7396() -> None:
    # https://www.rfc-editor.org/rfc/rfc7396#appendix-A
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
    original = {"a": {"b": 1}}
    merge_patch(original, {"a": {"b": 2}})
    assert original == {"a": {"b": 1}}  # the target is not changed


def test_diff_names_each_changed_leaf_with_before_and_after() -> None:
    before = validate(BUILT_IN).model_dump(mode="json")
    hours = {"timezone": "UTC", "weekly": {"mon": ["09:00-17:00"]}, "closedDates": []}
    after = validate(patched({"botEnabled": False, "costCaps": {"perDayUsd": 5}, "officeHours": hours}))
    assert diff(before, after.model_dump(mode="json")) == [
        {"field": "botEnabled", "before": True, "after": False},
        {"field": "costCaps.perDayUsd", "before": None, "after": 5.0},
        {"field": "officeHours", "before": None, "after": hours},
    ]


# --- presets -----------------------------------------------------------------------------------------


def test_every_preset_is_a_valid_patch_and_leaves_the_kill_switch_and_hours_alone() -> None:
    assert set(PRESETS) == {"conservative", "balanced", "aggressive"}
    for name in PRESETS:
        patch = preset_patch(name)
        assert patch is not None
        check_patch(patch)
        config = validate(patched(patch))
        assert config.botEnabled is True and config.officeHours is None
        assert config.costCaps.aiCallsPerDay == 2000  # the call caps are not a preset's
    assert validate(patched(preset_patch("conservative") or {})).autonomy == "approve"
    assert validate(patched(preset_patch("conservative") or {})).handoffMode == "immediate"
    assert preset_patch("reckless") is None
    caps = [PRESETS[name]["costCaps"]["perDayUsd"] for name in ("conservative", "balanced", "aggressive")]
    assert caps == sorted(caps)


# --- app settings as defaults ------------------------------------------------------------------------


def test_app_settings_are_the_defaults_and_a_malformed_one_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_ENABLED", "false")
    monkeypatch.setenv("MAX_AI_CALLS_PER_DAY", "7")
    monkeypatch.setenv("MAX_COST_USD_PER_DAY", "12.5")
    monkeypatch.setenv("AUTONOMY", "approve")
    monkeypatch.setenv("HANDOFF_THRESHOLD", "1.5")  # out of range: ignored
    monkeypatch.setenv("OFFICE_HOURS", '{"timezone": "Europe/Madrid", "weekly": {"mon": ["09:00-17:00"]}}')
    monkeypatch.setenv("VISITOR_CHOICE", "maybe")  # not a boolean: ignored
    document, from_settings = defaults(Settings())
    config = validate(document)
    assert config.botEnabled is False and config.costCaps.aiCallsPerDay == 7 and config.costCaps.perDayUsd == 12.5
    assert config.autonomy == "approve" and config.handoffThreshold == 0.35 and config.visitorChoice is False
    assert config.officeHours is not None and config.officeHours.timezone == "Europe/Madrid"
    assert from_settings == {"botEnabled", "costCaps.aiCallsPerDay", "costCaps.perDayUsd", "autonomy", "officeHours"}


# --- If-Match ----------------------------------------------------------------------------------------


def test_if_match_compares_strong_etags() -> None:
    assert matches('"abc"', '"abc"') and matches('"x", "abc"', '"abc"') and matches("*", '"abc"')
    assert not matches('W/"abc"', '"abc"') and not matches('"abd"', '"abc"') and not matches("abc", '"abc"')


# --- office hours ------------------------------------------------------------------------------------


MADRID = OfficeHours.model_validate(
    {
        "timezone": "Europe/Madrid",
        "weekly": {"mon": ["09:00-13:00", "15:00-18:00"], "tue": ["09:00-18:00"], "sat": ["10:00-24:00"]},
        "closedDates": ["2026-11-24"],
    }
)


def test_office_hours_are_local_wall_clock_ranges() -> None:
    # 12:00 UTC on Monday 23 Nov is 13:00 in Madrid (CET, UTC+1): the lunch break.
    assert not is_open(MADRID, NOW)
    assert is_open(MADRID, NOW - timedelta(hours=1))  # 12:00 local
    assert is_open(MADRID, NOW + timedelta(hours=2))  # 15:00 local: the range's first minute
    assert not is_open(MADRID, NOW + timedelta(hours=5))  # 18:00 local: the range has ended
    assert is_open(None, NOW)


def test_the_next_opening_skips_closed_dates_and_empty_days() -> None:
    assert next_open(MADRID, NOW) == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 15:00 local
    evening = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    # Tuesday the 24th is closed; Wednesday to Friday have no ranges; Saturday opens at 10:00 local.
    assert next_open(MADRID, evening) == datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert next_open(MADRID, NOW - timedelta(hours=1)) == NOW - timedelta(hours=1)  # open now
    never = OfficeHours.model_validate({"timezone": "UTC", "weekly": {}})
    assert next_open(never, NOW) is None


def test_office_hours_keep_local_time_across_daylight_saving() -> None:
    summer = datetime(2026, 7, 6, 7, 30, tzinfo=UTC)  # Monday 09:30 in Madrid (CEST, UTC+2)
    winter = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)  # Monday 09:30 in Madrid (CET, UTC+1)
    assert is_open(MADRID, summer) and is_open(MADRID, winter)
