"""The session state machine as one pure function: ``decide(session, command, now) -> Decision``.

No I/O here. The caller loads the session, asks :func:`decide`, and commits what it returns (or
answers with the refusal). Every (state x command) pair has exactly one outcome:

=================  ===========  ================  ==============  ===========
command            open         human_requested   claimed         closed
=================  ===========  ================  ==============  ===========
VisitorMessage     ask the bot  queued (202)      queued (202)    refused 409
  ... over limit   refused 429  refused 429       refused 429     refused 409
  ... wants person hand off     queued (202)      queued (202)    refused 409
  ... guard tripped hand off     queued (202)      queued (202)    refused 409
BotAnswered        reply        queued, dropped   queued, dropped refused 409
AskForPerson       hand off     unchanged         unchanged       refused 409
CancelRequest      unchanged    back to the bot   refused 409     refused 409
Claim              claimed      claimed           own: unchanged  refused 409
                                                  other: 409
AgentMessage       refused 403  refused 403       owner: sent     refused 409
Close              refused 403  refused 403       owner: closed   refused 409
WaitExpired        unchanged    bot back if due   unchanged       unchanged
IdleExpired        closed if    closed if idle    closed if idle  unchanged
                   idle
Rate               refused 409  refused 409       refused 409     rated (once;
                                                                  again: 409)
PageVisited        page noted   page noted        page noted      unchanged
=================  ===========  ================  ==============  ===========

A decision may also name a **content gap**: the visitor's question when the bot's answer says the
knowledge did not cover it, or the visitor's previous question when they ask for a person (not when
a guard hands off: that is about the bot being off, not about the knowledge). It is recorded from
the outbox.

"Guard tripped" is the kill switch (the bot is turned off) or the cost guard (a cap on AI calls or
cost is reached): the visitor is handed to a person instead of the bot being called, and the
decision carries a note (``guard:<reason>``) for the audit log, as a failed bot answer does
(``bot:failed``). A bot answer that arrives after a person was requested or an agent claimed the
session is dropped (its usage still counts): the bot never talks over a waiting visitor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.conversations import texts
from shared.conversations.card import DISMISSED, SUPERSEDED, Card
from shared.conversations.models import CLAIMED, CLOSED, HUMAN_REQUESTED, OPEN, Message, Session, minute_of

HANDOFF_GAP = "handoff"  # the reason of a gap recorded because the visitor asked for a person


class Outcome(enum.Enum):
    """What a decision means for the caller."""

    ASK_BOT = "ask-bot"  # nothing to commit yet: call the LLM, then decide BotAnswered
    REPLIED = "replied"  # the visitor's message and the bot's reply
    HANDED_OFF = "handed-off"  # a person was requested (by the visitor, the bot or a guard)
    QUEUED = "queued"  # the visitor's message waits for a person (202)
    HELD = "held"  # the bot's reply waits for an agent's approval as a card (202)
    CHANGED = "changed"  # any other committed change
    UNCHANGED = "unchanged"  # nothing to write
    REFUSED = "refused"  # the command is not allowed in this state


@dataclass(frozen=True)
class Refusal:
    """Why a command was refused: the HTTP status, the problem kind, a sentence, extra members."""

    status: int
    kind: str
    detail: str
    extras: dict[str, Any] = field(default_factory=dict)


# --- commands -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisitorMessage:
    """The visitor wrote ``text``; ``wants_person`` when it asks for a human, ``guard`` when one tripped."""

    text: str
    wants_person: bool = False
    guard: str | None = None  # texts.BOT_OFF (kill switch), texts.SESSION_CAP or texts.DEPLOYMENT_CAP
    per_minute: int = 0  # the visitor's message limit per minute (0: none)
    notice: str = ""  # the bot's words when this hands off, instead of the usual (the team is away)


@dataclass(frozen=True)
class BotAnswer:
    """What the LLM answered and what it cost."""

    text: str
    wants_person: bool = False
    failed: bool = False
    model: str = ""
    provider: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_micro_usd: int = 0
    latency_ms: int = 0
    citations: tuple[dict[str, str | None], ...] = ()  # {"sourceId", "title", "url"} of the sources used
    gap: str = ""  # why the knowledge did not answer the question ("" when it did)


@dataclass(frozen=True)
class BotAnswered:
    """The visitor's ``text`` together with the bot's answer to it."""

    text: str
    answer: BotAnswer
    per_minute: int = 0
    # Autonomy ``approve`` or ``auto-after``: the reply becomes the approval card ``card_id``.
    hold: str = ""
    card_id: str = ""
    auto_send_after: int = 0  # ``auto-after``: seconds until the card is sent by itself


@dataclass(frozen=True)
class AskForPerson:
    """The visitor pressed "talk to a person"; ``notice``: the bot's words instead of the usual (the team is away)."""

    notice: str = ""


