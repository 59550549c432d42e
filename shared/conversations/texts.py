"""What the bot and the system say at each turn of the state machine (one place to word them)."""

from __future__ import annotations

HANDOFF_TEXT = "I'm bringing in a person from our team. Stay here; they'll reply in this chat."
ASSISTANT_BACK = "You're back with the assistant. Ask me anything, or ask for a person again at any time."
NOBODY_CAME = (
    "Sorry, nobody from our team is free right now. I'm back to help in the meantime, "
    "and you can ask for a person again at any time."
)
IDLE_CLOSED = "This conversation was closed after a period of inactivity. Start a new one any time."
CLOSED_BY_AGENT = "The conversation was closed by the agent."

# Why the bot may not be called: the kill switch, or the cost guard's caps (the audit log's guard:<reason>).
BOT_OFF = "bot-off"
SESSION_CAP = "session-cap"
DEPLOYMENT_CAP = "deployment-cap"
MONTHLY_CAP = "monthly-cap"
GUARD_TEXT = {
    BOT_OFF: "Our team will answer you personally. Someone will reply here shortly.",
    SESSION_CAP: "I've reached my limit for this conversation today, so I'm bringing in a person from our team.",
    DEPLOYMENT_CAP: "I can't answer more questions today, so I'm bringing in a person from our team.",
    MONTHLY_CAP: "I can't answer more questions this month, so I'm bringing in a person from our team.",
}


def joined(agent_name: str) -> str:
    """The notice when an agent claims the conversation."""
    return f"{agent_name} joined the conversation."
