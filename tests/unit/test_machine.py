"""The session state machine, without I/O: every (state x command) pair, then the details."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.conversations import machine, texts
from shared.conversations.machine import (
    AgentMessage,
    AskForPerson,
    BotAnswer,
    BotAnswered,
    CancelRequest,
    Claim,
    Close,
    IdleExpired,
    Outcome,
    PageVisited,
    Rate,
    VisitorMessage,
    WaitExpired,
    decide,
)
from shared.conversations.models import (
    CLAIMED,
    CLOSED,
    HUMAN_REQUESTED,
    OPEN,
    RECENT_MESSAGES,
    STATUSES,
    Session,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = NOW.date().isoformat()
YESTERDAY = (NOW - timedelta(days=1)).date().isoformat()
QUIET = timedelta(minutes=10)  # how long every sample session has been quiet (and waiting, when it waits)

OWNER, OWNER_NAME = "agent-a", "Ada"
OTHER, OTHER_NAME = "agent-b", "Bob"


def make_session(state: str, **overrides: Any) -> Session:
    """A session in ``state`` with three messages, quiet for ``QUIET``; claimed (and closed) ones are Ada's."""
    session = Session(
        "s1",
        status=state,
        created_at=NOW - timedelta(hours=1),
        last_activity_at=NOW - QUIET,
        seq=3,
        version=3,
        origin="https://shop.example",
        prompt_tokens=100,
        completion_tokens=50,
        cost_micro_usd=1_000,
        ai_calls=1,
        ai_calls_day=TODAY,
        ai_calls_today=1,
        preview="help",
        recent=[("visitor", "hi"), ("bot", "hello, how can I help?"), ("visitor", "help")],
    )
    if state in (HUMAN_REQUESTED, CLAIMED, CLOSED):
        session.handoff_requested_at = NOW - QUIET
    if state in (CLAIMED, CLOSED):
        session.claimed_by, session.claimed_by_name, session.claimed_at = OWNER, OWNER_NAME, NOW - QUIET
    if state == CLOSED:
        session.closed_at = NOW - QUIET
    return replace(session, **overrides)


def answer(**kw: Any) -> BotAnswered:
    fields: dict[str, Any] = {
        "text": "Here is how.",
        "model": "gpt-x",
        "provider": "azure",
        "prompt_tokens": 40,
        "completion_tokens": 20,
        "cost_micro_usd": 300,
        "latency_ms": 900,
    }
    return BotAnswered("how do I reset?", BotAnswer(**{**fields, **kw}))


# --- the table ----------------------------------------------------------------------------------

VARIANTS: dict[str, Any] = {
    "visitor-plain": VisitorMessage("hello"),
    "visitor-wants-person": VisitorMessage("a person please", wants_person=True),
    "visitor-bot-off": VisitorMessage("hello", guard=texts.BOT_OFF),
    "visitor-session-cap": VisitorMessage("hello", guard=texts.SESSION_CAP),
    "visitor-deployment-cap": VisitorMessage("hello", guard=texts.DEPLOYMENT_CAP),
    "bot-answer": answer(),
    "bot-answer-wants-person": answer(text="Let me get a person.", wants_person=True),
    "bot-answer-failed": answer(text="Sorry, I could not answer.", failed=True, completion_tokens=0),
    "ask-for-person": AskForPerson(),
    "cancel-request": CancelRequest(),
    "claim-same-agent": Claim(OWNER, OWNER_NAME),
    "claim-other-agent": Claim(OTHER, OTHER_NAME),
    "agent-message-owner": AgentMessage(OWNER, "I'm here"),
    "agent-message-other": AgentMessage(OTHER, "me too"),
    "close-owner": Close(OWNER),
    "close-other": Close(OTHER),
    "wait-due": WaitExpired(wait=QUIET - timedelta(minutes=5)),
    "wait-not-due": WaitExpired(wait=QUIET + timedelta(minutes=5)),
    "idle": IdleExpired(idle=QUIET - timedelta(minutes=5)),
    "idle-not-idle": IdleExpired(idle=QUIET + timedelta(minutes=5)),
    "idle-no-messages": IdleExpired(idle=QUIET - timedelta(minutes=5)),
    "rate": Rate(5, "Thanks"),
    "rate-again": Rate(2),
    "page-new": PageVisited("https://example.com/pricing", "Pricing"),
    "page-same": PageVisited("https://example.com/", "Home"),
}
NO_MESSAGES = {"seq": 0, "version": 0, "recent": [], "preview": ""}
ON_HOME = {"page_url": "https://example.com/", "page_title": "Home"}

