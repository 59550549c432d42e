"""Channel media as text for the bot: an image's description, a voice message's transcript.

With an OpenAI or Azure OpenAI provider, an image goes to the vision model as a data URI
(``LLM_VISION_MODEL``, default the chat model/deployment) and audio to the transcription endpoint
(``LLM_TRANSCRIBE_MODEL``, default ``whisper-1``), each bounded by a size cap and a timeout. With
the offline bot, past the kill switch or a cost cap (:func:`guards.refusal`), or on any failure,
the line only says that an image or voice message came (the agent still has the media link).
https://platform.openai.com/docs/guides/images-vision
https://platform.openai.com/docs/api-reference/audio/createTranscription
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from typing import TYPE_CHECKING, Any

from shared.llm import cost_micro_usd, get_llm_settings, get_provider
from shared.llm.openai_provider import OpenAIProvider
from shared.storage.chats import ChatRepository

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from shared.channels.inbound import Attachment

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 20.0  # a provider waits for the webhook's answer; the turn's bot reply follows
MAX_IMAGE_BYTES = 4 * 1024 * 1024  # base64 makes it a third larger in the request
MAX_AUDIO_BYTES = 25 * 1024 * 1024  # the transcription endpoint's limit
MAX_CHARS = 1500
IMAGE_RECEIVED = "[Image received; no description is available]"
VOICE_RECEIVED = "[Voice message received; no transcript is available]"
_PROMPT = (
    "A customer sent this image to a support chat. Describe in at most 3 sentences what it shows, "
    "including any text, numbers or error messages in it. Plain text."
)


def kind_of(attachment: Attachment) -> str:
    """``image``, ``audio`` or '' (other files get no text)."""
    kind = attachment.content_type.split("/", 1)[0].strip().lower()
    return kind if kind in ("image", "audio") else ""


async def as_text(session_id: str, attachment: Attachment) -> str:
    """The line the bot reads for ``attachment`` ('' for files that are neither image nor audio)."""
    kind = kind_of(attachment)
    if not kind:
        return ""
    fallback = IMAGE_RECEIVED if kind == "image" else VOICE_RECEIVED
    provider = get_provider()
    if not isinstance(provider, OpenAIProvider) or not attachment.data:
        return fallback
    if len(attachment.data) > (MAX_IMAGE_BYTES if kind == "image" else MAX_AUDIO_BYTES):
        return fallback
    from shared.conversations import guards

    session = await ChatRepository().get(session_id)
    if session is None or await guards.refusal(session) is not None:
        return fallback  # the kill switch or a cost cap: no call it would refuse the bot
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            if kind == "image":
                text, model, usage = await _describe(provider, attachment)
            else:
                text, model, usage = await _transcribe(provider, attachment)
    except Exception as exc:  # the fallback line stands; the message is stored either way
        log.warning("%s to text failed: %s (status %s)", kind, type(exc).__name__, getattr(exc, "status_code", None))
        return fallback
    await _count(model, usage)
    text = " ".join(text.split())[:MAX_CHARS]
    if not text:
        return fallback
    return f"[Image: {text}]" if kind == "image" else f"[Voice message: {text}]"


def _model(provider: OpenAIProvider, configured: str) -> str:
    return configured or (provider.deployment if provider.name == "azure" else provider.model)


@functools.lru_cache(maxsize=1)
def _azure_client(endpoint: str, api_version: str, api_key: str, retries: int) -> AsyncOpenAI:
    """An Azure client routed by each call's ``model`` (the chat client is bound to one deployment)."""
    import openai

    return openai.AsyncAzureOpenAI(
        azure_endpoint=endpoint, api_version=api_version, api_key=api_key, max_retries=retries
    )


def _client(provider: OpenAIProvider) -> AsyncOpenAI:
    if provider.name != "azure":
        return provider.client()
    settings = provider.settings
    return _azure_client(
        settings.azure_openai_endpoint,
        settings.azure_openai_api_version,
        settings.azure_openai_api_key.get_secret_value(),
        settings.max_retries,
    )


async def _describe(provider: OpenAIProvider, attachment: Attachment) -> tuple[str, str, tuple[int, int]]:
    """The vision model's description of an image, its model and its (prompt, completion) tokens."""
    model = _model(provider, provider.settings.vision_model)
    uri = f"data:{attachment.content_type};base64,{base64.b64encode(attachment.data).decode()}"
    content: list[Any] = [{"type": "text", "text": _PROMPT}, {"type": "image_url", "image_url": {"url": uri}}]
    completion = await _client(provider).chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], max_tokens=200
    )
    choice = completion.choices[0] if completion.choices else None
    usage = completion.usage
    tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    return (choice.message.content if choice else None) or "", completion.model or model, tokens


async def _transcribe(provider: OpenAIProvider, attachment: Attachment) -> tuple[str, str, tuple[int, int]]:
    """The transcript of a voice message, its model and its tokens (zero for per-minute models)."""
    model = _model(provider, provider.settings.transcribe_model)
    name = attachment.name if "." in attachment.name else f"{attachment.name or 'voice'}.{_extension(attachment)}"
    result = await _client(provider).audio.transcriptions.create(
        model=model, file=(name, attachment.data, attachment.content_type)
    )
    usage = getattr(result, "usage", None)
    tokens = (int(getattr(usage, "input_tokens", 0) or 0), int(getattr(usage, "output_tokens", 0) or 0))
    return str(getattr(result, "text", "") or ""), model, tokens


def _extension(attachment: Attachment) -> str:
    # The endpoint tells formats apart by the file name's extension.
    subtype = attachment.content_type.split("/", 1)[-1].split(";", 1)[0].strip().lower()
    return {"mpeg": "mp3", "x-m4a": "m4a", "mp4": "m4a", "x-wav": "wav", "opus": "ogg"}.get(subtype, subtype or "ogg")


async def _count(model: str, tokens: tuple[int, int]) -> None:
    """Count the call like the bot's: the guard's local count and the hour's rollup."""
    from shared.conversations import guards

    prompt, completion = tokens
    cost = cost_micro_usd(model, prompt, completion, get_llm_settings().prices)
    await guards.count_call_outside_turn(prompt, completion, cost)
