"""One signed POST to a webhook endpoint, through the same SSRF checks as knowledge crawling.

The target is checked on every attempt (scheme, credentials, every address the host resolves to) and
the connection goes to the checked address itself, so a DNS answer that changes after the check can't
send it inside the network. Redirects are not followed (a 3xx is a failed attempt). Signatures follow
Standard Webhooks: ``webhook-signature`` holds one ``v1,<base64>`` per live secret, space-separated,
so a receiver verifies with either while a rotation's grace period runs.
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from shared.knowledge.fetching import Fetcher, FetchFailed, UrlRefused

if TYPE_CHECKING:
    import httpx

USER_AGENT = "SupportDesk-Webhooks/1.0"
_BODY_KEPT = 256  # characters of a receiver's answer kept with the attempt, to show the admin


@dataclass(frozen=True)
class Sent:
    """What one attempt gave: the response status (None without one), time taken, error, Retry-After."""

    status: int | None
    duration_ms: int
    error: str = ""
    retry_after: float | None = None
    response: str = ""


def signature(secrets: list[str], message_id: str, at: datetime, body: str) -> str:
    """The ``webhook-signature`` header: one signature per secret, space-separated."""
    from standardwebhooks.webhooks import Webhook

    return " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)


def headers(secrets: list[str], message_id: str, at: datetime, body: str) -> dict[str, str]:
    """The request headers of a delivery signed at ``at``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(secrets, message_id, at, body),
    }


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


async def post(
    url: str, body: str, request_headers: dict[str, str], *, timeout: float, allow_private: bool,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Sent:  # fmt: skip
    """POST ``body`` to ``url`` once; never raises for what the network or the receiver does."""
    import httpx

    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    fetcher = Fetcher(allow_private=allow_private, timeout=timeout, user_agent=USER_AGENT)
    try:
        target = await fetcher.check(url)
    except UrlRefused as refused:
        return Sent(None, took(), f"refused: {refused}")
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
    ) as client:
        failure = "no address took the connection"
        for address in target.addresses:
            pinned = httpx.URL(target.url).copy_with(host=address)
            extensions = {"sni_hostname": target.host} if pinned.scheme == "https" else {}
            request = client.build_request(
                "POST", pinned, content=body.encode(), headers={**request_headers, "Host": target.netloc},
                extensions=extensions,
            )  # fmt: skip
            try:
                response = await client.send(request)
            except httpx.ConnectError as exc:
                failure = f"could not connect ({type(exc).__name__})"
                continue
            except httpx.TimeoutException:
                return Sent(None, took(), f"no answer within {timeout:g} seconds")
            except (httpx.HTTPError, FetchFailed) as exc:
                return Sent(None, took(), f"{type(exc).__name__}: {exc}"[:300])
            wait = retry_after(response.headers.get("retry-after"), datetime.now(UTC))
            return Sent(response.status_code, took(), "", wait, response.text[:_BODY_KEPT])
    return Sent(None, took(), failure)