CLOSED_409 = (409, "session-closed")
CLAIMED_409 = (409, "already-claimed")
NOT_OWNER_403 = (403, "not-session-owner")
V, B, S, A = "visitor", "bot", "system", "agent"
R = Outcome


def row(
    state: str,
    variant: str,
    outcome: Outcome,
    after: str,
    senders: list[str],
    refusal: tuple[int, str] | None = None,
    **session: Any,
) -> Any:
    """One (state x command variant) pair and what it must do."""
    return pytest.param(state, VARIANTS[variant], outcome, after, senders, refusal, session, id=f"{state}-{variant}")


# fmt: off
TABLE = [
    # VisitorMessage: the bot is asked in open; a person takes over when asked or when a guard tripped.
    row(OPEN, "visitor-plain", R.ASK_BOT, OPEN, []),
    row(OPEN, "visitor-wants-person", R.HANDED_OFF, HUMAN_REQUESTED, [V, B]),
    row(OPEN, "visitor-bot-off", R.HANDED_OFF, HUMAN_REQUESTED, [V, B]),
    row(OPEN, "visitor-session-cap", R.HANDED_OFF, HUMAN_REQUESTED, [V, B]),
    row(OPEN, "visitor-deployment-cap", R.HANDED_OFF, HUMAN_REQUESTED, [V, B]),
    row(HUMAN_REQUESTED, "visitor-plain", R.QUEUED, HUMAN_REQUESTED, [V]),
    row(HUMAN_REQUESTED, "visitor-wants-person", R.QUEUED, HUMAN_REQUESTED, [V]),
    row(HUMAN_REQUESTED, "visitor-bot-off", R.QUEUED, HUMAN_REQUESTED, [V]),
    row(HUMAN_REQUESTED, "visitor-session-cap", R.QUEUED, HUMAN_REQUESTED, [V]),
    row(HUMAN_REQUESTED, "visitor-deployment-cap", R.QUEUED, HUMAN_REQUESTED, [V]),
    row(CLAIMED, "visitor-plain", R.QUEUED, CLAIMED, [V]),
    row(CLAIMED, "visitor-wants-person", R.QUEUED, CLAIMED, [V]),
    row(CLAIMED, "visitor-bot-off", R.QUEUED, CLAIMED, [V]),
    row(CLAIMED, "visitor-session-cap", R.QUEUED, CLAIMED, [V]),
    row(CLAIMED, "visitor-deployment-cap", R.QUEUED, CLAIMED, [V]),
    row(CLOSED, "visitor-plain", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "visitor-wants-person", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "visitor-bot-off", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "visitor-session-cap", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "visitor-deployment-cap", R.REFUSED, CLOSED, [], CLOSED_409),
    # BotAnswered: replies in open; dropped (only the visitor's message kept) once a person is involved.
    row(OPEN, "bot-answer", R.REPLIED, OPEN, [V, B]),
    row(OPEN, "bot-answer-wants-person", R.HANDED_OFF, HUMAN_REQUESTED, [V, B]),
    row(OPEN, "bot-answer-failed", R.REPLIED, OPEN, [V, B]),
    row(HUMAN_REQUESTED, "bot-answer", R.QUEUED, HUMAN_REQUESTED, [V]),
    row(HUMAN_REQUESTED, "bot-answer-wants-person", R.QUEUED, HUMAN_REQUESTED, [V]),
    row(HUMAN_REQUESTED, "bot-answer-failed", R.QUEUED, HUMAN_REQUESTED, [V]),
    row(CLAIMED, "bot-answer", R.QUEUED, CLAIMED, [V]),
    row(CLAIMED, "bot-answer-wants-person", R.QUEUED, CLAIMED, [V]),
    row(CLAIMED, "bot-answer-failed", R.QUEUED, CLAIMED, [V]),
    row(CLOSED, "bot-answer", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "bot-answer-wants-person", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "bot-answer-failed", R.REFUSED, CLOSED, [], CLOSED_409),
    # AskForPerson
    row(OPEN, "ask-for-person", R.HANDED_OFF, HUMAN_REQUESTED, [B]),
    row(HUMAN_REQUESTED, "ask-for-person", R.UNCHANGED, HUMAN_REQUESTED, []),
    row(CLAIMED, "ask-for-person", R.UNCHANGED, CLAIMED, []),
    row(CLOSED, "ask-for-person", R.REFUSED, CLOSED, [], CLOSED_409),
    # CancelRequest
    row(OPEN, "cancel-request", R.UNCHANGED, OPEN, []),
    row(HUMAN_REQUESTED, "cancel-request", R.CHANGED, OPEN, [B]),
    row(CLAIMED, "cancel-request", R.REFUSED, CLAIMED, [], CLAIMED_409),
    row(CLOSED, "cancel-request", R.REFUSED, CLOSED, [], CLOSED_409),
    # Claim
    row(OPEN, "claim-same-agent", R.CHANGED, CLAIMED, [S]),
    row(OPEN, "claim-other-agent", R.CHANGED, CLAIMED, [S]),
    row(HUMAN_REQUESTED, "claim-same-agent", R.CHANGED, CLAIMED, [S]),
    row(HUMAN_REQUESTED, "claim-other-agent", R.CHANGED, CLAIMED, [S]),
    row(CLAIMED, "claim-same-agent", R.UNCHANGED, CLAIMED, []),
    row(CLAIMED, "claim-other-agent", R.REFUSED, CLAIMED, [], CLAIMED_409),
    row(CLOSED, "claim-same-agent", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "claim-other-agent", R.REFUSED, CLOSED, [], CLOSED_409),
    # AgentMessage: only the owner of a claimed session speaks.
    row(OPEN, "agent-message-owner", R.REFUSED, OPEN, [], NOT_OWNER_403),
    row(OPEN, "agent-message-other", R.REFUSED, OPEN, [], NOT_OWNER_403),
    row(HUMAN_REQUESTED, "agent-message-owner", R.REFUSED, HUMAN_REQUESTED, [], NOT_OWNER_403),
    row(HUMAN_REQUESTED, "agent-message-other", R.REFUSED, HUMAN_REQUESTED, [], NOT_OWNER_403),
    row(CLAIMED, "agent-message-owner", R.CHANGED, CLAIMED, [A]),
    row(CLAIMED, "agent-message-other", R.REFUSED, CLAIMED, [], NOT_OWNER_403),
    row(CLOSED, "agent-message-owner", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "agent-message-other", R.REFUSED, CLOSED, [], CLOSED_409),
    # Close: only the owner of a claimed session closes it.
    row(OPEN, "close-owner", R.REFUSED, OPEN, [], NOT_OWNER_403),
    row(OPEN, "close-other", R.REFUSED, OPEN, [], NOT_OWNER_403),
    row(HUMAN_REQUESTED, "close-owner", R.REFUSED, HUMAN_REQUESTED, [], NOT_OWNER_403),
    row(HUMAN_REQUESTED, "close-other", R.REFUSED, HUMAN_REQUESTED, [], NOT_OWNER_403),
    row(CLAIMED, "close-owner", R.CHANGED, CLOSED, [S]),
    row(CLAIMED, "close-other", R.REFUSED, CLAIMED, [], NOT_OWNER_403),
    row(CLOSED, "close-owner", R.REFUSED, CLOSED, [], CLOSED_409),
    row(CLOSED, "close-other", R.REFUSED, CLOSED, [], CLOSED_409),
    # WaitExpired: only an unclaimed request that waited long enough goes back to the bot.
    row(OPEN, "wait-due", R.UNCHANGED, OPEN, []),
    row(OPEN, "wait-not-due", R.UNCHANGED, OPEN, []),
    row(HUMAN_REQUESTED, "wait-due", R.CHANGED, OPEN, [B]),
    row(HUMAN_REQUESTED, "wait-not-due", R.UNCHANGED, HUMAN_REQUESTED, []),
    row(CLAIMED, "wait-due", R.UNCHANGED, CLAIMED, []),
    row(CLAIMED, "wait-not-due", R.UNCHANGED, CLAIMED, []),
    row(CLOSED, "wait-due", R.UNCHANGED, CLOSED, []),
    row(CLOSED, "wait-not-due", R.UNCHANGED, CLOSED, []),
    # IdleExpired: any live session closes when idle; one never used closes without a notice.
    row(OPEN, "idle", R.CHANGED, CLOSED, [S]),
    row(OPEN, "idle-not-idle", R.UNCHANGED, OPEN, []),
    row(OPEN, "idle-no-messages", R.CHANGED, CLOSED, [], **NO_MESSAGES),
    row(HUMAN_REQUESTED, "idle", R.CHANGED, CLOSED, [S]),
    row(HUMAN_REQUESTED, "idle-not-idle", R.UNCHANGED, HUMAN_REQUESTED, []),
    row(HUMAN_REQUESTED, "idle-no-messages", R.CHANGED, CLOSED, [], **NO_MESSAGES),
    row(CLAIMED, "idle", R.CHANGED, CLOSED, [S]),
    row(CLAIMED, "idle-not-idle", R.UNCHANGED, CLAIMED, []),
    row(CLAIMED, "idle-no-messages", R.CHANGED, CLOSED, [], **NO_MESSAGES),
    row(CLOSED, "idle", R.UNCHANGED, CLOSED, []),
    row(CLOSED, "idle-not-idle", R.UNCHANGED, CLOSED, []),
    row(CLOSED, "idle-no-messages", R.UNCHANGED, CLOSED, [], **NO_MESSAGES),
    # Rate: only a closed conversation, and only once.
    row(OPEN, "rate", R.REFUSED, OPEN, [], (409, "session-open")),
    row(HUMAN_REQUESTED, "rate", R.REFUSED, HUMAN_REQUESTED, [], (409, "session-open")),
    row(CLAIMED, "rate", R.REFUSED, CLAIMED, [], (409, "session-open")),
    row(CLOSED, "rate", R.CHANGED, CLOSED, []),
    row(OPEN, "rate-again", R.REFUSED, OPEN, [], (409, "session-open"), rating=4),
    row(HUMAN_REQUESTED, "rate-again", R.REFUSED, HUMAN_REQUESTED, [], (409, "session-open"), rating=4),
    row(CLAIMED, "rate-again", R.REFUSED, CLAIMED, [], (409, "session-open"), rating=4),
    row(CLOSED, "rate-again", R.REFUSED, CLOSED, [], (409, "already-rated"), rating=4),
    # PageVisited: the visitor's page is noted on a live conversation (not activity); the same page is no change.
    row(OPEN, "page-new", R.CHANGED, OPEN, [], **ON_HOME),
    row(HUMAN_REQUESTED, "page-new", R.CHANGED, HUMAN_REQUESTED, [], **ON_HOME),
    row(CLAIMED, "page-new", R.CHANGED, CLAIMED, [], **ON_HOME),
    row(CLOSED, "page-new", R.UNCHANGED, CLOSED, [], **ON_HOME),
    row(OPEN, "page-same", R.UNCHANGED, OPEN, [], **ON_HOME),
    row(HUMAN_REQUESTED, "page-same", R.UNCHANGED, HUMAN_REQUESTED, [], **ON_HOME),
    row(CLAIMED, "page-same", R.UNCHANGED, CLAIMED, [], **ON_HOME),
    row(CLOSED, "page-same", R.UNCHANGED, CLOSED, [], **ON_HOME),
]
# fmt: on


