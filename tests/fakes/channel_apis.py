"""Fake provider APIs for the channels' replies: ACS SMS and Advanced Messaging, the Graph messages and
media endpoints, Twilio's Messages API, Telegram's sendMessage and getFile and SendGrid's mail send, on one server."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.http_server import FakeServer, Recorded, Reply, json_reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # a tiny "image"
OGG = b"OggS" + b"\x00" * 32  # a tiny "voice message"


def handle(request: Recorded) -> Reply:
    """Answer as each provider documents its send call."""
    path = request.path.split("?", 1)[0]
    if path == "/sms":  # ACS SMS
        to = request.json()["smsRecipients"][0]["to"]
        return json_reply(
            202, {"value": [{"to": to, "messageId": "acs-out-1", "httpStatusCode": 202, "successful": True}]}
        )
    if path == "/messages/notifications:send":  # ACS Advanced Messaging
        return json_reply(202, {"receipts": [{"messageId": "acs-wa-out-1", "to": request.json()["to"][0]}]})
    if path.startswith("/messages/streams/") and request.method == "GET":  # ACS Advanced Messaging: media
        if path.endswith("/gone"):
            return json_reply(404, {"error": {"code": "NotFound", "message": "The media expired."}})
        return 200, {"content-type": "application/octet-stream"}, PNG
    if re.fullmatch(r"/[^/]+/messages", path):  # Graph: messages of a phone number id
        return json_reply(200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT"}]})
    if path.startswith("/media-") and request.method == "GET":  # Graph: a media id, then its URL
        return json_reply(200, {"url": f"http://{request.headers['Host']}/download{path}", "mime_type": "image/png"})
    if path.startswith("/download/"):
        return 200, {"content-type": "image/png"}, PNG
    if path.endswith("/Messages.json"):  # Twilio
        return json_reply(201, {"sid": "SM-out-1", "status": "queued"})
    if path.endswith("/getFile"):  # Telegram: a file id, then its path under /file/bot<token>/
        file_id = str(request.json()["file_id"])
        found = f"voice/{file_id}.oga" if file_id.startswith("voice") else f"photos/{file_id}.jpg"
        return json_reply(200, {"ok": True, "result": {"file_id": file_id, "file_path": found}})
    if path.startswith("/file/bot"):
        return 200, {"content-type": "application/octet-stream"}, OGG if path.endswith(".oga") else PNG
    if path.endswith("/sendMessage"):  # Telegram
        return json_reply(200, {"ok": True, "result": {"message_id": 7}})
    if path == "/v3/mail/send":  # SendGrid
        return 202, {}, b""
    return json_reply(404, {"error": "unknown"})


def start() -> FakeServer:
    """Start the fake on a free port."""
    return FakeServer(handle).start()


def sent(server: FakeServer, path_part: str) -> list[Any]:
    """The JSON bodies of the sends whose path contains ``path_part``."""
    return [json.loads(r.body) for r in server.requests if path_part in r.path and r.method == "POST" and r.body]
