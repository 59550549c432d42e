"""Citations on bot messages, and content gaps: which decisions name one, the outbox row that carries it,
and grouping by similarity (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.conversations import AskForPerson, BotAnswer, BotAnswered, Gap, Session, VisitorMessage, decide
from shared.conversations.models import HUMAN_REQUESTED, OPEN
from shared.knowledge.gaps import group_gaps, is_question, similarity, words_of
from shared.projections.consequences import GAP, consequences
from shared.realtime.events import message_payload
from shared.storage.chats import message_entity, message_from_entity
from shared.storage.gaps import GapRecord, day_key

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def session(*recent: tuple[str, str], status: str = OPEN) -> Session:
    return Session("s1", status=status, recent=list(recent))


def test_an_answer_the_knowledge_did_not_cover_is_a_gap_with_its_citations_none() -> None:
    answer = BotAnswer("I don't know; shall I ask a person?", gap="no-match")
    decision = decide(session(), BotAnswered("Do you sell kayaks?", answer), NOW)
    assert decision.gap == Gap("Do you sell kayaks?", "no-match")
    reply = decision.message_from("bot")
    assert reply is not None and reply.public()["citations"] == []


def test_a_grounded_answer_carries_its_citations_and_no_gap() -> None:
    cited: tuple[dict[str, str | None], ...] = (
        {"sourceId": "s", "title": "Shipping", "url": "https://shop.example/shipping"},
    )
    decision = decide(session(), BotAnswered("How long?", BotAnswer("3 to 5 days.", citations=cited)), NOW)
    reply = decision.message_from("bot")
    assert decision.gap is None and reply is not None and reply.public()["citations"] == list(cited)
    visitor = decision.message_from("visitor")
    assert visitor is not None and "citations" not in visitor.public()  # only bot answers cite
    assert message_payload(reply)["citations"] == list(cited)  # the SignalR event carries them
    stored = message_from_entity(message_entity(reply))  # and the message row keeps them
    assert stored.citations == list(cited) and stored.public() == reply.public()


def test_asking_for_a_person_makes_the_previous_question_a_gap() -> None:
    earlier = session(("visitor", "Can I rent a tent?"), ("bot", "I don't know."))
    typed = decide(earlier, VisitorMessage("talk to a person", wants_person=True), NOW)
    assert typed.after.status == HUMAN_REQUESTED and typed.gap == Gap("Can I rent a tent?", "handoff")
    pressed = decide(earlier, AskForPerson(), NOW)
    assert pressed.gap == Gap("Can I rent a tent?", "handoff")
    assert decide(session(), AskForPerson(), NOW).gap is None  # nothing asked before
    # A guard (kill switch, cost cap) hands off because the bot is off, not because the knowledge failed.
    guarded = decide(earlier, VisitorMessage("Can I rent skis?", guard="bot-off"), NOW)
    assert guarded.after.status == HUMAN_REQUESTED and guarded.gap is None


def test_a_late_answer_dropped_for_a_person_records_no_gap() -> None:
    waiting = session(status=HUMAN_REQUESTED)
    dropped = decide(waiting, BotAnswered("Kayaks?", BotAnswer("I don't know.", gap="no-match")), NOW)
    assert dropped.gap is None and dropped.message_from("bot") is None


def test_the_gap_travels_as_an_outbox_row_of_its_own() -> None:
    decision = decide(session(), BotAnswered("Do you sell kayaks?", BotAnswer("?", gap="unanswered")), NOW)
    decision.after.version = 1
    rows = consequences(decision.before, decision.after, decision.messages, gap=decision.gap, actor="visitor", now=NOW)
    (gap,) = [row for row in rows if row.kind == GAP]
    assert gap.payload == {"question": "Do you sell kayaks?", "reason": "unanswered", "at": "2026-11-30T12:00:00.000Z"}
    assert not [row for row in consequences(decision.before, decision.after, [], actor="v", now=NOW) if row.kind == GAP]


def test_requests_for_a_person_greetings_and_empty_words_are_not_questions() -> None:
    assert is_question("Do you sell kayaks?")
    for not_one in ("talk to a person", "agent", "hello", "thanks a lot", "how do I?", "???"):
        assert not is_question(not_one), not_one


def record(question: str, when: str, session_id: str = "s", *reasons: str, dismissed: str = "") -> GapRecord:
    return GapRecord(day_key(NOW.date()), f"{session_id}-{question}", session_id, question,
                     frozenset(reasons or ("no-match",)), when, dismissed)  # fmt: skip


def test_similar_questions_form_one_group_with_its_most_frequent_wording() -> None:
    assert similarity(words_of("Do you ship to Canada?"), words_of("Shipping to Canada: how much?")) >= 0.5
    assert similarity(words_of("Do you ship to Canada?"), words_of("Can I ship to Mexico?")) < 0.5
    records = [
        record("Do you ship to Canada?", "2026-11-30T09:00:00Z", "a"),
        record("Can I rent a tent?", "2026-11-30T09:30:00Z", "b", "handoff"),
        record("Shipping to Canada?", "2026-11-30T10:00:00Z", "c", "unanswered"),
        record("Do you ship to Canada?", "2026-11-30T11:00:00Z", "d"),
        record("Do you ship to Mexico?", "2026-11-30T11:30:00Z", "e"),
    ]
    groups = [g.public() for g in group_gaps(records)]
    assert [g["count"] for g in groups] == [3, 1, 1]
    canada = groups[0]
    assert canada["question"] == "Do you ship to Canada?" and canada["variants"] == ["Shipping to Canada?"]
    assert canada["reasons"] == {"no-match": 2, "unanswered": 1}
    assert canada["sampleSessionIds"] == ["d", "c", "a"] and canada["sessions"] == 3
    assert (canada["firstSeen"], canada["lastSeen"]) == ("2026-11-30T09:00:00Z", "2026-11-30T11:00:00Z")
    # Equal counts: the most recent first.
    assert [g["question"] for g in groups[1:]] == ["Do you ship to Mexico?", "Can I rent a tent?"]


def test_a_group_keeps_its_id_as_questions_join_it() -> None:
    first = [record("Do you ship to Canada?", "2026-11-30T09:00:00Z", "a")]
    later = [*first, record("Shipping to Canada?", "2026-11-30T10:00:00Z", "b"),
             record("Shipping to Canada?", "2026-11-30T10:05:00Z", "c")]  # fmt: skip
    (before,), (after,) = group_gaps(first), group_gaps(later)
    assert before.id == after.id and len(after.records) == 3
    assert after.public()["question"] == "Shipping to Canada?"  # the wording shown follows the majority
    assert group_gaps(list(reversed(later)))[0].id == after.id  # the order records arrive in doesn't matter