@pytest.mark.parametrize(("state", "command", "outcome", "status_after", "senders", "refusal", "overrides"), TABLE)
def test_every_state_and_command(
    state: str,
    command: Any,
    outcome: Outcome,
    status_after: str,
    senders: list[str],
    refusal: tuple[int, str] | None,
    overrides: dict[str, Any],
) -> None:
    session = make_session(state, **overrides)
    snapshot = copy.deepcopy(session)

    decision = decide(session, command, NOW)

    assert session == snapshot, "decide must not change the session it was given"
    assert decision.before == snapshot
    assert decision.after is not session
    assert decision.outcome is outcome
    assert decision.after.status == status_after
    assert [m.sender for m in decision.messages] == senders
    if refusal is None:
        assert decision.refusal is None
    else:
        assert decision.refusal is not None
        assert (decision.refusal.status, decision.refusal.kind) == refusal
        assert decision.refusal.detail
    assert decision.changed == (outcome not in (Outcome.ASK_BOT, Outcome.UNCHANGED, Outcome.REFUSED))
    if not decision.changed:  # nothing to commit: the session comes back exactly as it was
        assert decision.after == snapshot
        assert decision.messages == []
    if outcome is Outcome.REFUSED:
        assert decision.usage == {}
    # Every new message is numbered after the last one and stamped now.
    assert [m.seq for m in decision.messages] == list(range(snapshot.seq + 1, snapshot.seq + len(senders) + 1))
    assert decision.after.seq == snapshot.seq + len(senders)
    assert all(m.created_at == NOW and m.session_id == "s1" for m in decision.messages)
    if decision.messages:
        assert decision.after.last_activity_at == NOW
        assert decision.after.preview == decision.messages[-1].text[:200]
    else:
        assert decision.after.last_activity_at == snapshot.last_activity_at


