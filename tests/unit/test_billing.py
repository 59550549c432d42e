"""The seat rule, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.billing.plans import BUILTIN_PLANS, builtin_plan
from shared.billing.seats import evaluate

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
GROWTH = BUILTIN_PLANS["growth"]  # 7 seats, 7 days of grace


def test_under_and_at_quota_is_fine() -> None:
    for seats in (0, 7):
        status = evaluate(GROWTH, seats, None, NOW)
        assert (status.exceeded, status.days_over_quota, status.blocked) == (False, 0, False)


def test_grace_period_counts_whole_days_then_blocks() -> None:
    assert evaluate(GROWTH, 8, NOW, NOW).public("u")["daysOverQuota"] == 0
    six = evaluate(GROWTH, 8, NOW - timedelta(days=6, hours=23), NOW)
    assert (six.exceeded, six.days_over_quota, six.blocked) == (True, 6, False)
    seven = evaluate(GROWTH, 8, NOW - timedelta(days=7), NOW)
    assert (seven.days_over_quota, seven.blocked) == (7, True)


def test_public_shape_matches_the_contract() -> None:
    body = evaluate(GROWTH, 4, None, NOW).public("https://upgrade")
    assert body == {
        "planId": "growth", "planDisplayName": "Growth", "seatQuota": 7, "seatsUsed": 4, "exceeded": False,
        "daysOverQuota": 0, "gracePeriodDays": 7, "blocked": False, "upgradeUrl": "https://upgrade",
    }  # fmt: skip


def test_unknown_plan_ids_fall_back_to_the_smallest_plan() -> None:
    assert builtin_plan("GROWTH").plan_id == "growth"
    assert builtin_plan("nonsense").plan_id == "start"
