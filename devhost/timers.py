"""Timer triggers on six-field NCRONTAB schedules (UTC), with ``past_due`` as Azure sets it.

https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions.timer import TimerRequest
from croniter import croniter

log = logging.getLogger("devhost.timers")

# A run that starts later than this after its scheduled time is past due.
PAST_DUE_AFTER = timedelta(seconds=1)


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` matching the six-field schedule (seconds first)."""
    fields = schedule.split()
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs six fields (second minute hour day month day-of-week): {schedule!r}")
    result = croniter(schedule, after, second_at_beginning=True).get_next(datetime)
    return result if result.tzinfo else result.replace(tzinfo=UTC)


def previous_occurrence(schedule: str, before: datetime) -> datetime:
    """The last time at or before ``before`` matching the schedule."""
    result = croniter(schedule, before + timedelta(microseconds=1), second_at_beginning=True).get_prev(datetime)
    return result if result.tzinfo else result.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass
class TimerFunction:
    """One timer-triggered function of the app."""

    name: str
    schedule: str
    arg_name: str
    user_function: Callable[..., Any]
    run_on_startup: bool = False
    last_run: datetime | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` for a schedule the host would refuse."""
        next_occurrence(self.schedule, datetime.now(UTC))

    async def invoke(self, *, past_due: bool, next_run: datetime | None) -> None:
        """Call the function with a ``TimerRequest``, async or in a thread."""
        request = TimerRequest(
            past_due=past_due,
            schedule_status={
                "Last": _iso(self.last_run),
                "Next": _iso(next_run),
                "LastUpdated": _iso(datetime.now(UTC)),
            },
            schedule={"AdjustForDST": False},
        )
        self.last_run = datetime.now(UTC)
        kwargs = {self.arg_name: request}
        if inspect.iscoroutinefunction(self.user_function):
            await self.user_function(**kwargs)
        else:
            await asyncio.to_thread(self.user_function, **kwargs)

    async def run_forever(self) -> None:
        """Fire on schedule until cancelled; a failed run is logged and not retried (as in Azure)."""
        if self.run_on_startup:
            await self._run_logged(past_due=False, next_run=next_occurrence(self.schedule, datetime.now(UTC)))
        scheduled = next_occurrence(self.schedule, datetime.now(UTC))
        while True:
            delay = (scheduled - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            started = datetime.now(UTC)
            following = next_occurrence(self.schedule, scheduled)
            await self._run_logged(past_due=started - scheduled > PAST_DUE_AFTER, next_run=following)
            now = datetime.now(UTC)
            # Occurrences missed while running collapse into one past-due run, as in Azure.
            scheduled = following if following > now else previous_occurrence(self.schedule, now)

    async def _run_logged(self, *, past_due: bool, next_run: datetime | None) -> None:
        try:
            await self.invoke(past_due=past_due, next_run=next_run)
            log.info("timer %s ran (past_due=%s)", self.name, past_due)
        except Exception:
            log.exception("timer %s failed", self.name)
