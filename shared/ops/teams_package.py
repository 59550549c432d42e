"""The per-deployment Teams app package (manifest + icons, zipped).

Manifest rules: https://learn.microsoft.com/microsoftteams/platform/resources/schema/manifest-schema;
``tests/node/validate_teams_package.mjs`` checks the package with Microsoft's own schema validator.
Icons are drawn here in pure Python (zlib + struct) so the product needs no imaging library.

Teams only takes an updated package when its ``version`` is higher, so ``deployment_package`` derives
it from the app version and a counter kept in the ``meta`` table that goes up whenever the package's
content changes (``<major>.<minor>.<counter>``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import struct
import uuid
import zipfile
import zlib
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

MANIFEST_VERSION = "1.17"
MANIFEST_SCHEMA = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
# The Teams clients that ask Entra for the tab's SSO token; both must be pre-authorized.
TEAMS_CLIENT_IDS = {
    "1fec8e78-bce4-4aaf-ab1b-5451cc387264": "Teams desktop and mobile",
    "5e3ce6c0-2b1f-4285-8d4b-75ee78787346": "Teams web",
}
DEFAULT_ACCENT = "#4F52B2"
# This app's own privacy statement and terms of use (blueprints/public.py); PRIVACY_URL / TERMS_URL replace them.
PRIVACY_PATH, TERMS_PATH = "/api/privacy", "/api/terms"
# The meta-table state record holding the package's content hash and version counter.
PACKAGE_STATE = "teams-package"
COLOR_SIZE, OUTLINE_SIZE = 192, 32

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_HOST = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_PORT = re.compile(r"^[1-9][0-9]{0,4}$")
# Semantic versioning's MAJOR.MINOR.PATCH, numbers without leading zeros (what Teams compares).
_VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_APP_VERSION = re.compile(r"^v?([0-9]+)\.([0-9]+)(?=$|[.+-])")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# A fixed timestamp keeps the zip byte-identical for identical inputs.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

RGBA = tuple[int, int, int, int]


def _check_host(host: str) -> tuple[str, str]:
    """``(host name, authority)``: ``desk.example.com`` or ``localhost:7071`` -> the name, and it with the port."""
    authority = host.strip().lower()
    name, colon, port = authority.partition(":")
    if not _HOST.match(name) or (colon and not (_PORT.match(port) and int(port) <= 65535)):
        raise ValueError(f"host must be a host name like desk.example.com, with an optional :port, not {host!r}.")
    return name, authority


def _check_url(value: str, name: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname or len(value.strip()) > 2048:
        raise ValueError(f"{name} must be an https:// address, not {value!r}.")
    return value.strip()


def _check_guid(value: str, name: str) -> str:
    if not _GUID.match(value.strip()):
        raise ValueError(f"{name} must be a GUID.")
    return value.strip().lower()


def _limit(value: str, name: str, most: int) -> str:
    if not value or len(value) > most:
        raise ValueError(f"{name} must be 1 to {most} characters.")
    return value


def build_manifest(
    host: str,
    client_id: str,
    app_id: str,
    *,
    name: str = "Support Desk",
    full_name: str = "Support Desk agent console",
    developer_name: str = "Support Desk",
    website_url: str = "",
    privacy_url: str = "",
    terms_url: str = "",
    version: str = "1.0.0",
    accent_color: str = DEFAULT_ACCENT,
) -> dict[str, Any]:
    """The manifest dict (pure); ``ValueError`` on a bad host, GUID, URL, version, colour or length.

    ``host`` may carry a port (``localhost:7071``): the URLs keep it, ``validDomains`` takes the bare
    name (it allows no scheme or port). The privacy and terms URLs default to this app's own pages.
    """
    domain, authority = _check_host(host)
    client_id = _check_guid(client_id, "client_id")
    app_id = _check_guid(app_id, "app_id")
    if not _COLOR.match(accent_color):
        raise ValueError("accent_color must look like #RRGGBB.")
    if not _VERSION.match(version):
        raise ValueError(f"version must be MAJOR.MINOR.PATCH (numbers without leading zeros), not {version!r}.")
    base = f"https://{authority}"
    console = f"{base}/api/agent"
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {
            "name": _limit(developer_name, "developer_name", 32),
            "websiteUrl": _check_url(website_url or f"{base}/", "website_url"),
            "privacyUrl": _check_url(privacy_url or f"{base}{PRIVACY_PATH}", "privacy_url"),
            "termsOfUseUrl": _check_url(terms_url or f"{base}{TERMS_PATH}", "terms_url"),
        },
        "name": {"short": _limit(name, "name", 30), "full": _limit(full_name, "full_name", 100)},
        "description": {
            "short": "Answer your website's visitors from Teams.",
            "full": (
                "The agent console of your AI support desk. See the queue of visitors who asked for a "
                "human, claim a conversation, chat with the visitor in real time and close it when done."
            ),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": accent_color.upper(),
        "staticTabs": [
            {
                "entityId": "queue",
                "name": "Queue",
                "contentUrl": console,
                "websiteUrl": console,
                "scopes": ["personal"],
            }
        ],
        "permissions": ["identity"],
        "validDomains": [domain],
        "webApplicationInfo": {"id": client_id, "resource": f"api://{authority}/{client_id}"},
    }


def encode_png(width: int, height: int, pixel: Callable[[int, int], RGBA]) -> bytes:
    """An 8-bit RGBA PNG whose pixel (x, y) is ``pixel(x, y)``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type None for every scanline
        for x in range(width):
            rows.extend(pixel(x, y))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def _in_bubble(u: float, v: float) -> bool:
    """A speech bubble in the unit square: a rounded rectangle with a tail at the bottom left."""
    left, top, right, bottom, radius = 0.0, 0.06, 1.0, 0.74, 0.2
    if left <= u <= right and top <= v <= bottom:
        cx = min(max(u, left + radius), right - radius)
        cy = min(max(v, top + radius), bottom - radius)
        if (u - cx) ** 2 + (v - cy) ** 2 <= radius**2:
            return True
    # Tail: a triangle from the bubble's bottom edge down to (0.2, 0.96).
    if bottom <= v <= 0.96:
        t = (v - bottom) / (0.96 - bottom)
        return 0.2 <= u <= 0.2 + (0.5 - 0.2) * (1 - t)
    return False