@dataclass(frozen=True)
class CancelRequest:
    """The visitor chose to continue with the assistant instead of waiting."""


@dataclass(frozen=True)
class Claim:
    """An agent takes the conversation."""

    agent_oid: str
    agent_name: str


@dataclass(frozen=True)
class AgentMessage:
    """The owning agent's reply."""

    agent_oid: str
    text: str


@dataclass(frozen=True)
class Close:
    """The owning agent ends the conversation."""

    agent_oid: str


@dataclass(frozen=True)
class Rate:
    """The visitor rates a closed conversation (1 to 5), once; ``comment`` is optional."""

    score: int
    comment: str = ""


@dataclass(frozen=True)
class WaitExpired:
    """The timer: a request for a person nobody claimed within ``wait`` goes back to the bot.

    ``since``: the wait counts from this moment at the earliest (the opening of the team's day).
    """

    wait: timedelta
    since: datetime | None = None


@dataclass(frozen=True)
class PageVisited:
    """The visitor's widget loaded on a page (``url`` without query string or fragment); agents see it."""

    url: str
    title: str = ""


@dataclass(frozen=True)
class IdleExpired:
    """The timer: a conversation with no activity for ``idle`` closes."""

    idle: timedelta


Command = (
    VisitorMessage
    | BotAnswered
    | AskForPerson
    | CancelRequest
    | Claim
    | AgentMessage
    | Close
    | WaitExpired
    | IdleExpired
    | Rate
    | PageVisited
)


@dataclass(frozen=True)
class Gap:
    """A visitor question the knowledge did not answer, and why."""

    question: str
    reason: str


