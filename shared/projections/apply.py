"""Applying a session's outbox: the work the outbox queue trigger does for each notice.

Rows are read in commit order; each kind (orderings, rollup, search, audit, seat, push, gap, handoff) runs
beside the others, its own rows oldest first, and stops at its first failure so a later row never
overtakes an earlier one. Every applier is idempotent (running it twice changes nothing). Applied
rows are deleted together in one transaction. When any row failed, :class:`ProjectionFailed` is
raised so the queue delivers the notice again (after the host's ``maxDequeueCount`` it goes to the
poison queue; the rows stay for the repair timer).

Within one worker, notices for a session that is already being applied don't start a second run:
they ask the running one to read the outbox once more when it finishes (a burst of chat turns
costs one pass, not one per turn, and the runs don't trip over each other's writes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.projections.consequences import AUDIT, CARD, GAP, HANDOFF, ORDERINGS, PUSH, ROLLUP, SEARCH, SEAT, WEBHOOK
from shared.storage.chats import ChatRepository, OutboxRow
from shared.storage.outbox import OutboxNotice

log = logging.getLogger(__name__)


class ProjectionFailed(Exception):
    """Some outbox rows could not be applied; they stay for the next delivery."""


Applier = Callable[[OutboxRow, OutboxNotice], Awaitable[None]]


@dataclass
class _Run:
    again: bool = False
    pushed_upto: int = 0


_running: dict[str, _Run] = {}


async def apply_outbox(notice: OutboxNotice, *, chats: ChatRepository | None = None) -> int:
    """Apply every outbox row of the notice's session; returns how many were applied."""
    running = _running.get(notice.session_id)
    if running is not None:  # the run in progress reads the outbox again for us
        running.again = True
        running.pushed_upto = max(running.pushed_upto, notice.pushed_upto)
        return 0
    run = _running[notice.session_id] = _Run(pushed_upto=notice.pushed_upto)
    applied = 0
    try:
        while True:
            run.again = False
            applied += await _apply_once(OutboxNotice(notice.session_id, run.pushed_upto), chats or ChatRepository())
            if not run.again:
                return applied
    finally:
        del _running[notice.session_id]


async def _apply_once(notice: OutboxNotice, chats: ChatRepository) -> int:
    rows = await chats.outbox(notice.session_id)
    by_kind: dict[str, list[OutboxRow]] = {}
    for row in sorted(rows, key=lambda r: r.version):
        by_kind.setdefault(row.kind, []).append(row)
    outcomes = await asyncio.gather(*(_apply_kind(kind, kind_rows, notice) for kind, kind_rows in by_kind.items()))
    done = [row for applied, _ in outcomes for row in applied]
    await chats.delete_outbox(done)
    failed = {kind: error for (_, error), kind in zip(outcomes, by_kind, strict=True) if error}
    if failed:
        raise ProjectionFailed(f"session {notice.session_id}: {failed}")
    return len(done)


async def _apply_kind(kind: str, rows: list[OutboxRow], notice: OutboxNotice) -> tuple[list[OutboxRow], str]:
    """Apply one kind's rows in commit order; (rows applied, the error that stopped it or '')."""
    applied: list[OutboxRow] = []
    row = rows[0]
    try:
        applier = _applier(kind)
        if kind == ORDERINGS:  # the orderings hold a session's latest state: the newest row covers the rest
            row = rows[-1]
            await applier(row, notice)
            return rows, ""
        for row in rows:
            await applier(row, notice)
            applied.append(row)
    except Exception as exc:
        log.warning("outbox %s v%d of session %s failed: %r", kind, row.version, notice.session_id, exc)
        return applied, type(exc).__name__
    return applied, ""


def _applier(kind: str) -> Applier:
    from shared.analytics.projection import ANALYTICS, count_analytics
    from shared.projections import appliers
    from shared.webhooks import delivery as webhook_delivery

    known: dict[str, Applier] = {
        ORDERINGS: appliers.project_orderings,
        ROLLUP: appliers.add_rollup,
        SEARCH: appliers.index_search,
        AUDIT: appliers.record_audit,
        SEAT: appliers.take_seat,
        PUSH: appliers.push,
        GAP: appliers.record_gap,
        CARD: appliers.project_card,
        HANDOFF: appliers.write_summary,
        ANALYTICS: count_analytics,
        WEBHOOK: webhook_delivery.apply_outbox_row,
    }
    if kind == "channel":  # a channel session's replies, sent out through its channel
        from shared.channels.delivery import deliver

        return deliver
    if kind not in known:
        raise ValueError(f"unknown outbox row kind {kind!r}")
    return known[kind]
