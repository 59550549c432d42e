"""The webhook API's bodies: what admins send and what they get back (pydantic; the OpenAPI document uses them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from shared.webhooks.events import EVENT_TYPES

EventType = Literal[
    "session.created", "session.handoff_requested", "session.claimed", "session.closed", "message.created",
    "rating.created", "approval.created", "approval.resolved",
]  # fmt: skip
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]  # one list, two spellings


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("lists an event more than once")
    return values


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not contain control characters")
    return value


Url = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_printable)]
Events = Annotated[list[EventType], Field(max_length=len(EVENT_TYPES)), AfterValidator(_unique)]
Description = Annotated[str, Field(max_length=500), AfterValidator(_printable)]


class EndpointIn(BaseModel):
    """A new endpoint: where to send, which events (none listed: every event), on or off, a note."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    url: Url
    events: Events = Field(default_factory=list)
    enabled: StrictBool = True
    description: Description = ""


class EndpointPatch(BaseModel):
    """A merge patch of an endpoint: absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    url: Url | None = None
    events: Events | None = None
    enabled: StrictBool | None = None
    description: Description | None = None


class RotateIn(BaseModel):
    """How long the old secret keeps signing beside the new one (hours; default ``WEBHOOK_ROTATION_GRACE_HOURS``)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    graceHours: float | None = Field(default=None, ge=0, le=168, allow_inf_nan=False)


class EndpointOut(BaseModel):
    """An endpoint as admins see it (the secret is shown only when created or rotated)."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str
    disabledReason: str | None
    previousSecretValidUntil: str | None
    createdAt: str
    updatedAt: str


class EndpointWithSecret(EndpointOut):
    """An endpoint with its signing secret (``whsec_...``), shown once."""

    secret: str


class EndpointList(BaseModel):
    """Every endpoint, oldest first."""

    endpoints: list[EndpointOut]


class AttemptOut(BaseModel):
    """One attempt to deliver."""

    at: str
    responseStatus: int | None
    durationMs: int
    error: str | None
    nextRetryAt: str | None = None


class DeliveryOut(BaseModel):
    """One event for one endpoint: its status and attempts (newest last)."""

    id: str
    endpointId: str
    messageId: str
    eventType: str
    status: Literal["pending", "retrying", "delivered", "failed"]
    attemptCount: int
    responseStatus: int | None
    durationMs: int | None
    nextRetryAt: str | None
    createdAt: str
    attempts: list[AttemptOut]
    payload: dict[str, object]


class DeliveryList(BaseModel):
    """An endpoint's deliveries, newest first, with a cursor while there are more."""

    deliveries: list[DeliveryOut]
    nextCursor: str | None