@dataclass(frozen=True)
class Note:
    """An event the audit log records with the commit (a status change is recorded without one)."""

    event: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class Decision:
    """The outcome of a command: the session after it, the messages it adds, usage to count, a gap."""

    outcome: Outcome
    before: Session
    after: Session
    messages: list[Message] = field(default_factory=list)
    refusal: Refusal | None = None
    usage: dict[str, int] = field(default_factory=dict)
    gap: Gap | None = None
    notes: list[Note] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when there is something to commit."""
        return self.outcome not in (Outcome.ASK_BOT, Outcome.UNCHANGED, Outcome.REFUSED)

    @property
    def handoff(self) -> bool:
        """True when this decision asked for a person."""
        return self.before.status != HUMAN_REQUESTED and self.after.status == HUMAN_REQUESTED

    def message_from(self, sender: str) -> Message | None:
        """The first new message from ``sender``."""
        return next((m for m in self.messages if m.sender == sender), None)


# --- the function -------------------------------------------------------------------------------


def decide(session: Session, command: Command, now: datetime) -> Decision:
    """What ``command`` does to ``session`` at ``now`` (pure: ``session`` itself is not changed)."""
    draft = _Draft(session, now)
    handler = _HANDLERS[type(command)]
    return handler(draft, command)


class _Draft:
    """A decision being built: a copy of the session, changed step by step."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.before = session
        self.after = session.copy()
        self.now = now
        self.messages: list[Message] = []
        self.usage: dict[str, int] = {}
        self.gap: Gap | None = None
        self.notes: list[Note] = []

    def add(self, sender: str, text: str, **extra: Any) -> Message:
        session = self.after
        if sender == "visitor":
            session.rate_count, session.rate_minute = session.messages_this_minute(self.now) + 1, minute_of(self.now)
            session.visitor_preview = text[:200]
        session.seq += 1
        session.last_activity_at = self.now
        session.preview = text[:200]
        if sender in ("visitor", "bot", "agent"):
            session.remember(sender, text)
        message = Message(session.session_id, session.seq, sender, text, created_at=self.now, **extra)
        self.messages.append(message)
        return message

    def move(self, to: str) -> None:
        session = self.after
        if to != OPEN and session.card is not None:  # a person takes over: the bot's draft is moot
            self.drop_card(DISMISSED, reason=to)
        if to == HUMAN_REQUESTED:
            session.handoff_requested_at = self.now
        elif to == CLOSED:
            session.closed_at = self.now
        elif to == OPEN:
            session.handoff_requested_at = None
        session.status = to

    def done(self, outcome: Outcome) -> Decision:
        return Decision(
            outcome, self.before, self.after, self.messages, usage=self.usage, gap=self.gap, notes=self.notes
        )

    def drop_card(self, resolution: str, **details: str) -> None:
        """The pending approval card is resolved without being sent (audited)."""
        card = self.after.card
        if card is not None:
            self.after.card = None
            self.note(f"approval:{resolution}", cardId=card.card_id, **details)

    def note(self, event: str, **details: str) -> None:
        """Something for the audit log besides a status change (``guard:<reason>``, ``bot:failed``)."""
        self.notes.append(Note(event, details))

    def handed_off(self) -> None:
        """The visitor asked for a person: their previous question (if any) is a gap."""
        previous = next((text for sender, text in reversed(self.before.recent) if sender == "visitor"), "")
        if previous.strip():
            self.gap = Gap(previous, HANDOFF_GAP)

    def refuse(self, status: int, kind: str, detail: str, **extras: Any) -> Decision:
        refusal = Refusal(status, kind, detail, extras)
        return Decision(Outcome.REFUSED, self.before, self.before.copy(), refusal=refusal)


def _closed(draft: _Draft) -> Decision:
    return draft.refuse(409, "session-closed", "This conversation is closed; start a new one.")


def _too_many(draft: _Draft, per_minute: int) -> Decision | None:
    """The 429 when the visitor already sent ``per_minute`` messages this minute."""
    if not per_minute or draft.before.messages_this_minute(draft.now) < per_minute:
        return None
    retry_after = 60 - draft.now.second
    return draft.refuse(
        429, "rate-limited", f"Too many messages; retry in {retry_after} s.", retryAfter=retry_after, limit=per_minute
    )


def _visitor_message(draft: _Draft, command: VisitorMessage) -> Decision:
    status = draft.before.status
    if status == CLOSED:
        return _closed(draft)
    if refused := _too_many(draft, command.per_minute):
        return refused
    if status in (HUMAN_REQUESTED, CLAIMED):
        draft.add("visitor", command.text)
        return draft.done(Outcome.QUEUED)
    if command.wants_person or command.guard:
        if command.guard:
            draft.note(f"guard:{command.guard}")
        else:
            draft.handed_off()
        draft.add("visitor", command.text)
        draft.move(HUMAN_REQUESTED)
        draft.add("bot", command.notice or texts.GUARD_TEXT.get(command.guard or "", texts.HANDOFF_TEXT))
        return draft.done(Outcome.HANDED_OFF)
    return draft.done(Outcome.ASK_BOT)


