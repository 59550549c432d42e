"""Office hours for visitors: whether the team is in, when it is back (in words), and the away email.

Inside office hours asking for a person hands off as always. Outside them the request still goes
to the agents' queue (they find it when they come in), but the visitor is told so at once: the
bot's notice is the away message with when the team is back ("tomorrow at 9:00 (Europe/Madrid
time)"), every answer that says the visitor waits carries an ``away`` block, and the visitor may
leave an email address for a reply, stored on the session's handoff record and audited. The wait
after which an unclaimed request goes back to the bot counts from the opening of the team's day,
so a request made at night is not handed back before anyone could see it.

Office hours are judged by :func:`office_now`: the clock, or in Development only the fixed moment
``DEV_OFFICE_CLOCK`` (ISO-8601), so tests can stand inside or outside the hours.
"""

from __future__ import annotations

import asyncio
import functools
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.analytics.typical import usual_reply
from shared.clock import iso, parse_iso, utcnow
from shared.config import get_settings
from shared.control.hours import is_open, next_open
from shared.control.model import WEEKDAYS, OfficeHours, RuntimeConfig, minutes_of
from shared.control.store import current
from shared.conversations.noted import note_event
from shared.errors import Problem
from shared.storage.handoffs import HandoffRepository

MAX_EMAIL = 254  # RFC 5321's limit on a forward path, less the angle brackets
# The WHATWG HTML "valid email address": what a browser's <input type=email> accepts.
_EMAIL = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
)
EMAIL_LEFT = "handoff:email"  # the audit event of a visitor leaving an email address


class HoursSettings(BaseSettings):
    """Development only: the moment office hours are judged at (tests stand inside or outside them)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True)

    dev_office_clock: str = Field(default="", validation_alias="DEV_OFFICE_CLOCK")


@functools.lru_cache(maxsize=1)
def _fixed_now() -> datetime | None:
    if not get_settings().is_development:
        return None
    return parse_iso(HoursSettings().dev_office_clock)


def office_now() -> datetime:
    """The moment office hours are judged at (see the module docstring)."""
    return _fixed_now() or utcnow()


@dataclass(frozen=True)
class Availability:
    """Whether the team is in, and if not when it is back and what the visitor is told."""

    open: bool
    back_at: datetime | None = None
    timezone: str = ""
    when: str = ""  # "tomorrow at 9:00 (Europe/Madrid time)"
    message: str = ""  # the away message, then when the team is back

    def public(self, email: str = "") -> dict[str, Any]:
        """The ``away`` block of the widget's answers (None-free)."""
        return {
            "open": self.open,
            "backAt": iso(self.back_at) or None,
            "timezone": self.timezone or None,
            "when": self.when or None,
            "message": self.message,
            "email": email or None,
        }


def _day_word(day: datetime, today: datetime) -> str:
    days = (day.date() - today.date()).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days < 7:
        return f"on {day.strftime('%A')}"
    return f"on {day.strftime('%A')} {day.day} {day.strftime('%B')}"


def when_back(back_at: datetime, now: datetime, zone_name: str) -> str:
    """``back_at`` in the team's own words: "tomorrow at 9:00 (Europe/Madrid time)" (pure)."""
    zone = zoneinfo.ZoneInfo(zone_name)
    local, today = back_at.astimezone(zone), now.astimezone(zone)
    return f"{_day_word(local, today)} at {local.hour}:{local.minute:02d} ({zone_name} time)"


def availability_of(config: RuntimeConfig, now: datetime) -> Availability:
    """Whether the team is in at ``now`` under ``config`` (pure)."""
    hours = config.officeHours
    if is_open(hours, now):
        return Availability(True)
    assert hours is not None
    back_at = next_open(hours, now)
    when = when_back(back_at, now, hours.timezone) if back_at else ""
    message = config.awayMessage.strip()
    if when:
        message = f"{message} We're back {when}."
    return Availability(False, back_at, hours.timezone, when, message)


async def availability() -> Availability:
    """Whether the team is in now (the runtime configuration as this worker sees it)."""
    return availability_of(await current(), office_now())


def opening_of_day(hours: OfficeHours | None, now: datetime) -> datetime | None:
    """The start of the office-hours range ``now`` falls in (UTC), or None when closed or unconfigured."""
    if hours is None or not is_open(hours, now):
        return None
    zone = zoneinfo.ZoneInfo(hours.timezone)
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    weekly = cast(dict[str, list[str]], hours.weekly)
    for time_range in weekly.get(WEEKDAYS[local.weekday()], []):
        start, end = minutes_of(time_range)
        if start <= minute < end:
            opening = datetime.combine(local.date(), time(start // 60, start % 60), tzinfo=zone).astimezone(UTC)
            if start == 0:  # a range from midnight may continue yesterday's until 24:00
                earlier = opening_of_day(hours, opening - timedelta(minutes=1))
                return earlier or opening
            return opening
    return None


async def wait_floor() -> tuple[bool, datetime | None]:
    """For the wait timer: (team in now, when its current opening began)."""
    config, now = await current(), office_now()
    return is_open(config.officeHours, now), opening_of_day(config.officeHours, now)


async def widget_config() -> dict[str, Any]:
    """What the widget needs to know beside its title and colour: choice up front, away, and how fast
    the team usually replies (measured; None until there are replies to judge by)."""
    config, reply_in = await asyncio.gather(current(), usual_reply())
    state = availability_of(config, office_now())
    return {
        "visitorChoice": config.visitorChoice,
        "awayMessage": config.awayMessage,
        "away": state.public(),
        "replyIn": reply_in,
    }


# --- the away email ----------------------------------------------------------------------------------


def check_email(value: str) -> str:
    """The address trimmed, or a 422 naming ``email``."""
    email = value.strip()
    if not email:
        raise Problem(422, "email: is required", kind="validation-error", errors=[_error("is required")])
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        message = f"must be an email address such as name@example.com (at most {MAX_EMAIL} characters)"
        raise Problem(422, f"email: {message}", kind="validation-error", errors=[_error(message)])
    return email


def _error(message: str) -> dict[str, str]:
    return {"field": "email", "message": message}


async def leave_email(session_id: str, email: str) -> dict[str, Any]:
    """Store the visitor's address for a reply on the session, audit it, and answer where they stand."""
    from shared.conversations.commit import load_session
    from shared.conversations.models import CLOSED

    address = check_email(email)
    session = await load_session(session_id)
    if session.status == CLOSED:
        raise Problem(409, "This conversation is closed; start a new one.", kind="session-closed")
    await HandoffRepository().merge(session_id, email=address, emailAt=iso(utcnow()))
    await note_event(session_id, EMAIL_LEFT, "visitor", {"status": session.status}, version=session.version)
    state = await availability()
    return {"sessionId": session_id, "status": session.status, "email": address, "away": state.public(address)}
