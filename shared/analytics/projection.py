"""The outbox's analytics rows, applied: a commit's event folded into its conversation's day."""

from __future__ import annotations

from shared.analytics.facts import Event
from shared.projections.consequences import ANALYTICS
from shared.storage.analytics import AnalyticsRepository
from shared.storage.chats import OutboxRow
from shared.storage.outbox import OutboxNotice

__all__ = ["ANALYTICS", "count_analytics"]


async def count_analytics(row: OutboxRow, _: OutboxNotice) -> None:
    """Fold the commit into the analytics (once: the facts remember the last version applied)."""
    await AnalyticsRepository().apply(row.session_id, row.version, Event.from_payload(row.payload))