def test_the_table_covers_every_state_for_every_command() -> None:
    covered: dict[type, set[str]] = {}
    for param in TABLE:
        state, command = param.values[0], param.values[1]
        covered.setdefault(type(command), set()).add(state)
    assert set(covered) == set(machine._HANDLERS), "every command type needs rows (and only those)"
    for command_type in machine._HANDLERS:
        assert covered[command_type] == set(STATUSES), f"{command_type.__name__} misses states"
    ids = [param.id or "" for param in TABLE]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    states_of: dict[str, set[str]] = {}
    for row_id in ids:  # ids are "<state>-<variant>", and no state has a dash
        state, variant = row_id.split("-", 1)
        states_of.setdefault(variant, set()).add(state)
    assert set(states_of) == set(VARIANTS), "every command variant is walked"
    for variant, states in states_of.items():
        assert states == set(STATUSES), f"{variant} misses states"


# --- the texts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "text"),
    [
        pytest.param(VARIANTS["visitor-wants-person"], texts.HANDOFF_TEXT, id="wants-person"),
        pytest.param(VARIANTS["visitor-bot-off"], texts.GUARD_TEXT[texts.BOT_OFF], id="bot-off"),
        pytest.param(VARIANTS["visitor-session-cap"], texts.GUARD_TEXT[texts.SESSION_CAP], id="session-cap"),
        pytest.param(VARIANTS["visitor-deployment-cap"], texts.GUARD_TEXT[texts.DEPLOYMENT_CAP], id="deployment-cap"),
    ],
)
def test_a_hand_off_explains_why(command: VisitorMessage, text: str) -> None:
    decision = decide(make_session(OPEN), command, NOW)
    assert [m.text for m in decision.messages] == [command.text, text]
    assert decision.handoff
    assert decision.after.handoff_requested_at == NOW


