"""Pure domain rules: visitor tokens, rate limits, ordering keys (the state machine: test_machine.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import Problem
from shared.identity.visitor_tokens import issue, verify
from shared.storage.orderings import activity_key, cost_key
from shared.web.ratelimit import LocalRateLimiter


def test_visitor_tokens_bind_a_session_and_expire() -> None:
    now = datetime.now(UTC)
    token = issue("abc", secret="s" * 32, issuer="dep", ttl_seconds=60, now=now)
    assert verify(token.token, secret="s" * 32, issuer="dep") == "abc"
    for secret, issuer in (("t" * 32, "dep"), ("s" * 32, "other")):
        with pytest.raises(Problem) as refused:
            verify(token.token, secret=secret, issuer=issuer)
        assert refused.value.status == 401
    old = issue("abc", secret="s" * 32, issuer="dep", ttl_seconds=60, now=now - timedelta(hours=2))
    with pytest.raises(Problem) as expired:
        verify(old.token, secret="s" * 32, issuer="dep")
    assert expired.value.kind == "token-expired"
    assert verify(old.token, secret="s" * 32, issuer="dep", allow_expired_days=1) == "abc"


def test_local_rate_limit_is_a_sliding_minute() -> None:
    limiter = LocalRateLimiter()
    assert [limiter.hit("k", 2, now=t).allowed for t in (0.0, 10.0, 20.0)] == [True, True, False]
    assert limiter.hit("k", 2, now=30.0).allowed is False  # still three in the last minute
    assert limiter.hit("k", 2, now=91.0).allowed is True  # earlier hits (refused ones too) have slid out
    assert limiter.hit("other", 2, now=91.0).allowed is True
    refused = limiter.hit("k", 1, now=92.0)
    assert not refused.allowed and refused.headers()["Retry-After"]


def test_orderings_sort_newest_and_costliest_first() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    assert activity_key(late, "a") < activity_key(early, "a")
    assert cost_key(5_000, "a") < cost_key(10, "a") < cost_key(1, "a") < cost_key(0, "a")
    assert len({len(cost_key(cost, "a")) for cost in (0, 1, 10**9, 10**20)}) == 1
