"""Channels over real HTTP on Azurite: each provider's inbound route with payloads shaped as it documents
and signatures computed here, replies arriving at fake provider APIs, handoff and agents' replies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devhost.azurite import Azurite
from tests.conftest import Host
from tests.fakes import channel_apis
from tests.fakes.http_server import FakeServer
from tests.support import ADMIN_KEY, eventually, host_env, in_storage, settled, stored_messages, tables

APP_SECRET = "meta-app-secret-for-tests"
VERIFY_TOKEN = "verify-me-please"
PHONE_ID = "106540352242922"
TWILIO_SID = "AC00000000000000000000000000000001"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
TELEGRAM_TOKEN = "123456:telegram-bot-token"
TELEGRAM_SECRET = "telegram_secret-token_for-tests"
SUPPORT = "help@desk.example"
EMAIL_KEY = ec.generate_private_key(ec.SECP256R1())


def _public_key() -> str:
    der = EMAIL_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    """The providers' APIs."""
    server = channel_apis.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def host(module_azurite: Azurite, start_host: Callable[..., Host], fake: FakeServer) -> Host:
    """The product with every channel configured against the fakes."""
    access_key = base64.b64encode(b"acs-access-key").decode()
    return start_host(
        host_env(
            module_azurite,
            ACS_CONNECTION_STRING=f"endpoint={fake.url}/;accesskey={access_key}",
            ACS_PHONE_NUMBER="+18005550100",
            ACS_WHATSAPP_CHANNEL_ID="acs-wa-channel",
            META_APP_SECRET=APP_SECRET,
            META_VERIFY_TOKEN=VERIFY_TOKEN,
            META_ACCESS_TOKEN="meta-access-token",
            META_PHONE_NUMBER_ID=PHONE_ID,
            META_GRAPH_URL=fake.url,
            TWILIO_ACCOUNT_SID=TWILIO_SID,
            TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
            TWILIO_API_URL=fake.url,
            TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
            TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET,
            TELEGRAM_API_URL=fake.url,
            SENDGRID_API_KEY="SG.test-key",
            SENDGRID_INBOUND_PUBLIC_KEY=_public_key(),
            SUPPORT_EMAIL_FROM=f"Support Desk <{SUPPORT}>",
            SENDGRID_API_URL=fake.url,
        )
    )


@pytest.fixture()
def api(host: Host) -> Iterator[httpx.Client]:
    """A client for the channel host's /api."""
    with host.client() as client:
        yield client


def _phone() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


def _agent(api: httpx.Client, name: str) -> dict[str, str]:
    response = api.post("/dev/token", json={"name": name, "email": f"{name.split()[0].lower()}@contoso.example"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['accessToken']}"}


def _session_of(api: httpx.Client, agent: dict[str, str], address: str, status: str) -> dict[str, Any]:
    """The agent queue's entry of the contact's session in ``status``."""

    def find() -> Any:
        listed = api.get("/agent/sessions", params={"status": status, "limit": 200}, headers=agent).json()
        return next((s for s in listed["sessions"] if s.get("address") == address), None)

    return eventually(find, what=f"a {status} session of {address} in the agent queue")


def _take_over(api: httpx.Client, module_azurite: Azurite, address: str, channel: str) -> tuple[str, dict[str, str]]:
    """An agent claims the contact's waiting session; its transcript shows the channel and address."""
    agent = _agent(api, "Ada Agent")
    listed = _session_of(api, agent, address, "human_requested")
    assert listed["channel"] == channel
    session_id = str(listed["sessionId"])
    claimed = api.post(f"/agent/sessions/{session_id}/claim", headers=agent)
    assert claimed.status_code == 200, claimed.text
    transcript = api.get(f"/agent/sessions/{session_id}/messages", headers=agent).json()
    assert transcript["session"]["channel"] == channel and transcript["session"]["address"] == address
    return session_id, agent


def _stored_count(module_azurite: Azurite) -> int:
    return sum(1 for _ in tables(module_azurite).get_table_client("chats").list_entities(select=["PartitionKey"]))


# --- Azure Communication Services through Event Grid ------------------------------------------------


def _acs_url(api: httpx.Client) -> str:
    overview = api.get("/channels", params={"code": ADMIN_KEY})
    assert overview.status_code == 200, overview.text
    acs = next(c for c in overview.json()["channels"] if c["id"] == "acs")
    assert acs["connected"] and "?token=" in acs["webhookUrl"]
    return "/channels/acs?token=" + acs["webhookUrl"].split("?token=", 1)[1]


def _sms_event(sender: str, text: str, message_id: str) -> dict[str, Any]:
    """An ``SMSReceived`` event in the Event Grid schema, as ACS documents it."""
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Communication/communicationServices/acs1",
        "subject": f"/phonenumber/{sender}",
        "eventType": "Microsoft.Communication.SMSReceived",
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": datetime.now(UTC).isoformat(),
        "data": {
            "MessageId": message_id,
            "From": sender,
            "To": "+18005550100",
            "Message": text,
            "ReceivedTimestamp": datetime.now(UTC).isoformat(),
        },
    }


