"""Media from channels: stored as blobs, shown to agents as a signed link in the message text.

The link carries an HMAC of the blob's name made with the deployment's signing secret, so it can
be opened from the agent console (or a Teams tab) without a token, and can't be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from typing import TYPE_CHECKING

from shared.config import get_settings
from shared.ops.bootstrap import ensure_bootstrapped
from shared.storage.channels import MediaStore

if TYPE_CHECKING:
    from shared.channels.inbound import Attachment

MAX_MEDIA_BYTES = 16 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


async def _signature(name: str) -> str:
    record = await ensure_bootstrapped()
    return hmac.new(record.signing_secret.encode(), f"media:{name}".encode(), hashlib.sha256).hexdigest()[:40]


async def store(session_id: str, attachment: Attachment) -> str:
    """Store ``attachment`` under the session; the line agents see (kind, name, link)."""
    safe = _SAFE.sub("_", attachment.name)[-80:] or "file"
    name = f"{session_id}.{uuid.uuid4().hex[:12]}.{safe}"
    await MediaStore().put(name, attachment.data[:MAX_MEDIA_BYTES], attachment.content_type)
    kind = attachment.content_type.split("/", 1)[0] if "/" in attachment.content_type else "file"
    label = {"image": "image", "audio": "audio", "video": "video"}.get(kind, "attachment")
    return f"[{label}: {attachment.name or safe}] {await link(name)}"


async def link(name: str) -> str:
    """The signed URL of a stored blob (absolute when the public host is known)."""
    host = get_settings().public_host
    path = f"/api/channels/media/{name}?sig={await _signature(name)}"
    return f"https://{host}{path}" if host else path


async def open_signed(name: str, signature: str) -> tuple[bytes, str] | None:
    """The blob behind a signed link (None when the signature is wrong or the blob gone)."""
    if not hmac.compare_digest(signature.encode(), (await _signature(name)).encode()):
        return None
    return await MediaStore().get(name)
