"""Storage Queue triggers, polled the way the Functions host polls them (locally: Azurite's queues).

An empty queue is polled with exponential back-off from 100 ms up to ``maxPollingInterval``; a
found batch resets it. Messages are leased (made invisible) while their function runs, deleted on
success, made visible again after ``visibilityTimeout`` on failure, and moved to
``<queue>-poison`` once they have failed ``maxDequeueCount`` times. A missing queue or an
unreachable Storage is logged once and retried with the same back-off.

Functions get what the Python worker passes: ``azure.functions.queue.QueueMessage``, the
``func.QueueMessage`` subclass that also carries the dequeue count and the message's times.
https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.functions.queue import QueueMessage as FunctionMessage

if TYPE_CHECKING:
    from azure.storage.queue import QueueMessage as StoredMessage
    from azure.storage.queue.aio import QueueClient

# The queue SDK (with azure.core, requests and aiohttp: ~0.5 s) is imported in the poller, so an app
# without queue triggers never pays for it, and the cold-start bench doesn't count it as the product's.

log = logging.getLogger("devhost.queues")

MIN_POLLING_INTERVAL = 0.1  # seconds; the first delay after an empty poll, as in Azure
LEASE_SECONDS = 600  # how long a fetched message stays invisible while its function runs
_QUEUE_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+)(?::(\d+)(\.\d+)?)?$")


def parse_timespan(value: object) -> float:
    """Seconds in a host.json duration: a TimeSpan (``[d.]hh:mm[:ss[.fff]]``) or a number of ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000
    found = _TIMESPAN.match(str(value).strip())
    if not found:
        raise ValueError(f"not a TimeSpan (hh:mm:ss) or milliseconds: {value!r}")
    days, hours, minutes, seconds, fraction = found.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0) + float(fraction or 0)


@dataclass(frozen=True)
class QueueOptions:
    """host.json ``extensions.queues``, with Azure's defaults."""

    max_polling_interval: float = 60.0
    batch_size: int = 16
    new_batch_threshold: int | None = None  # None: batch_size // 2
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 32:
            raise ValueError(f"queues.batchSize must be 1..32, not {self.batch_size}")
        if self.max_dequeue_count < 1:
            raise ValueError(f"queues.maxDequeueCount must be at least 1, not {self.max_dequeue_count}")
        if self.message_encoding not in ("base64", "none"):
            raise ValueError(f"queues.messageEncoding must be base64 or none, not {self.message_encoding!r}")
        if self.max_polling_interval < MIN_POLLING_INTERVAL or self.visibility_timeout < 0:
            raise ValueError("queues.maxPollingInterval must be at least 100 ms; visibilityTimeout not negative")

    @property
    def threshold(self) -> int:
        """Fetch the next batch once no more than this many messages are still running."""
        return self.batch_size // 2 if self.new_batch_threshold is None else self.new_batch_threshold

    @classmethod
    def from_host_json(cls, path: Path) -> QueueOptions:
        """The options in ``path`` (defaults for what it leaves out, or when there is no file)."""
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        queues: dict[str, Any] = dict((data.get("extensions") or {}).get("queues") or {})
        # App settings override host.json as on Azure: AzureFunctionsJobHost__extensions__queues__<key>.
        prefix = "azurefunctionsjobhost__extensions__queues__"
        for name, value in os.environ.items():
            if name.lower().startswith(prefix) and value:
                key = name[len(prefix) :]
                known = {k.lower(): k for k in ("maxPollingInterval", "batchSize", "newBatchThreshold",
                                                "visibilityTimeout", "maxDequeueCount", "messageEncoding")}  # fmt: skip
                queues[known.get(key.lower(), key)] = value
        defaults = cls()
        threshold = queues.get("newBatchThreshold")
        return cls(
            max_polling_interval=parse_timespan(queues.get("maxPollingInterval", defaults.max_polling_interval * 1000)),
            batch_size=int(queues.get("batchSize", defaults.batch_size)),
            new_batch_threshold=None if threshold is None else int(threshold),
            visibility_timeout=parse_timespan(queues.get("visibilityTimeout", 0)),
            max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
            message_encoding=str(queues.get("messageEncoding", defaults.message_encoding)).lower(),
        )


def decode_body(content: str | bytes | None, encoding: str) -> bytes:
    """A stored message's bytes; ``ValueError`` when base64 was expected and it isn't."""
    if isinstance(content, bytes):
        return content
    text = content or ""
    if encoding == "none":
        return text.encode("utf-8")
    try:
        return base64.b64decode("".join(text.split()), validate=True)  # .NET ignores whitespace too
    except binascii.Error as error:
        raise ValueError(f"the message is not base64: {error}") from None


@dataclass
class QueueFunction:
    """One queue-triggered function of the app."""

    name: str
    queue_name: str
    connection: str  # the app setting holding the Storage connection string
    arg_name: str
    user_function: Callable[..., Any]

    def validate(self) -> None:
        """Raise ``ValueError`` for a queue name Storage would refuse (or an unresolved setting)."""
        if not _QUEUE_NAME.match(self.queue_name):
            raise ValueError(
                f"function {self.name}: {self.queue_name!r} is not a queue name "
                "(3-63 lowercase letters, digits and single hyphens)"
            )

    def connection_string(self) -> str:
        """The connection string, from the setting itself or ``AzureWebJobs<setting>`` as Azure allows."""
        setting = self.connection or "AzureWebJobsStorage"
        return os.environ.get(setting) or os.environ.get(f"AzureWebJobs{setting}") or ""

    async def invoke(self, message: FunctionMessage) -> None:
        """Call the function with ``message``, awaited or in a thread."""
        kwargs = {self.arg_name: message}
        if inspect.iscoroutinefunction(self.user_function):
            await self.user_function(**kwargs)
        else:
            await asyncio.to_thread(self.user_function, **kwargs)


