"""Channel media read by the bot over real HTTP on Azurite: a Meta WhatsApp image reaches the bot as the
vision model's description and a voice message as its transcript (fake OpenAI and fake Graph API), as
do a Telegram photo and voice message (fetched with getFile); a failed description still tells the bot
an image came."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.fakes import channel_apis
from tests.fakes.http_server import FakeServer
from tests.fakes.openai_server import FakeOpenAI, image_urls, ok, status
from tests.support import eventually, host_env, settled, stored_messages, tables

APP_SECRET = "meta-app-secret-for-media-tests"
PHONE_ID = "106540352242923"
TELEGRAM_TOKEN = "654321:telegram-media-token"
TELEGRAM_SECRET = "telegram-media-secret"
DESCRIPTION = "A cardboard parcel with a torn corner and a label reading 12345."


@pytest.fixture(scope="module")
def providers() -> Iterator[FakeServer]:
    """The Graph API (messages and media)."""
    server = channel_apis.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(
    module_azurite: Azurite, start_host: Callable[..., Host], providers: FakeServer, module_openai: FakeOpenAI
) -> Iterator[httpx.Client]:
    """A client of a host with Meta WhatsApp and an OpenAI bot configured."""
    host = start_host(
        host_env(
            module_azurite,
            META_APP_SECRET=APP_SECRET,
            META_VERIFY_TOKEN="verify-token",
            META_ACCESS_TOKEN="meta-access-token",
            META_PHONE_NUMBER_ID=PHONE_ID,
            META_GRAPH_URL=providers.url,
            TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
            TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET,
            TELEGRAM_API_URL=providers.url,
            LLM_PROVIDER="openai",
            OPENAI_BASE_URL=module_openai.base_url,
            OPENAI_API_KEY="sk-test-key",
            LLM_MAX_RETRIES="0",
            LLM_VISION_MODEL="gpt-4o",
            LLM_TRANSCRIBE_MODEL="whisper-1",
        )
    )
    with host.client() as client:
        yield client


def _post(api: httpx.Client, sender: str, message: dict[str, Any]) -> None:
    """A signed Cloud API messages notification from ``sender``."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Kerry"}, "wa_id": sender}],
        "messages": [
            {"from": sender, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), **message}
        ],
    }
    entry = {"id": "WABA", "changes": [{"field": "messages", "value": value}]}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = api.post("/channels/whatsapp", content=body, headers={"X-Hub-Signature-256": signature})
    assert response.status_code == 200, response.text


def _visitor_texts(azurite: Azurite, providers: FakeServer, sender: str) -> list[str]:
    """The contact's stored visitor messages, once the bot's WhatsApp reply went out."""
    eventually(
        lambda: [b for b in channel_apis.sent(providers, f"/{PHONE_ID}/messages") if b["to"] == sender],
        what="the bot's WhatsApp reply",
    )
    links = (
        tables(azurite)
        .get_table_client("channels")
        .query_entities("PartitionKey eq 'link' and address eq @a", parameters={"a": sender})
    )
    session_id = next(iter(links))["RowKey"]
    settled(azurite, session_id)
    return [m["text"] for m in stored_messages(azurite, session_id) if m["sender"] == "visitor"]


def _bot_prompts(module_openai: FakeOpenAI, needle: str) -> list[dict[str, Any]]:
    """The bot's chat requests whose last (visitor) message contains ``needle``."""
    requests = [r.json() for r in module_openai.requests if r.path.startswith("/v1/chat/completions")]
    return [r for r in requests if needle in str(r["messages"][-1]["content"]) and not image_urls(r)]