def _bot_answered(draft: _Draft, command: BotAnswered) -> Decision:
    if draft.before.status == CLOSED:
        return _closed(draft)
    if refused := _too_many(draft, command.per_minute):
        return refused
    answer, session = command.answer, draft.after
    # The answer is paid for even when it is dropped: its usage always counts.
    session.prompt_tokens += answer.prompt_tokens
    session.completion_tokens += answer.completion_tokens
    session.cost_micro_usd += answer.cost_micro_usd
    draft.usage = {
        "promptTokens": answer.prompt_tokens,
        "completionTokens": answer.completion_tokens,
        "costMicroUsd": answer.cost_micro_usd,
    }
    day = draft.now.date().isoformat()
    if session.ai_calls_day != day:  # a new day: the session's daily counters start again
        session.ai_calls_day, session.ai_calls_today, session.cost_today_micro_usd = day, 0, 0
    session.cost_today_micro_usd += answer.cost_micro_usd
    if not answer.failed:
        session.ai_calls += 1
        session.ai_calls_today += 1
        draft.usage["calls"] = 1
    else:
        draft.note("bot:failed", provider=answer.provider, model=answer.model)
    draft.add("visitor", command.text)
    if draft.before.status != OPEN:  # a person was requested or claimed it while the bot thought
        return draft.done(Outcome.QUEUED)
    draft.drop_card(SUPERSEDED, reason="visitor-wrote-again")  # this answer covers the newer message
    if command.hold and not answer.failed and not answer.wants_person:
        return _hold(draft, command)
    draft.add(
        "bot", answer.text, model=answer.model, provider=answer.provider,
        prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
        cost_micro_usd=answer.cost_micro_usd, latency_ms=answer.latency_ms,
        citations=[dict(citation) for citation in answer.citations],
    )  # fmt: skip
    if answer.wants_person:
        draft.handed_off()
        draft.move(HUMAN_REQUESTED)
        return draft.done(Outcome.HANDED_OFF)
    if answer.gap:
        draft.gap = Gap(command.text, answer.gap)
    return draft.done(Outcome.REPLIED)


def _hold(draft: _Draft, command: BotAnswered) -> Decision:
    """Keep the bot's answer as an approval card instead of sending it."""
    answer = command.answer
    auto_at = draft.now + timedelta(seconds=command.auto_send_after) if command.hold == "auto-after" else None
    draft.after.card = Card(
        command.card_id, draft.now, command.text, answer.text, [dict(c) for c in answer.citations],
        model=answer.model, provider=answer.provider, prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens, cost_micro_usd=answer.cost_micro_usd,
        latency_ms=answer.latency_ms, auto_send_at=auto_at,
    )  # fmt: skip
    draft.note("approval:drafted", cardId=command.card_id, mode=command.hold)
    if answer.gap:
        draft.gap = Gap(command.text, answer.gap)
    return draft.done(Outcome.HELD)


def _ask_for_person(draft: _Draft, command: AskForPerson) -> Decision:
    status = draft.before.status
    if status == CLOSED:
        return _closed(draft)
    if status in (HUMAN_REQUESTED, CLAIMED):
        return draft.done(Outcome.UNCHANGED)
    draft.handed_off()
    draft.move(HUMAN_REQUESTED)
    draft.add("bot", command.notice or texts.HANDOFF_TEXT)
    return draft.done(Outcome.HANDED_OFF)


def _cancel_request(draft: _Draft, _: CancelRequest) -> Decision:
    session = draft.before
    if session.status == CLOSED:
        return _closed(draft)
    if session.status == CLAIMED:
        return draft.refuse(
            409, "already-claimed", f"{session.claimed_by_name or 'An agent'} has already joined this conversation.",
            agentName=session.claimed_by_name or None,
        )  # fmt: skip
    if session.status == OPEN:
        return draft.done(Outcome.UNCHANGED)
    draft.move(OPEN)
    draft.add("bot", texts.ASSISTANT_BACK)
    return draft.done(Outcome.CHANGED)


