"""One clock and one timestamp format for the whole product (UTC, ISO-8601 with a ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current UTC time (one place, so tests and code agree on the clock)."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str:
    """ISO-8601 UTC with a Z and milliseconds, or empty."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else ""


def parse_iso(text: str) -> datetime | None:
    """Inverse of :func:`iso` (None for empty text)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
