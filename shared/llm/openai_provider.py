"""The LLM provider over the ``openai`` SDK: Azure OpenAI or any OpenAI-compatible endpoint.

The SDK is imported on first use, not at import time (``import openai`` costs about a second of
cold start). The SDK itself retries timeouts, 408/409/429 and 5xx with exponential backoff and
honours ``Retry-After``/``retry-after-ms`` (openai ``_base_client._should_retry`` and
``_calculate_retry_timeout``); ``LLM_MAX_RETRIES`` bounds the attempts and ``LLM_DEADLINE_SECONDS``
the whole turn. Whatever goes wrong, the caller gets a :class:`BotReply` (``failed=True``,
apologising and offering a person), never an exception: the visitor's message is stored either way.

The prompt carries the grounding excerpts numbered ``[1]``, ``[2]``...; the markers the model puts
in its reply say which sources it used (see :mod:`shared.llm.markers`) and are removed from the
text the visitor reads, as it streams too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from shared.llm import replies
from shared.llm.grounding import Grounding
from shared.llm.handoff import asks_for_human
from shared.llm.markers import NO_ANSWER, MarkerFilter, cited_numbers, says_no_answer, strip_markers
from shared.llm.settings import OPENAI_DEFAULT_BASE_URL, LlmSettings
from shared.llm.types import UNANSWERED, BotReply, ChatTurn, Citation, ReplyStream

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger(__name__)

Flavour = Literal["openai", "azure"]
EXCERPT_MAX_CHARS = 1500
GROUNDING_MAX_CHARS = 6000
# Models that take max_completion_tokens and refuse a temperature (the reasoning families).
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")

INSTRUCTIONS = (
    "Answer only from the numbered excerpts of the company's knowledge below. Put the number of "
    "each excerpt you use in square brackets right after what it supports, like [1] or [2][3]. "
    "Reply in the language of the visitor's last message. If the excerpts do not answer the "
    "question, do not guess: say that you don't know, offer to connect the visitor with a person "
    f"from the team, and end your reply with {NO_ANSWER}."
)
NOTHING_FOUND = (
    "Nothing in the knowledge base matches this question. Unless the visitor is only greeting or "
    "thanking you, say that you don't know, offer to connect them with a person from the team, and "
    f"end your reply with {NO_ANSWER}. Reply in the language of the visitor's last message."
)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def grounding_section(grounding: Grounding) -> str:
    """The numbered excerpts and how to use them, as a system-prompt section."""
    if not grounding.excerpts:
        return NOTHING_FOUND
    sections: list[str] = []
    size = 0
    for number, excerpt in enumerate(grounding.excerpts, start=1):
        where = " > ".join([excerpt.title, *excerpt.headings]) if excerpt.title else " > ".join(excerpt.headings)
        text = (
            f"[{number}] {where}\n{_clip(excerpt.text, EXCERPT_MAX_CHARS)}" if where else f"[{number}] {excerpt.text}"
        )
        if sections and size + len(text) > GROUNDING_MAX_CHARS:
            break
        sections.append(text)
        size += len(text)
    return f"{INSTRUCTIONS}\n\nExcerpts:\n\n" + "\n\n".join(sections)


def build_messages(
    settings: LlmSettings, grounding: Grounding, history: Sequence[ChatTurn], question: str
) -> list[dict[str, str]]:
    """System prompt with the numbered excerpts, the last ``LLM_HISTORY_TURNS`` turns, then the question."""
    turns = [turn for turn in history if turn.role in ("user", "assistant") and turn.content.strip()]
    # Bounded history bounds the prompt tokens of a long conversation.
    turns = turns[-settings.history_turns :] if settings.history_turns else []
    system = f"{settings.system_prompt.strip()}\n\n{grounding_section(grounding)}"
    if grounding.guidance:
        system += "\n\nInstructions from the support team for this conversation (follow them):\n" + "\n".join(
            f"- {line}" for line in grounding.guidance
        )
    return [
        {"role": "system", "content": system},
        *({"role": turn.role, "content": turn.content} for turn in turns),
        {"role": "user", "content": question},
    ]


def read_markers(raw: str, grounding: Grounding) -> tuple[list[Citation], str]:
    """The citations the reply's markers name, and its gap reason (the model said it doesn't know)."""
    if says_no_answer(raw):
        return [], UNANSWERED
    return grounding.cited(cited_numbers(raw)), ""


async def _close_quietly(stream: Any) -> None:
    # Closing after a timeout can itself fail on the dead connection; the reply matters more.
    try:
        await stream.close()
    except Exception as exc:
        log.debug("closing the LLM stream failed: %s", type(exc).__name__)


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token in English)."""
    return max(1, round(len(text) / 4)) if text else 0