def _phone() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def test_an_image_reaches_the_bot_as_its_description(
    api: httpx.Client, module_azurite: Azurite, providers: FakeServer, module_openai: FakeOpenAI
) -> None:
    sender = _phone()
    module_openai.script(ok(DESCRIPTION), ok("Sorry about the damage; a person will look at it."))
    _post(
        api,
        sender,
        {"type": "image", "image": {"id": "media-7", "mime_type": "image/png", "caption": "it came broken"}},
    )
    texts = _visitor_texts(module_azurite, providers, sender)
    # The vision model got the image itself, as a data URI, from the configured model.
    asked = [r.json() for r in module_openai.requests if r.path.startswith("/v1/chat/completions")]
    vision = [r for r in asked if image_urls(r)]
    assert len(vision) == 1 and vision[0]["model"] == "gpt-4o"
    assert image_urls(vision[0]) == ["data:image/png;base64," + base64.b64encode(channel_apis.PNG).decode()]
    # The bot's prompt and the stored message carry the description; agents keep the media link.
    assert _bot_prompts(module_openai, f"[Image: {DESCRIPTION}]")
    assert len(texts) == 1
    caption, media_line, said = texts[0].split("\n")
    assert caption == "it came broken" and media_line.startswith("[image: image-media-7] /api/channels/media/")
    assert said == f"[Image: {DESCRIPTION}]"


def test_a_voice_message_reaches_the_bot_as_its_transcript(
    api: httpx.Client, module_azurite: Azurite, providers: FakeServer, module_openai: FakeOpenAI
) -> None:
    sender = _phone()
    module_openai.transcript = "Hi, my order 12345 has not arrived yet."
    uploads = len(module_openai.uploads)
    _post(
        api, sender, {"type": "audio", "audio": {"id": "media-8", "mime_type": "audio/ogg; codecs=opus", "voice": True}}
    )
    texts = _visitor_texts(module_azurite, providers, sender)
    upload = module_openai.uploads[uploads]
    assert upload.fields["model"] == "whisper-1" and upload.data == channel_apis.PNG  # the downloaded media
    assert upload.filename.endswith(".ogg")
    assert _bot_prompts(module_openai, "[Voice message: Hi, my order 12345 has not arrived yet.]")
    assert texts[0].split("\n")[1] == "[Voice message: Hi, my order 12345 has not arrived yet.]"
    assert texts[0].startswith("[audio: audio-media-8] /api/channels/media/")


def test_a_failed_description_still_says_an_image_came(
    api: httpx.Client, module_azurite: Azurite, providers: FakeServer, module_openai: FakeOpenAI
) -> None:
    sender = _phone()
    module_openai.script(status(500))
    _post(api, sender, {"type": "image", "image": {"id": "media-9", "mime_type": "image/jpeg"}})
    texts = _visitor_texts(module_azurite, providers, sender)
    assert texts[0].split("\n")[1] == "[Image received; no description is available]"
    assert _bot_prompts(module_openai, "[Image received; no description is available]")


def test_telegram_photo_and_voice_are_downloaded_and_read(
    api: httpx.Client, module_azurite: Azurite, providers: FakeServer, module_openai: FakeOpenAI
) -> None:
    chat_id = int(str(uuid.uuid4().int)[:9])
    module_openai.transcript = "Can I change my delivery address?"
    uploads = len(module_openai.uploads)
    module_openai.script(ok("A blue parcel box on a doorstep."))
    photo = [{"file_id": "small-1", "width": 90, "height": 90}, {"file_id": "large-1", "width": 800, "height": 800}]
    for update_id, content in [
        (chat_id, {"photo": photo, "caption": "look"}),
        (chat_id + 1, {"voice": {"file_id": "voice-1", "duration": 3, "mime_type": "audio/ogg"}}),
    ]:
        message = {"message_id": update_id, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"}}
        response = api.post(
            "/channels/telegram",
            json={"update_id": update_id, "message": {**message, **content}},
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        )
        assert response.status_code == 200, response.text
    eventually(
        lambda: len([b for b in channel_apis.sent(providers, "/sendMessage") if b["chat_id"] == str(chat_id)]) >= 2,
        what="the bot's two Telegram replies",
    )
    # The largest photo size was fetched, then its file; the voice message went to the transcription.
    asked = [json.loads(r.body)["file_id"] for r in providers.requests if r.path.endswith("/getFile")]
    assert "large-1" in asked and "small-1" not in asked and "voice-1" in asked
    upload = module_openai.uploads[uploads]
    assert upload.data == channel_apis.OGG and upload.filename == "voice.oga"
    read = _bot_prompts(module_openai, "[Image: A blue parcel box on a doorstep.]")
    assert read and str(read[0]["messages"][-1]["content"]).startswith("look\n[image: photo.jpg] /api/channels/media/")
    assert _bot_prompts(module_openai, "[Voice message: Can I change my delivery address?]")