def _claim(draft: _Draft, command: Claim) -> Decision:
    session = draft.before
    if session.status == CLOSED:
        return draft.refuse(409, "session-closed", "This session is closed.")
    if session.status == CLAIMED:
        if session.claimed_by == command.agent_oid:
            return draft.done(Outcome.UNCHANGED)
        return draft.refuse(
            409, "already-claimed", "Another agent has already claimed this session.",
            agentName=session.claimed_by_name or None,
        )  # fmt: skip
    draft.move(CLAIMED)
    after = draft.after
    after.claimed_by, after.claimed_by_name, after.claimed_at = command.agent_oid, command.agent_name, draft.now
    draft.add("system", texts.joined(command.agent_name))
    return draft.done(Outcome.CHANGED)


def _owner_refusal(draft: _Draft, agent_oid: str) -> Decision | None:
    session = draft.before
    if session.status == CLOSED:
        return draft.refuse(409, "session-closed", "This session is closed.")
    if session.status != CLAIMED or session.claimed_by != agent_oid:
        return draft.refuse(403, "not-session-owner", "Only the agent who claimed this session can do that.")
    return None


def _agent_message(draft: _Draft, command: AgentMessage) -> Decision:
    refused = _owner_refusal(draft, command.agent_oid)
    if refused:
        return refused
    draft.add("agent", command.text, agent_oid=command.agent_oid, agent_name=draft.before.claimed_by_name)
    return draft.done(Outcome.CHANGED)


def _close(draft: _Draft, command: Close) -> Decision:
    refused = _owner_refusal(draft, command.agent_oid)
    if refused:
        return refused
    draft.move(CLOSED)
    draft.add("system", texts.CLOSED_BY_AGENT)
    return draft.done(Outcome.CHANGED)


def _wait_expired(draft: _Draft, command: WaitExpired) -> Decision:
    session = draft.before
    waited_since = session.handoff_requested_at or session.last_activity_at
    if command.since is not None:
        waited_since = max(waited_since, command.since)
    if session.status != HUMAN_REQUESTED or draft.now - waited_since < command.wait:
        return draft.done(Outcome.UNCHANGED)
    draft.move(OPEN)
    draft.add("bot", texts.NOBODY_CAME)
    return draft.done(Outcome.CHANGED)


def _idle_expired(draft: _Draft, command: IdleExpired) -> Decision:
    session = draft.before
    if session.status == CLOSED or draft.now - session.last_activity_at < command.idle:
        return draft.done(Outcome.UNCHANGED)
    draft.move(CLOSED)
    if session.seq > 0:  # a widget opened and never used closes without a notice
        draft.add("system", texts.IDLE_CLOSED)
    return draft.done(Outcome.CHANGED)


def _rate(draft: _Draft, command: Rate) -> Decision:
    session = draft.before
    if session.status != CLOSED:
        return draft.refuse(409, "session-open", "Only a closed conversation can be rated.")
    if session.rating:
        return draft.refuse(409, "already-rated", "This conversation has already been rated.", score=session.rating)
    draft.after.rating, draft.after.rating_comment = command.score, command.comment
    draft.note("rating:given", score=str(command.score), comment=command.comment)
    return draft.done(Outcome.CHANGED)


def _page_visited(draft: _Draft, command: PageVisited) -> Decision:
    # Not activity: browsing keeps no conversation from closing when idle, and moves no queue row.
    session = draft.before
    if session.status == CLOSED or (session.page_url, session.page_title) == (command.url, command.title):
        return draft.done(Outcome.UNCHANGED)
    draft.after.page_url, draft.after.page_title = command.url, command.title
    return draft.done(Outcome.CHANGED)


_HANDLERS: dict[type, Any] = {
    VisitorMessage: _visitor_message,
    BotAnswered: _bot_answered,
    AskForPerson: _ask_for_person,
    CancelRequest: _cancel_request,
    Claim: _claim,
    AgentMessage: _agent_message,
    Close: _close,
    WaitExpired: _wait_expired,
    IdleExpired: _idle_expired,
    Rate: _rate,
    PageVisited: _page_visited,
}
