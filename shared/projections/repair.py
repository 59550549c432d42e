"""The repair timer's work: outbox rows nobody applied get their notice again.

A notice can be lost between the commit and the enqueue (a crash, a Storage outage), or end on
the poison queue after repeated failures; the rows stay in the session's partition either way.
Every session is marked before it commits, so the timer only looks at marked sessions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.clock import utcnow
from shared.config import get_settings
from shared.storage.chats import ChatRepository
from shared.storage.errors import StorageUnavailable
from shared.storage.outbox import OutboxNotice, OutboxQueue, PendingMarkers
from shared.storage.rollups import RollupRepository

log = logging.getLogger(__name__)
_ROLLUP_MARKERS_KEPT = timedelta(days=2)


@dataclass
class RepairRun:
    """What one run did."""

    checked: int = 0
    requeued: int = 0
    forgotten: int = 0


async def repair_outbox(now: datetime | None = None) -> RepairRun:
    """Re-enqueue sessions whose outbox rows are older than the repair delay; forget drained markers."""
    settings = get_settings()
    now = now or utcnow()
    repair_after = timedelta(seconds=settings.outbox_repair_after_seconds)
    forget_after = timedelta(seconds=settings.outbox_forget_after_seconds)
    markers, chats, queue = PendingMarkers(), ChatRepository(), OutboxQueue()
    run = RepairRun()
    for marker in await markers.all():
        age = now - marker.marked_at
        if age < repair_after:
            continue
        run.checked += 1
        try:
            rows = await chats.outbox(marker.session_id)
            if any(now - row.created_at >= repair_after for row in rows):
                await queue.enqueue(OutboxNotice(marker.session_id))
                run.requeued += 1
            elif not rows and age >= forget_after:
                await markers.forget(marker)
                run.forgotten += 1
        except StorageUnavailable:
            log.warning("outbox repair stopped: storage unavailable")
            break
    return run


async def forget_rollup_markers(now: datetime | None = None) -> int:
    """Drop the rollups' exactly-once markers older than two days (no retry is that late)."""
    return await RollupRepository().forget_markers((now or utcnow()) - _ROLLUP_MARKERS_KEPT)
