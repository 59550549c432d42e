"""Counting Storage calls per request, so a benchmark can show how many round trips a turn makes.

Every repository call goes through :func:`shared.storage.errors.storage_call` or ``collect``,
which count here. The count lives in a context variable: concurrent requests count apart.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass
class CallCounter:
    """Storage calls made since the counter was started."""

    calls: int = 0


_counter: contextvars.ContextVar[CallCounter | None] = contextvars.ContextVar("storage_calls", default=None)


def start_counting() -> CallCounter:
    """Count this context's Storage calls from now on (tasks it starts share the counter)."""
    counter = CallCounter()
    _counter.set(counter)
    return counter


def count_call() -> None:
    """Count one Storage round trip (a point read, a query page stream, a write or a transaction)."""
    counter = _counter.get()
    if counter is not None:
        counter.calls += 1
