"""Applying a session's outbox: the work the outbox queue trigger does for each notice.

Rows are read in commit order and applied kind by kind; each applier is idempotent (running it
twice changes nothing), and a kind that fails stops there for this run, so its later rows never
overtake it. Applied rows are deleted. When any row failed, :class:`ProjectionFailed` is raised so
the queue delivers the notice again (and, after the host's ``maxDequeueCount``, moves it to the
poison queue; the rows stay for the repair timer).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from shared.projections.consequences import AUDIT, ORDERINGS, PUSH, ROLLUP, SEARCH, SEAT
from shared.storage.chats import ChatRepository, OutboxRow
from shared.storage.outbox import OutboxNotice

log = logging.getLogger(__name__)


class ProjectionFailed(Exception):
    """Some outbox rows could not be applied; they stay for the next delivery."""


Applier = Callable[[OutboxRow, OutboxNotice], Awaitable[None]]


async def apply_outbox(notice: OutboxNotice, *, chats: ChatRepository | None = None) -> int:
    """Apply every outbox row of the notice's session; returns how many were applied."""
    chats = chats or ChatRepository()
    rows = await chats.outbox(notice.session_id)
    failed: dict[str, str] = {}
    applied = 0
    projected_orderings = False
    for row in sorted(rows, key=lambda r: (r.version, r.kind)):
        if row.kind in failed:
            continue
        try:
            if row.kind == ORDERINGS and projected_orderings:
                pass  # the orderings project the current header: once covers every older row
            else:
                await _applier(row.kind)(row, notice)
                projected_orderings = projected_orderings or row.kind == ORDERINGS
        except Exception as exc:
            failed[row.kind] = type(exc).__name__
            log.warning("outbox %s v%d of session %s failed: %r", row.kind, row.version, row.session_id, exc)
            continue
        await chats.delete_outbox(row)
        applied += 1
    if failed:
        raise ProjectionFailed(f"session {notice.session_id}: {failed}")
    return applied


def _applier(kind: str) -> Applier:
    from shared.projections import appliers

    known: dict[str, Applier] = {
        ORDERINGS: appliers.project_orderings,
        ROLLUP: appliers.add_rollup,
        SEARCH: appliers.index_search,
        AUDIT: appliers.record_audit,
        SEAT: appliers.take_seat,
        PUSH: appliers.push,
    }
    if kind not in known:
        raise ValueError(f"unknown outbox row kind {kind!r}")
    return known[kind]
