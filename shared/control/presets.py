"""Presets: named sets of the behaviour settings, applied as one merge patch (pure).

A preset sets how freely the bot acts and what it may spend; it leaves the kill switch, office
hours, the away message and the AI-call caps alone. Values are documented in the README.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # Every reply approved by a person; the bot hands over at once when unsure; small budgets.
    "conservative": {
        "autonomy": "approve",
        "autoSendAfterSeconds": 300,
        "handoffThreshold": 0.6,
        "handoffMode": "immediate",
        "visitorChoice": True,
        "costCaps": {"perSessionPerDayUsd": 0.5, "perDayUsd": 20.0, "perMonthUsd": 300.0},
    },
    # Replies go out unless a person stops them within a minute; the bot offers a person when unsure.
    "balanced": {
        "autonomy": "auto-after",
        "autoSendAfterSeconds": 60,
        "handoffThreshold": 0.35,
        "handoffMode": "offer",
        "visitorChoice": True,
        "costCaps": {"perSessionPerDayUsd": 2.0, "perDayUsd": 100.0, "perMonthUsd": 2000.0},
    },
    # The bot answers on its own and hands over only when it is quite unsure; large budgets.
    "aggressive": {
        "autonomy": "auto",
        "autoSendAfterSeconds": 60,
        "handoffThreshold": 0.15,
        "handoffMode": "offer",
        "visitorChoice": False,
        "costCaps": {"perSessionPerDayUsd": 10.0, "perDayUsd": 500.0, "perMonthUsd": 10000.0},
    },
}


def preset_patch(name: str) -> dict[str, Any] | None:
    """The merge patch of preset ``name`` (a copy), or None for an unknown name."""
    preset = PRESETS.get(name)
    if preset is None:
        return None
    return {key: dict(value) if isinstance(value, dict) else value for key, value in preset.items()}
