"""The visitor's rating of a closed conversation (CSAT), through the one commit path.

A rating is a command decided by the state machine (:class:`~shared.conversations.machine.Rate`):
only a closed conversation takes one, and only once (a second is 409 ``already-rated``). It is
committed with its outbox rows, so the audit log records ``rating:given`` and the analytics count it.
"""

from __future__ import annotations

from typing import Any

from shared.conversations.commit import Result, execute, load_for_change, once
from shared.conversations.machine import Decision, Rate
from shared.web.idempotency import RequestKey


def _rated(decision: Decision) -> tuple[int, dict[str, Any]]:
    after = decision.after
    return 201, {
        "sessionId": after.session_id,
        "rating": {"score": after.rating, "comment": after.rating_comment or None},
    }


async def rate_conversation(session_id: str, score: int, comment: str, request: RequestKey | None) -> Result:
    """Record the visitor's rating (201), or the refusal as a problem (409 open or already rated)."""

    async def run() -> Result:
        loaded = await load_for_change(session_id, request)
        return await execute(
            session_id, Rate(score, comment), respond=_rated, actor="visitor", request=request, loaded=loaded
        )

    return await once(session_id, request, run)