def _in_dot(u: float, v: float) -> bool:
    """Three 'typing' dots inside the bubble."""
    return any((u - cx) ** 2 + (v - 0.4) ** 2 <= 0.085**2 for cx in (0.27, 0.5, 0.73))


def _glyph(u: float, v: float) -> bool:
    return _in_bubble(u, v) and not _in_dot(u, v)


@functools.lru_cache(maxsize=8)
def color_icon(accent_color: str = DEFAULT_ACCENT) -> bytes:
    """192x192: a flat square of the accent colour with a white glyph in the central 96x96."""
    r, g, b = (int(accent_color[i : i + 2], 16) for i in (1, 3, 5))
    samples = ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))
    pad, box = 48, 96

    def pixel(x: int, y: int) -> RGBA:
        # 2x2 supersampling softens the glyph's edges.
        cover = sum(_glyph((x + dx - pad) / box, (y + dy - pad) / box) for dx, dy in samples) / 4
        return (
            round(r + (255 - r) * cover),
            round(g + (255 - g) * cover),
            round(b + (255 - b) * cover),
            255,
        )

    return encode_png(COLOR_SIZE, COLOR_SIZE, pixel)


@functools.cache
def outline_icon() -> bytes:
    """32x32: the white glyph on a fully transparent background, no padding."""

    def pixel(x: int, y: int) -> RGBA:
        return (255, 255, 255, 255) if _glyph((x + 0.5) / OUTLINE_SIZE, (y + 0.5) / OUTLINE_SIZE) else (0, 0, 0, 0)

    return encode_png(OUTLINE_SIZE, OUTLINE_SIZE, pixel)


def build_teams_package(host: str, client_id: str, app_id: str, **manifest_options: Any) -> bytes:
    """The Teams app ``.zip``: manifest.json, color.png and outline.png at the root."""
    manifest = build_manifest(host, client_id, app_id, **manifest_options)
    files = {
        "manifest.json": json.dumps(manifest, indent=2).encode("utf-8"),
        "color.png": color_icon(manifest["accentColor"]),
        "outline.png": outline_icon(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def public_host(configured: str, request_host: str) -> str:
    """This deployment's host: the configured one, else the request's ``Host``, with any port but :443.

    A local host answers on a port (``localhost:7071``) and the tab's URLs must keep it; the
    ``https`` default port adds nothing.
    """
    host = (configured or request_host or "").strip().lower()
    if host.startswith("["):  # an IPv6 literal can't be a Teams valid domain; let the check refuse it
        return host
    return host.removesuffix(":443")


def deployment_app_id(deployment_id: str) -> str:
    """A Teams app id that stays the same for a deployment, so re-uploads update the same app."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"supportdesk:teams-app:{deployment_id}"))


def package_version(app_version: str, counter: int) -> str:
    """``<major>.<minor>.<counter>`` from the app's version (``0.2.0``, ``v1.4``, ``1.2.3-rc1``)."""
    found = _APP_VERSION.match(app_version.strip())
    if not found:
        raise ValueError(f"the app version must start with MAJOR.MINOR, not {app_version!r}.")
    if counter < 0:
        raise ValueError("the package counter can't be negative.")
    return f"{int(found[1])}.{int(found[2])}.{counter}"


def content_hash(host: str, client_id: str, app_id: str, **manifest_options: Any) -> str:
    """A hash of everything in the package but its version: it changes exactly when Teams must update."""
    unversioned = build_teams_package(host, client_id, app_id, **manifest_options, version="0.0.0")
    return hashlib.sha256(unversioned).hexdigest()


class StateStore(Protocol):
    """Named small records (``shared.storage.state.StateRepository``)."""

    async def get(self, name: str) -> dict[str, Any]: ...

    async def merge(self, name: str, fields: dict[str, Any]) -> None: ...


async def deployment_package(
    host: str,
    client_id: str,
    app_id: str,
    *,
    app_version: str,
    state: StateStore | None = None,
    **manifest_options: Any,
) -> bytes:
    """The package with a version Teams accepts as an update whenever the content changed.

    The ``meta`` table keeps the last package's content hash and a counter; a different hash bumps
    the counter, so the version only ever goes up for a given app version. Identical downloads
    keep their version (and bytes). ``ValueError`` on a bad input, before anything is stored.
    """
    digest = content_hash(host, client_id, app_id, **manifest_options)
    package_version(app_version, 0)  # a bad APP_VERSION is refused before the counter moves
    if state is None:
        from shared.storage.state import StateRepository

        state = StateRepository()
    stored = await state.get(PACKAGE_STATE)
    raw_counter = stored.get("counter", 0)
    counter = int(getattr(raw_counter, "value", raw_counter) or 0)  # an Int64 comes back wrapped
    if stored.get("contentHash") != digest:
        counter += 1
        await state.merge(PACKAGE_STATE, {"contentHash": digest, "counter": counter})
    version = package_version(app_version, counter)
    return build_teams_package(host, client_id, app_id, **manifest_options, version=version)
