"""Timer functions: seat metering and housekeeping (hourly); listener timeouts, search compaction and
the outbox repair (every minute)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import search
from shared.billing import metering
from shared.conversations import timeouts as listeners
from shared.projections import repair

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(schedule="0 5 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def seat_metering(timer: func.TimerRequest) -> None:
    """Report seats above the plan's quota to the Marketplace."""
    run = await metering.report_seat_usage()
    log.info(
        "seat metering: quantity %s, reported %s, failed %s (past due %s)",
        run.quantity,
        len(run.reported_hours),
        run.failed,
        timer.past_due,
    )


@bp.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=False)
async def listener_timeouts(timer: func.TimerRequest) -> None:
    """Unclaimed handoffs return to the bot; idle sessions close."""
    returned = await listeners.return_unclaimed_to_bot()
    closed = await listeners.close_idle()
    if returned or closed:
        log.info("listener timeouts: %s returned to the bot, %s closed", returned, closed)


# Second 30: away from the listener timer's second 0, so the two rarely share a worker's moment.
@bp.timer_trigger(schedule="30 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=False)
async def search_compaction(timer: func.TimerRequest) -> None:
    """Fold newly written messages into the search index's segments (one worker at a time)."""
    result = await search.compact()
    if result.get("compacted") or result.get("merged"):
        log.info("search compaction: %s", result)


# Second 45: between the listener timer (0) and compaction (30).
@bp.timer_trigger(schedule="45 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=False)
async def outbox_repair(timer: func.TimerRequest) -> None:
    """Re-enqueue outbox rows a lost notice or the poison queue left behind."""
    run = await repair.repair_outbox()
    if run.requeued:
        log.warning("outbox repair: %s sessions re-enqueued (of %s checked)", run.requeued, run.checked)


@bp.timer_trigger(schedule="0 20 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def outbox_housekeeping(timer: func.TimerRequest) -> None:
    """Drop the rollups' exactly-once markers once no retry can need them."""
    dropped = await repair.forget_rollup_markers()
    if dropped:
        log.info("outbox housekeeping: %s rollup markers dropped", dropped)