def test_refusals_name_the_owner_by_display_name_only() -> None:
    claimed = make_session(CLAIMED)
    other = decide(claimed, Claim(OTHER, OTHER_NAME), NOW).refusal
    assert other is not None and other.extras == {"agentName": OWNER_NAME}  # never the winner's oid
    cancel = decide(claimed, CancelRequest(), NOW).refusal
    assert cancel is not None and cancel.extras == {"agentName": OWNER_NAME} and OWNER_NAME in cancel.detail


# --- usage --------------------------------------------------------------------------------------


def test_a_bot_answer_adds_its_usage() -> None:
    session = make_session(OPEN)
    decision = decide(session, answer(), NOW)
    after = decision.after
    assert (after.prompt_tokens, after.completion_tokens, after.cost_micro_usd) == (140, 70, 1_300)
    assert (after.ai_calls, after.ai_calls_day, after.ai_calls_today) == (2, TODAY, 2)
    assert decision.usage == {"promptTokens": 40, "completionTokens": 20, "costMicroUsd": 300, "calls": 1}
    bot = decision.message_from("bot")
    assert bot is not None
    assert (bot.model, bot.provider, bot.prompt_tokens, bot.completion_tokens, bot.cost_micro_usd, bot.latency_ms) == (
        "gpt-x",
        "azure",
        40,
        20,
        300,
        900,
    )
    visitor = decision.message_from("visitor")
    assert visitor is not None and visitor.text == "how do I reset?" and visitor.prompt_tokens == 0


