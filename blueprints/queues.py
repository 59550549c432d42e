"""Queue-triggered functions: the outbox (every commit's derived work, applied off the request path)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.projections.apply import apply_outbox
from shared.storage.outbox import OutboxNotice
from shared.storage.tables import OUTBOX_QUEUE

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.queue_trigger(arg_name="msg", queue_name=OUTBOX_QUEUE, connection="AzureWebJobsStorage")
async def outbox(msg: func.QueueMessage) -> None:
    """Apply one session's outbox rows; raising lets the host retry, then park it on the poison queue."""
    try:
        notice = OutboxNotice.decode(msg.get_body().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        log.warning("outbox message %s is not a notice; dropped", msg.id)
        return
    applied = await apply_outbox(notice)
    log.debug("outbox of session %s: %d rows applied", notice.session_id, applied)
