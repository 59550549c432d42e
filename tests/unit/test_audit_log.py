"""The audit log without I/O: its filters, and the events a decision and a commit hand to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.control import audit
from shared.conversations import texts
from shared.conversations.machine import BotAnswer, BotAnswered, Note, VisitorMessage, decide
from shared.conversations.models import Session
from shared.projections.consequences import AUDIT, SEAT, consequences
from shared.web.http import Problem

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# --- audit filters -----------------------------------------------------------------------------------


def query(**params: str) -> audit.Query:
    return audit.parse_query(params, limit=50, retention_days=90, now=NOW)


def test_audit_filters_are_parsed_and_bounded_by_retention() -> None:
    q = query(event="guard:*", actor="admin", **{"from": "2026-11-20", "to": "2026-11-21T08:00:00+01:00"})
    assert q.where.event is None and q.where.event_prefix == "guard:" and q.where.actor == "admin"
    assert q.where.start == datetime(2026, 11, 20, tzinfo=UTC)
    assert q.where.end == datetime(2026, 11, 21, 7, tzinfo=UTC)
    plain = query()
    assert plain.where.start == NOW - timedelta(days=90) and plain.where.end > NOW
    assert query(event="status:closed").where.event == "status:closed"
    assert query(sessionId="0f8a").session_id == "0f8a"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"event": "nonsense"}, "event"),
        ({"event": "Guard:bot-off"}, "event"),
        ({"event": "guard:bot off"}, "event"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-11-22", "to": "2026-11-21"}, "from"),
        ({"sessionId": "a/b"}, "sessionId"),
        ({"actor": "x" * 201}, "actor"),
        ({"actor": "tab\there"}, "actor"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_a_bad_audit_filter_is_a_422_naming_it(params: dict[str, str], name: str) -> None:
    with pytest.raises(Problem) as caught:
        query(**params)
    assert caught.value.status == 422 and caught.value.extensions["errors"][0]["field"] == name


def test_every_catalogued_event_passes_the_filter() -> None:
    for event in audit.EVENTS:
        assert query(event=event).where.event == event


# --- what a decision tells the audit log -------------------------------------------------------------


def test_a_guard_and_a_failed_answer_leave_notes_and_the_session_counts_its_cost_per_day() -> None:
    session = Session("s1", created_at=NOW, last_activity_at=NOW, ai_calls_day="2026-11-22", ai_calls_today=4,
                      cost_today_micro_usd=9_000)  # fmt: skip
    guarded = decide(session, VisitorMessage("hi", guard=texts.MONTHLY_CAP), NOW)
    assert guarded.notes == [Note("guard:monthly-cap")] and guarded.after.status == "human_requested"
    assert guarded.message_from("bot").text == texts.GUARD_TEXT[texts.MONTHLY_CAP]  # type: ignore[union-attr]
    paid = decide(session, BotAnswered("hi", BotAnswer("Hello", cost_micro_usd=1_500)), NOW)
    assert paid.notes == [] and paid.after.cost_today_micro_usd == 1_500 and paid.after.ai_calls_today == 1
    again = decide(paid.after, BotAnswered("more", BotAnswer("Sure", cost_micro_usd=500)), NOW)
    assert again.after.cost_today_micro_usd == 2_000 and again.after.ai_calls_today == 2
    failed = decide(session, BotAnswered("hi", BotAnswer("Sorry", failed=True, provider="openai")), NOW)
    assert failed.notes == [Note("bot:failed", {"provider": "openai", "model": ""})]
    assert failed.after.ai_calls_today == 0 and failed.after.ai_calls_day == "2026-11-23"


def test_the_audit_row_lists_the_status_change_then_the_notes_with_the_correlation_id() -> None:
    session = Session("s1", created_at=NOW, last_activity_at=NOW, version=3)
    decision = decide(session, VisitorMessage("hi", guard=texts.BOT_OFF), NOW)
    decision.after.version = 4
    rows = consequences(
        decision.before, decision.after, decision.messages, notes=decision.notes, actor="visitor", now=NOW,
        correlation="c-1",
    )  # fmt: skip
    (row,) = [r for r in rows if r.kind == AUDIT]
    stamp = {"actor": "visitor", "at": "2026-11-23T12:00:00.000Z", "correlationId": "c-1"}
    assert row.payload == {
        "events": [
            {"event": "status:human_requested", **stamp, "details": {"previous": "open"}},
            {"event": "guard:bot-off", **stamp, "details": {}},
        ]
    }
    quiet = decide(decision.after, VisitorMessage("still there?"), NOW)
    assert not [r for r in consequences(quiet.before, quiet.after, quiet.messages, actor="v", now=NOW)
                if r.kind == AUDIT]  # fmt: skip
    claimed = Session("s2", created_at=NOW, last_activity_at=NOW, status="claimed", claimed_by="oid-1", version=2)
    seat = [r for r in consequences(session, claimed, [], actor="agent:oid-1", now=NOW, correlation="c-2")
            if r.kind == SEAT]  # fmt: skip
    assert seat[0].payload["correlationId"] == "c-2"