def test_a_failed_answer_counts_tokens_but_not_a_call() -> None:
    decision = decide(make_session(OPEN), answer(failed=True, completion_tokens=0), NOW)
    after = decision.after
    assert (after.prompt_tokens, after.completion_tokens, after.cost_micro_usd) == (140, 50, 1_300)
    assert (after.ai_calls, after.ai_calls_day, after.ai_calls_today) == (1, TODAY, 1)
    assert decision.usage == {"promptTokens": 40, "completionTokens": 0, "costMicroUsd": 300}


def test_the_daily_call_counter_starts_again_on_a_new_day() -> None:
    session = make_session(OPEN, ai_calls=9, ai_calls_day=YESTERDAY, ai_calls_today=9)
    after = decide(session, answer(), NOW).after
    assert (after.ai_calls, after.ai_calls_day, after.ai_calls_today) == (10, TODAY, 1)
    same_day = decide(after, answer(), NOW + timedelta(hours=1)).after
    assert (same_day.ai_calls, same_day.ai_calls_day, same_day.ai_calls_today) == (11, TODAY, 2)


@pytest.mark.parametrize("state", [HUMAN_REQUESTED, CLAIMED])
def test_a_dropped_answer_still_counts_and_keeps_only_the_visitor_message(state: str) -> None:
    session = make_session(state)
    decision = decide(session, answer(text="too late", wants_person=True), NOW)
    assert decision.outcome is Outcome.QUEUED
    assert decision.after.status == state
    assert [(m.sender, m.text) for m in decision.messages] == [("visitor", "how do I reset?")]
    assert decision.usage == {"promptTokens": 40, "completionTokens": 20, "costMicroUsd": 300, "calls": 1}
    after = decision.after
    assert (after.prompt_tokens, after.completion_tokens, after.cost_micro_usd, after.ai_calls) == (140, 70, 1_300, 2)
    assert after.recent[-1] == ("visitor", "how do I reset?")
    assert "too late" not in [text for _, text in after.recent]
    assert after.handoff_requested_at == session.handoff_requested_at  # no new hand-off


# --- claim, cancel, wait ------------------------------------------------------------------------


@pytest.mark.parametrize("state", [OPEN, HUMAN_REQUESTED])
def test_a_claim_records_the_agent(state: str) -> None:
    decision = decide(make_session(state), Claim(OTHER, OTHER_NAME), NOW)
    after = decision.after
    assert (after.status, after.claimed_by, after.claimed_by_name, after.claimed_at) == (
        CLAIMED,
        OTHER,
        OTHER_NAME,
        NOW,
    )
    assert [m.text for m in decision.messages] == [texts.joined(OTHER_NAME)]
    reply = decide(after, AgentMessage(OTHER, "hi, Bob here"), NOW)
    assert reply.outcome is Outcome.CHANGED
    assert (reply.messages[0].agent_oid, reply.messages[0].agent_name) == (OTHER, OTHER_NAME)


def test_cancel_goes_back_to_the_bot_and_forgets_the_request() -> None:
    session = make_session(HUMAN_REQUESTED)
    assert session.handoff_requested_at is not None
    decision = decide(session, CancelRequest(), NOW)
    assert decision.after.status == OPEN
    assert decision.after.handoff_requested_at is None
    assert [m.text for m in decision.messages] == [texts.ASSISTANT_BACK]


def test_the_wait_counts_from_the_request_not_from_the_last_message() -> None:
    wait = WaitExpired(wait=timedelta(minutes=5))
    # Asked 10 minutes ago, still writing a minute ago: due.
    chatty = make_session(
        HUMAN_REQUESTED, handoff_requested_at=NOW - timedelta(minutes=10), last_activity_at=NOW - timedelta(minutes=1)
    )
    due = decide(chatty, wait, NOW)
    assert due.outcome is Outcome.CHANGED
    assert (due.after.status, due.after.handoff_requested_at) == (OPEN, None)
    assert [(m.sender, m.text) for m in due.messages] == [("bot", texts.NOBODY_CAME)]
    # Quiet for 10 minutes but asked only a minute ago: not due.
    fresh = make_session(
        HUMAN_REQUESTED, handoff_requested_at=NOW - timedelta(minutes=1), last_activity_at=NOW - timedelta(minutes=10)
    )
    assert decide(fresh, wait, NOW).outcome is Outcome.UNCHANGED
    # Exactly on time counts as due.
    on_time = make_session(HUMAN_REQUESTED, handoff_requested_at=NOW - timedelta(minutes=5))
    assert decide(on_time, wait, NOW).outcome is Outcome.CHANGED


