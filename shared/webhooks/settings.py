"""Webhook delivery settings (``WEBHOOK_*``): timeouts, how long retries go on, the rotation grace period."""

from __future__ import annotations

import functools

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import get_settings

_SCHEDULE = "5,300,1800,7200,18000,36000,50400,72000,86400"


class WebhookSettings(BaseSettings):
    """How deliveries are sent and retried."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", populate_by_name=True)

    timeout_seconds: float = Field(default=15.0, gt=0, le=60, validation_alias="WEBHOOK_TIMEOUT_SECONDS")
    retry_hours: float = Field(default=24.0, gt=0, le=168, validation_alias="WEBHOOK_RETRY_HOURS")
    rotation_grace_hours: float = Field(default=24.0, ge=0, le=168, validation_alias="WEBHOOK_ROTATION_GRACE_HOURS")
    # Lets endpoints be http and private addresses (a receiver on the developer's machine); Development only.
    allow_private_urls: bool = Field(default=False, validation_alias="WEBHOOK_ALLOW_PRIVATE_URLS")
    # When the retries go, in seconds after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
    schedule: str = Field(default=_SCHEDULE, validation_alias="WEBHOOK_RETRY_SCHEDULE")

    @property
    def offsets(self) -> tuple[float, ...]:
        """The retry schedule as seconds after the first attempt (a malformed setting gives the default)."""
        try:
            delays = tuple(float(part) for part in self.schedule.split(",") if part.strip())
        except ValueError:
            delays = ()
        if delays and all(d >= 0 for d in delays):
            return tuple(sorted(delays))
        return tuple(float(part) for part in _SCHEDULE.split(","))

    @property
    def private_allowed(self) -> bool:
        """Whether endpoints may be http or private addresses: the setting, and only in Development."""
        return self.allow_private_urls and get_settings().is_development


@functools.cache
def webhook_settings() -> WebhookSettings:
    """The worker's webhook settings."""
    return WebhookSettings()
