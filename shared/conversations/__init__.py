"""Conversations: the session, its state machine, and the one path every change takes.

Owns ``models`` (Session, Message, statuses), ``machine`` (the pure ``decide``), ``commit`` (load,
decide, commit with the outbox, push, enqueue), ``idempotency`` (replays), the use cases
``visitor`` and ``agent``, ``guards`` (cost caps and the kill switch), ``timeouts`` (the listener
timer) and ``texts`` (what the bot and the system say). Only the pure names are exported here, so
importing the package costs no Storage SDK; use cases are imported from their modules.
"""

from shared.conversations.machine import (
    AgentMessage,
    AskForPerson,
    BotAnswer,
    BotAnswered,
    CancelRequest,
    Claim,
    Close,
    Command,
    Decision,
    Gap,
    IdleExpired,
    Outcome,
    Refusal,
    VisitorMessage,
    WaitExpired,
    decide,
)
from shared.conversations.models import CLAIMED, CLOSED, HUMAN_REQUESTED, OPEN, STATUSES, Message, Session

__all__ = [
    "CLAIMED",
    "CLOSED",
    "HUMAN_REQUESTED",
    "OPEN",
    "STATUSES",
    "AgentMessage",
    "AskForPerson",
    "BotAnswer",
    "BotAnswered",
    "CancelRequest",
    "Claim",
    "Close",
    "Command",
    "Decision",
    "Gap",
    "IdleExpired",
    "Message",
    "Outcome",
    "Refusal",
    "Session",
    "VisitorMessage",
    "WaitExpired",
    "decide",
]