# --- bookkeeping --------------------------------------------------------------------------------


def test_a_conversation_numbers_its_messages_and_stamps_activity() -> None:
    session = make_session(OPEN, **NO_MESSAGES)
    steps: list[tuple[Any, int]] = [
        (VisitorMessage("hello"), 0),  # ask the bot: nothing yet
        (BotAnswered("hello", BotAnswer("Hi!")), 2),
        (AskForPerson(), 1),
        (VisitorMessage("still there?"), 1),
        (Claim(OWNER, OWNER_NAME), 1),
        (AgentMessage(OWNER, "Ada here"), 1),
        (Close(OWNER), 1),
    ]
    moment = NOW
    for command, added in steps:
        moment += timedelta(minutes=1)
        decision = decide(session, command, moment)
        assert len(decision.messages) == added
        assert decision.after.seq == session.seq + added
        assert [m.seq for m in decision.messages] == list(range(session.seq + 1, session.seq + added + 1))
        if added:
            assert decision.after.last_activity_at == moment
        session = decision.after
    assert (session.status, session.seq, session.closed_at) == (CLOSED, 7, moment)
    assert session.recent == [
        ("visitor", "hello"),
        ("bot", "Hi!"),
        ("bot", texts.HANDOFF_TEXT),
        ("visitor", "still there?"),
        ("agent", "Ada here"),
    ]  # system notices are not part of the bot's memory


def test_the_recent_history_is_bounded() -> None:
    full = [("visitor" if i % 2 == 0 else "bot", f"message {i}") for i in range(RECENT_MESSAGES)]
    session = make_session(OPEN, seq=RECENT_MESSAGES, recent=full)
    decision = decide(session, answer(), NOW)
    recent = decision.after.recent
    assert len(recent) == RECENT_MESSAGES
    assert recent[:-2] == full[2:]
    assert recent[-2:] == [("visitor", "how do I reset?"), ("bot", "Here is how.")]
    assert session.recent == full  # the caller's list is left alone


@pytest.mark.parametrize("state", [OPEN, HUMAN_REQUESTED, CLAIMED])
def test_the_chat_limit_counts_visitor_messages_per_minute_in_the_header(state: str) -> None:
    session = make_session(state)
    for sent in range(3):
        decision = decide(session, VisitorMessage(f"m{sent}", wants_person=True, per_minute=3), NOW)
        assert decision.outcome is not Outcome.REFUSED
        session = decision.after
        assert session.messages_this_minute(NOW) == sent + 1
    refused = decide(session, VisitorMessage("one too many", per_minute=3), NOW + timedelta(seconds=20))
    assert refused.refusal is not None and (refused.refusal.status, refused.refusal.kind) == (429, "rate-limited")
    assert refused.refusal.extras["retryAfter"] == 40
    answer = BotAnswered("late", BotAnswer("hi"), per_minute=3)
    assert decide(session, answer, NOW).outcome is Outcome.REFUSED
    next_minute = decide(session, VisitorMessage("later", per_minute=3), NOW + timedelta(minutes=1))
    assert next_minute.outcome is not Outcome.REFUSED  # a new minute starts a new count


def test_a_page_visit_is_noted_without_counting_as_activity() -> None:
    session = make_session(HUMAN_REQUESTED, page_url="https://example.com/", page_title="Home")
    decision = decide(session, PageVisited("https://example.com/pricing", "Pricing"), NOW)
    assert (decision.after.page_url, decision.after.page_title) == ("https://example.com/pricing", "Pricing")
    assert decision.after.last_activity_at == session.last_activity_at and decision.messages == []
    assert decision.after.public()["page"] == {"url": "https://example.com/pricing", "title": "Pricing"}
    assert make_session(OPEN).public()["page"] is None