def test_event_grid_handshakes_and_refusals(api: httpx.Client, module_azurite: Azurite) -> None:
    url = _acs_url(api)
    validation = [
        {
            "id": str(uuid.uuid4()),
            "topic": "t",
            "subject": "",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x.example/v"},
            "dataVersion": "2",
            "eventTime": datetime.now(UTC).isoformat(),
        }
    ]
    answer = api.post(url, json=validation, headers={"aeg-event-type": "SubscriptionValidation"})
    assert answer.status_code == 200 and answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    options = api.options(url, headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert options.status_code == 200 and options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    before = _stored_count(module_azurite)
    event = _sms_event(_phone(), "hello", str(uuid.uuid4()))
    for bad in ("/channels/acs", "/channels/acs?token=wrong"):
        assert api.post(bad, json=[event]).status_code == 401
        assert api.options(bad, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}).status_code == 401
    assert _stored_count(module_azurite) == before  # nothing stored


def test_acs_sms_full_conversation(api: httpx.Client, module_azurite: Azurite, fake: FakeServer) -> None:
    url, sender = _acs_url(api), _phone()
    first = _sms_event(sender, "How long does shipping take?", str(uuid.uuid4()))
    assert api.post(url, json=[first]).status_code == 200

    def sms_to_sender() -> list[dict[str, Any]]:
        return [b for b in channel_apis.sent(fake, "/sms") if b["smsRecipients"][0]["to"] == sender]

    reply = eventually(sms_to_sender, what="the bot's SMS")
    assert "3 to 5 business days" in str(reply[0]["message"]) and reply[0]["from"] == "+18005550100"
    # Event Grid retries: the same message again is stored once and answered once.
    assert api.post(url, json=[first]).status_code == 200
    handoff = _sms_event(sender, "talk to a human please", str(uuid.uuid4()))
    assert api.post(url, json=[handoff]).status_code == 200
    session_id, agent = _take_over(api, module_azurite, sender, "sms")
    said = api.post(f"/agent/sessions/{session_id}/message", json={"content": "Hi, Ada here."}, headers=agent)
    assert said.status_code == 200, said.text
    eventually(lambda: any(b["message"] == "Hi, Ada here." for b in sms_to_sender()), what="the agent's SMS")
    settled(module_azurite, session_id)
    visitor_texts = [m["text"] for m in stored_messages(module_azurite, session_id) if m["sender"] == "visitor"]
    assert visitor_texts == ["How long does shipping take?", "talk to a human please"]
    assert sum("3 to 5 business days" in str(b["message"]) for b in sms_to_sender()) == 1