def _estimate_prompt(messages: list[dict[str, str]]) -> int:
    return sum(estimate_tokens(m["content"]) + 4 for m in messages)


class OpenAIProvider:
    """Chat completions through ``openai.AsyncOpenAI`` or ``openai.AsyncAzureOpenAI``."""

    def __init__(
        self,
        *,
        settings: LlmSettings,
        flavour: Flavour = "openai",
        http_client: Any = None,
        base_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.name: str = flavour
        self.model = settings.model
        # Azure routes by deployment name; the model name is only the default deployment.
        self.deployment = settings.azure_openai_deployment or settings.model
        self._http_client = http_client  # httpx.AsyncClient or httpx2.AsyncClient, for tests
        self._base_url = base_url or settings.openai_base_url or OPENAI_DEFAULT_BASE_URL
        self._client: AsyncOpenAI | None = None

    def client(self) -> AsyncOpenAI:
        """The SDK client, created (and ``openai`` imported) on first use."""
        if self._client is None:
            import openai

            settings = self.settings
            if self.name == "azure":
                self._client = openai.AsyncAzureOpenAI(
                    azure_endpoint=settings.azure_openai_endpoint,
                    azure_deployment=self.deployment,
                    api_version=settings.azure_openai_api_version,
                    api_key=settings.azure_openai_api_key.get_secret_value(),
                    timeout=settings.timeout_seconds,
                    max_retries=settings.max_retries,
                    http_client=self._http_client,
                )
            else:
                self._client = openai.AsyncOpenAI(
                    base_url=self._base_url,
                    # Local OpenAI-compatible servers need no key, but the SDK insists on one.
                    api_key=settings.openai_api_key.get_secret_value() or "no-key",
                    timeout=settings.timeout_seconds,
                    max_retries=settings.max_retries,
                    http_client=self._http_client,
                )
        return self._client

    def _params(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.deployment if self.name == "azure" else self.model,
            "messages": messages,
        }
        if self.model.lower().startswith(_REASONING_PREFIXES):
            params["max_completion_tokens"] = self.settings.max_tokens
        else:
            params["max_tokens"] = self.settings.max_tokens
            params["temperature"] = self.settings.temperature
        return params

    def _elapsed_ms(self, started: float) -> int:
        return int((time.perf_counter() - started) * 1000)

    def _log_failure(self, exc: Exception, started: float) -> None:
        # Type, status and error code only: SDK messages can echo request details.
        expected = type(exc).__module__.split(".")[0] in ("openai", "httpx", "httpx2", "httpcore", "anyio")
        log.log(
            logging.WARNING if expected or isinstance(exc, TimeoutError) else logging.ERROR,
            "LLM %s call failed after %d ms: %s (status %s, code %s)",
            self.name,
            self._elapsed_ms(started),
            type(exc).__name__,
            getattr(exc, "status_code", None),
            getattr(exc, "code", None),
            exc_info=not expected and not isinstance(exc, TimeoutError),
        )

    async def reply(self, history: Sequence[ChatTurn], question: str, grounding: Grounding) -> BotReply:
        """One non-streaming answer with its usage and citations; a graceful failed reply on any error."""
        started = time.perf_counter()
        if asks_for_human(question):
            return replies.handoff_reply(self.name, self.model)
        messages = build_messages(self.settings, grounding, history, question)
        try:
            async with asyncio.timeout(self.settings.deadline_seconds):
                completion = await self.client().chat.completions.create(**self._params(messages))
        except Exception as exc:  # the visitor gets an apology, never a 500
            self._log_failure(exc, started)
            return replies.unavailable_reply(self.name, self.model, self._elapsed_ms(started))
        choice = completion.choices[0] if completion.choices else None
        raw = (choice.message.content if choice else None) or ""
        text = strip_markers(raw)
        if not text:  # e.g. finish_reason "content_filter"
            text = replies.EMPTY
        cited, gap = read_markers(raw, grounding)
        usage = completion.usage
        return BotReply(
            text,
            prompt_tokens=usage.prompt_tokens if usage else _estimate_prompt(messages),
            completion_tokens=usage.completion_tokens if usage else estimate_tokens(raw),
            model=completion.model or self.model,
            latency_ms=self._elapsed_ms(started),
            provider=self.name,
            usage_estimated=usage is None,
            citations=cited,
            gap=gap,
        )

    def stream(self, history: Sequence[ChatTurn], question: str, grounding: Grounding) -> ReplyStream:
        """The answer as text deltas (markers removed); the stream's ``reply`` carries usage and citations."""
        return ReplyStream(self._stream(history, question, grounding))

    async def _stream(
        self, history: Sequence[ChatTurn], question: str, grounding: Grounding
    ) -> AsyncGenerator[str | BotReply, None]:
        started = time.perf_counter()
        if asks_for_human(question):
            handoff = replies.handoff_reply(self.name, self.model)
            yield handoff.text
            yield handoff
            return
        messages = build_messages(self.settings, grounding, history, question)
        deadline = asyncio.get_running_loop().time() + self.settings.deadline_seconds
        parts: list[str] = []  # what the model sent, markers included
        shown: list[str] = []  # what the visitor saw
        cleaner = MarkerFilter()
        usage: Any = None
        model = self.model
        failure: Exception | None = None
        stream: Any = None
        try:
            async with asyncio.timeout_at(deadline):
                stream = await self.client().chat.completions.create(
                    **self._params(messages), stream=True, stream_options={"include_usage": True}
                )
            chunks = stream.__aiter__()
            while True:
                # The deadline wraps each read, never a yield, so it can't fire in the caller's code.
                async with asyncio.timeout_at(deadline):
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        break
                model = chunk.model or model
                usage = chunk.usage or usage
                for choice in chunk.choices:
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        parts.append(delta)
                        visible = cleaner.feed(delta)
                        if visible:
                            shown.append(visible)
                            yield visible
        except Exception as exc:  # the visitor gets an apology, never a 500
            failure = exc
        finally:
            if stream is not None:
                await _close_quietly(stream)
        if rest := cleaner.flush():
            shown.append(rest)
            yield rest
        raw, text = "".join(parts), "".join(shown)
        if failure is not None:
            self._log_failure(failure, started)
            if not text:
                yield replies.UNAVAILABLE
                yield replies.unavailable_reply(self.name, self.model, self._elapsed_ms(started))
                return
            yield replies.CUT_SHORT
            text += replies.CUT_SHORT
        elif not text.strip():
            text = replies.EMPTY
            yield text
        cited, gap = read_markers(raw, grounding)
        yield BotReply(
            text,
            prompt_tokens=usage.prompt_tokens if usage else _estimate_prompt(messages),
            completion_tokens=usage.completion_tokens if usage else estimate_tokens(raw),
            model=model,
            latency_ms=self._elapsed_ms(started),
            provider=self.name,
            failed=failure is not None,
            usage_estimated=usage is None,
            citations=cited,
            gap=gap,
        )

    async def aclose(self) -> None:
        """Close the SDK client and its connections (also an injected ``http_client``)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