def manual_message(text: str) -> FunctionMessage:
    """The message of a run through the admin API: ``input`` as the body, dequeued once."""
    return FunctionMessage(
        id=str(uuid.uuid4()), body=text.encode("utf-8"), dequeue_count=1, insertion_time=datetime.now(UTC)
    )


class QueuePoller:
    """Polls one function's queue until cancelled."""

    def __init__(self, function: QueueFunction, options: QueueOptions) -> None:
        self.function = function
        self.options = options
        self._running: set[asyncio.Task[None]] = set()
        self._problem: str | None = None  # what was last logged: an outage is logged once, not every poll
        self._poison_ready = False

    async def run_forever(self) -> None:
        """Poll, run and settle messages; cancelling it releases the messages still running."""
        setting = self.function.connection or "AzureWebJobsStorage"
        connection = self.function.connection_string()
        if not connection:
            log.error("function %s: app setting %s is not set; its queue is not polled", self.function.name, setting)
            return
        from azure.storage.queue.aio import QueueServiceClient

        # No SDK retries (its back-off starts at 15 s): a failed poll is retried by this loop.
        service = QueueServiceClient.from_connection_string(
            connection, retry_total=0, connection_timeout=10, http_logging_level=logging.DEBUG
        )
        queue = service.get_queue_client(self.function.queue_name)
        poison = service.get_queue_client(f"{self.function.queue_name}-poison")
        delay = MIN_POLLING_INTERVAL
        try:
            while True:
                if len(self._running) > self.options.threshold:
                    await asyncio.wait(set(self._running), return_when=asyncio.FIRST_COMPLETED)
                    continue
                messages = await self._receive(queue)
                for message in messages:
                    task = asyncio.create_task(self._process(queue, poison, message))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                if messages:
                    delay = MIN_POLLING_INTERVAL
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.max_polling_interval)
        finally:
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)
            await service.close()

    def _report(self, problem: str) -> None:
        if problem != self._problem:
            if problem:
                log.warning("function %s: %s; retrying with back-off", self.function.name, problem)
            else:
                log.info("function %s: polling queue %s", self.function.name, self.function.queue_name)
        self._problem = problem

    async def _receive(self, queue: QueueClient) -> list[StoredMessage]:
        """Lease up to a batch of messages (one request); none when the queue or Storage is missing."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        messages: list[StoredMessage] = []
        try:
            pages = queue.receive_messages(messages_per_page=self.options.batch_size, visibility_timeout=LEASE_SECONDS)
            async for page in pages.by_page():
                messages = [message async for message in page]
                break
        except ResourceNotFoundError:
            self._report(f"queue {self.function.queue_name} does not exist")
        except (AzureError, OSError) as error:
            self._report(f"cannot reach queue {self.function.queue_name} ({type(error).__name__})")
        else:
            self._report("")
        return messages

    async def _process(self, queue: QueueClient, poison: QueueClient, message: StoredMessage) -> None:
        name, limit, count = self.function.name, self.options.max_dequeue_count, message.dequeue_count or 0
        try:
            body = decode_body(message.content, self.options.message_encoding)
        except ValueError as error:
            await self._poison(queue, poison, message, f"can't be decoded ({error})")
            return
        if count > limit:  # a run that never settled it (the host stopped) used up its last attempt
            await self._poison(queue, poison, message, f"was dequeued {count} times")
            return
        try:
            await self.function.invoke(
                FunctionMessage(
                    id=message.id,
                    body=body,
                    dequeue_count=message.dequeue_count,
                    insertion_time=message.inserted_on,
                    expiration_time=message.expires_on,
                    time_next_visible=message.next_visible_on,
                    pop_receipt=message.pop_receipt,
                )
            )
        except asyncio.CancelledError:  # the host is stopping: the next run gets the message at once
            await self._settle(f"release message {message.id}", queue.update_message(message, visibility_timeout=0))
            raise
        except Exception:
            log.exception("function %s failed on message %s (dequeue count %d)", name, message.id, count)
            if count >= limit:
                await self._poison(queue, poison, message, f"reached maxDequeueCount {limit}")
            else:
                retry = queue.update_message(message, visibility_timeout=math.ceil(self.options.visibility_timeout))
                await self._settle(f"return message {message.id} to the queue", retry)
            return
        await self._settle(f"delete message {message.id}", queue.delete_message(message))

    async def _poison(self, queue: QueueClient, poison: QueueClient, message: StoredMessage, why: str) -> None:
        """Move ``message``, its stored body unchanged, to ``<queue>-poison``."""
        log.warning(
            "function %s: message %s %s; moving it to %s", self.function.name, message.id, why, poison.queue_name
        )
        if not self._poison_ready:
            self._poison_ready = await self._settle(f"create {poison.queue_name}", poison.create_queue())
            if not self._poison_ready:
                return
        if await self._settle(
            f"copy message {message.id} to {poison.queue_name}", poison.send_message(message.content)
        ):
            await self._settle(f"delete message {message.id}", queue.delete_message(message))

    async def _settle(self, what: str, call: Awaitable[object]) -> bool:
        """Await a Storage call; a failure is logged and False (the message returns when its lease ends)."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            await call
        except ResourceExistsError:
            pass  # a queue to create is there already
        except (AzureError, OSError) as error:
            log.warning("function %s: could not %s (%s)", self.function.name, what, type(error).__name__)
            return False
        return True