def test_acs_whatsapp_advanced_message_cloud_event(
    api: httpx.Client, fake: FakeServer, module_azurite: Azurite
) -> None:
    url, sender = _acs_url(api), _phone().lstrip("+")
    event = {  # the CloudEvents schema, one event
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/acs",
        "type": "Microsoft.Communication.AdvancedMessageReceived",
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "content": "What is your return policy?",
            "channelType": "whatsapp",
            "from": sender,
            "to": "acs-wa-channel",
            "receivedTimestamp": datetime.now(UTC).isoformat(),
            "messageId": str(uuid.uuid4()),
        },
    }
    answer = api.post(url, content=json.dumps(event), headers={"content-type": "application/cloudevents+json"})
    assert answer.status_code == 200, answer.text
    sent = eventually(
        lambda: [b for b in channel_apis.sent(fake, "notifications:send") if b["to"] == [sender]],
        what="the bot's WhatsApp message through ACS",
    )
    assert "30 days" in str(sent[0]["content"]) and sent[0]["channelRegistrationId"] == "acs-wa-channel"

    # A photo, then media that expired before it could be fetched: the first is kept, the second named.
    def media_event(stream: str, caption: str) -> dict[str, Any]:
        data = {**event["data"], "messageId": str(uuid.uuid4()), "messageType": "image", "content": None,
                "media": {"mimeType": "image/png", "id": stream, "caption": caption}}  # fmt: skip
        return {**event, "id": str(uuid.uuid4()), "data": data}

    for stream, caption in (("acs-photo-1", "the box"), ("gone", "")):
        posted = api.post(
            url,
            content=json.dumps(media_event(stream, caption)),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert posted.status_code == 200, posted.text
    fetched = [r for r in fake.requests if r.path.startswith("/messages/streams/acs-photo-1")]
    assert fetched and fetched[0].method == "GET" and "api-version=" in fetched[0].path
    session_id = str(_session_of(api, _agent(api, "Ada Agent"), sender, "open")["sessionId"])
    settled(module_azurite, session_id)
    texts = [m["text"] for m in stored_messages(module_azurite, session_id) if m["sender"] == "visitor"]
    assert texts[1].startswith("the box\n[image: image-acs-photo-1] /api/channels/media/"), texts[1]
    link = texts[1].split("] ", 1)[1].split("\n")[0]
    stored = api.get(link.removeprefix("/api"))
    assert stored.status_code == 200 and stored.content == channel_apis.PNG
    assert stored.headers["content-type"] == "image/png"
    assert texts[2] == "[image/png received; it could not be downloaded]"


# --- Meta WhatsApp Cloud API -------------------------------------------------------------------------


def _meta_payload(sender: str, message: dict[str, Any]) -> bytes:
    """A messages notification as the Cloud API documents it."""
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA_ID",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_ID},
                            "contacts": [{"profile": {"name": "Kerry"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": f"wamid.{uuid.uuid4().hex}",
                                    "timestamp": str(int(time.time())),
                                    **message,
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body).encode()


def _meta_signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "content-type": "application/json"}


def test_meta_verification_and_signature_refusals(api: httpx.Client, module_azurite: Azurite) -> None:
    ok = api.get(
        "/channels/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = api.get(
        "/channels/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    )
    assert wrong.status_code == 403
    before = _stored_count(module_azurite)
    body = _meta_payload(_phone().lstrip("+"), {"type": "text", "text": {"body": "hello"}})
    assert api.post("/channels/whatsapp", content=body, headers={"content-type": "application/json"}).status_code == 401
    assert api.post("/channels/whatsapp", content=body, headers=_meta_signed(body, "other-secret")).status_code == 401
    tampered = body.replace(b"hello", b"hellO")
    assert api.post("/channels/whatsapp", content=tampered, headers=_meta_signed(body)).status_code == 401
    assert _stored_count(module_azurite) == before


def test_meta_whatsapp_full_conversation_window_and_media(
    api: httpx.Client, module_azurite: Azurite, fake: FakeServer
) -> None:
    sender = _phone().lstrip("+")
    first = _meta_payload(sender, {"type": "text", "text": {"body": "How long does shipping take?"}})
    assert api.post("/channels/whatsapp", content=first, headers=_meta_signed(first)).status_code == 200

    def to_sender() -> list[dict[str, Any]]:
        return [b for b in channel_apis.sent(fake, f"/{PHONE_ID}/messages") if b["to"] == sender]

    reply = eventually(to_sender, what="the bot's WhatsApp reply")
    assert reply[0]["messaging_product"] == "whatsapp" and "3 to 5 business days" in reply[0]["text"]["body"]
    assert api.post("/channels/whatsapp", content=first, headers=_meta_signed(first)).status_code == 200  # a retry
    image = _meta_payload(
        sender, {"type": "image", "image": {"id": "media-42", "mime_type": "image/png", "caption": "my parcel"}}
    )
    assert api.post("/channels/whatsapp", content=image, headers=_meta_signed(image)).status_code == 200
    ask = _meta_payload(sender, {"type": "text", "text": {"body": "talk to a human please"}})
    assert api.post("/channels/whatsapp", content=ask, headers=_meta_signed(ask)).status_code == 200
    session_id, agent = _take_over(api, module_azurite, sender, "whatsapp")
    said = api.post(f"/agent/sessions/{session_id}/message", json={"content": "Ada here, checking."}, headers=agent)
    assert said.status_code == 200, said.text
    eventually(lambda: any(b["text"]["body"] == "Ada here, checking." for b in to_sender()), what="the agent's reply")
    settled(module_azurite, session_id)
    texts = [m["text"] for m in stored_messages(module_azurite, session_id) if m["sender"] == "visitor"]
    assert texts[0] == "How long does shipping take?" and texts.count("How long does shipping take?") == 1
    assert texts[1].startswith("my parcel\n[image: image-media-42] /api/channels/media/")
    link, said = texts[1].split("] ", 1)[1].split("\n")  # the link, then what the bot read of the image
    assert said == "[Image received; no description is available]"  # the offline bot
    media = api.get(link.removeprefix("/api"))
    assert (
        media.status_code == 200 and media.content == channel_apis.PNG and media.headers["content-type"] == "image/png"
    )
    assert api.get(link.removeprefix("/api").split("?")[0] + "?sig=forged").status_code == 404
    # Past 24 hours since the contact's last message, free text is refused and the agent is told why.
    stale = (datetime.now(UTC) - timedelta(hours=25)).isoformat().replace("+00:00", "Z")
    tables(module_azurite).get_table_client("channels").update_entity(
        {"PartitionKey": "link", "RowKey": session_id, "lastInboundAt": stale}
    )
    late = api.post(f"/agent/sessions/{session_id}/message", json={"content": "Still there?"}, headers=agent)
    assert late.status_code == 409 and late.json()["type"].endswith("/template-required")


# --- Email (SendGrid Inbound Parse) ----------------------------------------------------------------


def _email(
    api: httpx.Client,
    fields: dict[str, str],
    files: dict[str, tuple[str, bytes, str]] | None = None,
    *,
    key: ec.EllipticCurvePrivateKey = EMAIL_KEY,
) -> httpx.Response:
    """Post a parsed email as Inbound Parse does, signed with ``key``."""
    request = httpx.Request("POST", "http://x/", data=fields, files=files or {"placeholder": ("", b"", "text/plain")})
    body = request.read()
    timestamp = str(int(time.time()))
    signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {
        "content-type": request.headers["content-type"],
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    return api.post("/channels/email", content=body, headers=headers)


def _headers(message_id: str, sender: str, subject: str, **extra: str) -> str:
    lines = [f"Message-ID: {message_id}", f"From: Kim <{sender}>", f"To: {SUPPORT}", f"Subject: {subject}"]
    return "\n".join(lines + [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]) + "\n"


def test_email_full_conversation_threading_and_attachments(
    api: httpx.Client, module_azurite: Azurite, fake: FakeServer
) -> None:
    sender = f"kim.{uuid.uuid4().hex[:8]}@customer.example"
    first_id = f"<{uuid.uuid4().hex}@customer.example>"
    first = _email(
        api,
        {
            "headers": _headers(first_id, sender, "Shipping"),
            "from": f"Kim <{sender}>",
            "to": SUPPORT,
            "subject": "Shipping",
            "text": "How long does shipping take?\n\n-- \nKim\nACME Ltd",
        },
    )
    assert first.status_code == 200, first.text

    def mails() -> list[dict[str, Any]]:
        return [
            b for b in channel_apis.sent(fake, "/v3/mail/send") if b["personalizations"][0]["to"][0]["email"] == sender
        ]

    reply = eventually(mails, what="the bot's email")[0]
    assert "3 to 5 business days" in reply["content"][0]["value"] and reply["subject"] == "Re: Shipping"
    assert reply["from"]["email"] == SUPPORT and reply["headers"]["In-Reply-To"] == first_id
    ours = reply["headers"]["Message-ID"]
    # The contact answers our email: quoted text and the signature are cut, the thread continues.
    answer = _email(
        api,
        {
            "headers": _headers(
                f"<{uuid.uuid4().hex}@customer.example>",
                sender,
                "Re: Shipping",
                In_Reply_To=ours,
                References=f"{first_id} {ours}",
            ),
            "from": sender,
            "to": SUPPORT,
            "subject": "Re: Shipping",
            "text": "talk to a human please\n\n"
            f"On Mon, 30 Nov 2026 at 10:00, Support Desk <{SUPPORT}> wrote:\n> Standard shipping takes",
        },
        {"attachment1": ("receipt.png", channel_apis.PNG, "image/png")},
    )
    assert answer.status_code == 200, answer.text
    session_id, agent = _take_over(api, module_azurite, sender, "email")
    said = api.post(f"/agent/sessions/{session_id}/message", json={"content": "Ada from support here."}, headers=agent)
    assert said.status_code == 200, said.text
    agent_mail = eventually(
        lambda: [m for m in mails() if m["content"][0]["value"] == "Ada from support here."],
        what="the agent's email",
    )[0]
    assert first_id in agent_mail["headers"]["References"] and agent_mail["headers"]["In-Reply-To"]
    settled(module_azurite, session_id)
    texts = [m["text"] for m in stored_messages(module_azurite, session_id) if m["sender"] == "visitor"]
    assert texts[0] == "How long does shipping take?"  # the signature cut off
    assert texts[1].startswith("talk to a human please\n[image: receipt.png] /api/channels/media/")  # no quote
    assert api.get(texts[1].split("] ", 1)[1].split("\n")[0].removeprefix("/api")).content == channel_apis.PNG
    # A duplicate delivery of the first email is stored once.
    again = _email(
        api,
        {
            "headers": _headers(first_id, sender, "Shipping"),
            "from": sender,
            "to": SUPPORT,
            "subject": "Shipping",
            "text": "How long does shipping take?",
        },
    )
    assert again.status_code == 200
    settled(module_azurite, session_id)
    assert len([m for m in stored_messages(module_azurite, session_id) if m["sender"] == "visitor"]) == 2


def test_email_signature_refusals(api: httpx.Client, module_azurite: Azurite) -> None:
    before = _stored_count(module_azurite)
    fields = {
        "headers": _headers("<x@y>", "eve@evil.example", "Hi"),
        "from": "eve@evil.example",
        "to": SUPPORT,
        "subject": "Hi",
        "text": "hello",
    }
    assert _email(api, fields, key=ec.generate_private_key(ec.SECP256R1())).status_code == 401
    unsigned = httpx.Request("POST", "http://x/", data=fields, files={"a": ("", b"", "text/plain")})
    body = unsigned.read()
    assert (
        api.post(
            "/channels/email", content=body, headers={"content-type": unsigned.headers["content-type"]}
        ).status_code
        == 401
    )
    assert _stored_count(module_azurite) == before


# --- Twilio and Telegram ----------------------------------------------------------------------------


def _twilio_signature(url: str, params: dict[str, str]) -> str:
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    return base64.b64encode(hmac.new(TWILIO_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_twilio_sms_in_and_reply_out(api: httpx.Client, host: Host, fake: FakeServer, module_azurite: Azurite) -> None:
    sender = _phone()
    params = {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": TWILIO_SID,
        "From": sender,
        "To": "+18005550199",
        "Body": "What is your return policy?",
        "NumMedia": "0",
    }
    url = host.base_url + "/channels/twilio"
    before = _stored_count(module_azurite)
    assert api.post("/channels/twilio", data=params, headers={"X-Twilio-Signature": "bm9wZQ=="}).status_code == 401
    assert api.post("/channels/twilio", data=params).status_code == 401
    assert _stored_count(module_azurite) == before
    signed = api.post("/channels/twilio", data=params, headers={"X-Twilio-Signature": _twilio_signature(url, params)})
    assert signed.status_code == 200, signed.text
    replies = eventually(
        lambda: [
            r
            for r in fake.requests
            if r.path.endswith("/Messages.json") and sender.encode("utf-8") in r.body.replace(b"%2B", b"+")
        ],
        what="the bot's SMS through Twilio",
    )
    assert f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json" == replies[0].path
    assert (
        replies[0].headers["Authorization"]
        == "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    )


def test_a_new_contacts_first_messages_racing_open_one_session(api: httpx.Client, module_azurite: Azurite) -> None:
    """Two first messages of a contact nobody knows yet, taken in at the same moment, share one session
    (taken in by this process against the host's Azurite; the host's outbox answers them)."""
    del api  # the host: it set up the deployment's tables
    from shared.channels.inbound import Inbound, receive
    from shared.ops.bootstrap import ensure_bootstrapped

    chat_id = str(uuid.uuid4().int)[:9]

    async def race() -> list[str]:
        await ensure_bootstrapped()  # the deployment's tables, as any request to the host makes them
        first = Inbound("telegram", "telegram", chat_id, f"{chat_id}-1", "Hi, is anyone there?")
        second = Inbound("telegram", "telegram", chat_id, f"{chat_id}-2", "My order never arrived")
        return list(await asyncio.gather(receive(first), receive(second)))

    sessions = in_storage(module_azurite, race)
    assert sessions[0] == sessions[1], "two sessions for one contact"
    settled(module_azurite, sessions[0])
    texts = {m["text"] for m in stored_messages(module_azurite, sessions[0]) if m["sender"] == "visitor"}
    assert texts == {"Hi, is anyone there?", "My order never arrived"}


def test_telegram_in_and_reply_out(api: httpx.Client, fake: FakeServer, module_azurite: Azurite) -> None:
    chat_id = int(str(uuid.uuid4().int)[:9])
    update = {
        "update_id": chat_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "text": "What is your return policy?",
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "T"},
        },
    }
    before = _stored_count(module_azurite)
    assert api.post("/channels/telegram", json=update).status_code == 401
    assert (
        api.post("/channels/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}).status_code
        == 401
    )
    assert _stored_count(module_azurite) == before
    ok = api.post("/channels/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert ok.status_code == 200, ok.text
    sent = eventually(
        lambda: [
            b for b in channel_apis.sent(fake, f"/bot{TELEGRAM_TOKEN}/sendMessage") if b["chat_id"] == str(chat_id)
        ],
        what="the bot's Telegram reply",
    )
    assert "30 days" in str(sent[0]["text"])


def test_unconfigured_channels_answer_404(module_azurite: Azurite, start_host: Callable[..., Host]) -> None:
    bare = start_host(host_env(module_azurite))
    with bare.client() as client:
        for method, path in [
            ("POST", "/channels/acs"),
            ("OPTIONS", "/channels/acs"),
            ("GET", "/channels/whatsapp"),
            ("POST", "/channels/whatsapp"),
            ("POST", "/channels/twilio"),
            ("POST", "/channels/telegram"),
            ("POST", "/channels/email"),
        ]:
            response = client.request(method, path)
            assert response.status_code == 404, (method, path)
            assert response.json()["detail"] == client.get("/no/such/route").json()["detail"]
        overview = client.get("/channels", params={"code": ADMIN_KEY}).json()["channels"]
        assert [c["connected"] for c in overview] == [False] * 5
        assert client.get("/channels").status_code == 401
