"""The Teams app package: zip layout, manifest fields and limits, icon sizes and colours, the version
counter, hosts with a port; the setup page. (tests/integration/test_teams_package_validator.py runs
Microsoft's own validator on the package the endpoint serves.)"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from typing import Any

import pytest

from shared.ops.teams_package import (
    PACKAGE_STATE,
    TEAMS_CLIENT_IDS,
    build_manifest,
    build_teams_package,
    content_hash,
    deployment_package,
    package_version,
    public_host,
)
from shared.ops.teams_setup_page import render_teams_setup_page

HOST = "desk.example.com"
CLIENT_ID = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
APP_ID = "11111111-2222-4333-8444-555555555555"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(data: bytes) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """Width, height and RGBA rows of an 8-bit RGBA, non-interlaced PNG (checks every chunk CRC)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color_type, compression, filtering, interlace) == (8, 6, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride, rows, previous = width * 4, [], bytearray(width * 4)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - 4] if i >= 4 else 0
            up, up_left = previous[i], previous[i - 4] if i >= 4 else 0
            line[i] = (line[i] + (0, left, up, (left + up) // 2, _paeth(left, up, up_left))[kind]) & 0xFF
        rows.append([tuple(line[x * 4 : x * 4 + 4]) for x in range(width)])
        previous = line
    return width, height, rows


@pytest.fixture(scope="module")
def package() -> zipfile.ZipFile:
    """The package for a sample deployment, opened."""
    return zipfile.ZipFile(io.BytesIO(build_teams_package(HOST, CLIENT_ID, APP_ID)))


@pytest.fixture(scope="module")
def manifest(package: zipfile.ZipFile) -> dict[str, Any]:
    """Its manifest.json."""
    return json.loads(package.read("manifest.json"))


def test_zip_has_the_three_files_at_the_root(package: zipfile.ZipFile) -> None:
    assert package.testzip() is None
    assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]


def test_manifest_required_fields(manifest: dict[str, Any]) -> None:
    assert manifest["$schema"] == "https://developer.microsoft.com/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
    assert manifest["manifestVersion"] == "1.17"
    assert re.match(r"^\d+\.\d+\.\d+$", manifest["version"])
    assert manifest["id"] == APP_ID and GUID.match(manifest["id"])
    developer = manifest["developer"]
    assert isinstance(developer["name"], str) and 0 < len(developer["name"]) <= 32
    for field in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert developer[field].startswith("https://")
    assert 0 < len(manifest["name"]["short"]) <= 30 and len(manifest["name"]["full"]) <= 100
    assert 0 < len(manifest["description"]["short"]) <= 80
    assert 0 < len(manifest["description"]["full"]) <= 4000
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert re.match(r"^#[0-9A-F]{6}$", manifest["accentColor"])
    assert manifest["permissions"] == ["identity"]
    assert manifest["validDomains"] == [HOST]


def test_manifest_has_no_package_name(manifest: dict[str, Any]) -> None:
    # The v1.17 schema allows no additional properties; packageName was dropped from it.
    assert "packageName" not in manifest


def test_privacy_and_terms_are_this_apps_pages_unless_set(manifest: dict[str, Any]) -> None:
    assert manifest["developer"]["privacyUrl"] == f"https://{HOST}/api/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == f"https://{HOST}/api/terms"
    own = build_manifest(
        HOST, CLIENT_ID, APP_ID, privacy_url="https://contoso.example/privacy", terms_url="https://contoso.example/tos"
    )
    assert own["developer"]["privacyUrl"] == "https://contoso.example/privacy"
    assert own["developer"]["termsOfUseUrl"] == "https://contoso.example/tos"


def test_manifest_tab_and_sso(manifest: dict[str, Any]) -> None:
    assert manifest["staticTabs"] == [
        {
            "entityId": "queue",
            "name": "Queue",
            "contentUrl": f"https://{HOST}/api/agent",
            "websiteUrl": f"https://{HOST}/api/agent",
            "scopes": ["personal"],
        }
    ]
    assert len(manifest["staticTabs"][0]["entityId"]) <= 64
    assert manifest["webApplicationInfo"] == {"id": CLIENT_ID, "resource": f"api://{HOST}/{CLIENT_ID}"}
    assert len(manifest["webApplicationInfo"]["id"]) <= 36


def test_color_icon_is_192_square_opaque_with_a_white_glyph(package: zipfile.ZipFile) -> None:
    width, height, rows = read_png(package.read("color.png"))
    assert (width, height) == (192, 192)
    pixels = {pixel for row in rows for pixel in row}
    assert all(pixel[3] == 255 for pixel in pixels)
    assert (255, 255, 255, 255) in pixels and (0x4F, 0x52, 0xB2, 255) in pixels
    # The glyph stays inside the central 96x96; the 48 px padding is plain background.
    assert all(rows[y][x] == (0x4F, 0x52, 0xB2, 255) for y in range(192) for x in range(192) if y < 48 or x < 48)


def test_outline_icon_is_32_square_white_on_transparent(package: zipfile.ZipFile) -> None:
    width, height, rows = read_png(package.read("outline.png"))
    assert (width, height) == (32, 32)
    pixels = [pixel for row in rows for pixel in row]
    assert all(pixel[3] == 0 or pixel[:3] == (255, 255, 255) for pixel in pixels)
    assert all(pixel == (0, 0, 0, 0) for pixel in pixels if pixel[3] == 0)
    assert rows[0][0][3] == 0, "the background must be fully transparent"
    opaque = sum(1 for pixel in pixels if pixel[3])
    assert 200 < opaque < 32 * 32, "a glyph, not an empty or full square"


def test_package_is_deterministic_and_options_apply() -> None:
    assert build_teams_package(HOST, CLIENT_ID, APP_ID) == build_teams_package(HOST, CLIENT_ID, APP_ID)
    manifest = build_manifest(HOST.upper(), CLIENT_ID.upper(), APP_ID, name="Help", accent_color="#00aa00")
    assert manifest["validDomains"] == [HOST] and manifest["webApplicationInfo"]["id"] == CLIENT_ID
    assert (manifest["name"]["short"], manifest["accentColor"]) == ("Help", "#00AA00")


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("https://desk.example.com", CLIENT_ID, APP_ID), {}, "host"),
        (("desk.example.com/x", CLIENT_ID, APP_ID), {}, "host"),
        ((HOST, "not-a-guid", APP_ID), {}, "client_id"),
        ((HOST, CLIENT_ID, ""), {}, "app_id"),
        ((HOST, CLIENT_ID, APP_ID), {"name": "x" * 31}, "name"),
        ((HOST, CLIENT_ID, APP_ID), {"accent_color": "red"}, "accent_color"),
        ((HOST, CLIENT_ID, APP_ID), {"version": "1.0"}, "version"),
        ((HOST, CLIENT_ID, APP_ID), {"version": "1.02.3"}, "version"),
        (("localhost:0", CLIENT_ID, APP_ID), {}, "host"),
        (("localhost:65536", CLIENT_ID, APP_ID), {}, "host"),
        (("localhost:", CLIENT_ID, APP_ID), {}, "host"),
        (("[::1]:7071", CLIENT_ID, APP_ID), {}, "host"),
        ((HOST, CLIENT_ID, APP_ID), {"privacy_url": "http://contoso.example/privacy"}, "privacy_url"),
        ((HOST, CLIENT_ID, APP_ID), {"terms_url": "contoso.example/terms"}, "terms_url"),
    ],
)
def test_bad_inputs_are_refused(args: tuple[str, str, str], options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_manifest(*args, **options)


def test_setup_page_has_every_step_and_escapes_values() -> None:
    page = render_teams_setup_page(HOST, CLIENT_ID, tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47")
    for needle in (
        f"api://{HOST}/{CLIENT_ID}",
        "access_as_user",
        *TEAMS_CLIENT_IDS,
        "accessTokenAcceptedVersion",
        "AAD_APP_CLIENT_ID",
        "AAD_APP_TENANT_ID",
        'href="teams-app.zip"',
        "Teams admin center",
        f"https://{HOST}/api/agent",  # the redirect URI
    ):
        assert needle in page, needle
    # Every value to paste has its own copy button; no inline script (the page's CSP allows 'self' only).
    assert page.count('class="copy secondary"') == page.count('class="value"') >= 10
    assert "<script>" not in page and 'src="dashboard/dashboard-teams.js"' in page
    assert 'href="dashboard/dashboard.css"' in page  # the dashboard's look
    hostile = render_teams_setup_page('<script>x"', '"><img src=x onerror=alert(1)>', app_name="<b>Desk</b>")
    assert "<script>x" not in hostile and "<img" not in hostile and "<b>Desk" not in hostile
    assert "&lt;script&gt;" in hostile


def test_setup_page_without_a_client_id_says_what_is_missing() -> None:
    page = render_teams_setup_page(HOST, "")
    assert "AAD_APP_CLIENT_ID is not set yet" in page
    assert "&lt;Application (client) ID&gt;" in page


# --- a host with a port (local development) ------------------------------------------------------


def test_public_host_keeps_the_port() -> None:
    assert public_host("", "localhost:7071") == "localhost:7071"
    assert public_host("", "LocalHost:7071") == "localhost:7071"
    assert public_host("", "desk.example.com:443") == "desk.example.com"  # https's own port adds nothing
    assert public_host("desk.example.com", "localhost:7071") == "desk.example.com"  # the setting wins
    assert public_host("", "[::1]:7071") == "[::1]:7071"  # left for build_manifest to refuse


def test_a_local_host_keeps_its_port_in_urls_but_not_in_valid_domains() -> None:
    manifest = build_manifest("localhost:7071", CLIENT_ID, APP_ID)
    assert manifest["staticTabs"][0]["contentUrl"] == "https://localhost:7071/api/agent"
    assert manifest["staticTabs"][0]["websiteUrl"] == "https://localhost:7071/api/agent"
    assert manifest["developer"]["privacyUrl"] == "https://localhost:7071/api/privacy"
    assert manifest["validDomains"] == ["localhost"]  # valid domains take no scheme or port
    assert manifest["webApplicationInfo"]["resource"] == f"api://localhost:7071/{CLIENT_ID}"
    page = render_teams_setup_page(public_host("", "localhost:7071"), CLIENT_ID)
    assert "https://localhost:7071/api/agent" in page and f"api://localhost:7071/{CLIENT_ID}" in page


# --- the version: app version + a counter that goes up when the content changes -----------------


@pytest.mark.parametrize(
    ("app_version", "counter", "expected"),
    [("0.2.0", 1, "0.2.1"), ("1.4", 7, "1.4.7"), ("v2.10.3", 12, "2.10.12"), ("3.01.0-rc.1", 0, "3.1.0")],
)
def test_package_version_is_major_minor_counter(app_version: str, counter: int, expected: str) -> None:
    assert package_version(app_version, counter) == expected


@pytest.mark.parametrize("app_version", ["", "2", "dev", "1.x.0", "1.2rc"])
def test_an_app_version_without_major_minor_is_refused(app_version: str) -> None:
    with pytest.raises(ValueError, match="MAJOR.MINOR"):
        package_version(app_version, 1)


class MemoryState:
    """StateRepository's get/merge over a dict, counting writes."""

    def __init__(self, records: dict[str, dict[str, Any]] | None = None) -> None:
        self.records = records or {}
        self.writes = 0

    async def get(self, name: str) -> dict[str, Any]:
        return dict(self.records.get(name, {}))

    async def merge(self, name: str, fields: dict[str, Any]) -> None:
        self.records.setdefault(name, {}).update(fields)
        self.writes += 1


async def _version(state: MemoryState, app_version: str = "0.2.0", **options: Any) -> tuple[str, bytes]:
    body = await deployment_package(HOST, CLIENT_ID, APP_ID, app_version=app_version, state=state, **options)
    return json.loads(zipfile.ZipFile(io.BytesIO(body)).read("manifest.json"))["version"], body


async def test_the_version_goes_up_exactly_when_the_content_changes() -> None:
    state = MemoryState()
    first, body = await _version(state)
    assert first == "0.2.1" and state.writes == 1
    assert state.records[PACKAGE_STATE] == {"contentHash": content_hash(HOST, CLIENT_ID, APP_ID), "counter": 1}
    again, same = await _version(state)
    assert (again, same, state.writes) == (first, body, 1)  # identical downloads: same version, same bytes
    renamed, _ = await _version(state, name="Help")
    assert renamed == "0.2.2"
    back, _ = await _version(state)
    assert back == "0.2.3", "going back to earlier content is still a newer package for Teams"
    privacy, _ = await _version(state, privacy_url="https://contoso.example/privacy")
    assert privacy == "0.2.4"
    upgraded, _ = await _version(state, app_version="0.3.0", privacy_url="https://contoso.example/privacy")
    assert upgraded == "0.3.4" and state.writes == 4  # a new app version alone changes no content


async def test_the_counter_continues_from_storage() -> None:
    # Int64 properties come back from Table storage wrapped as EntityProperty(value, type).
    class Wrapped:
        value = 41

    state = MemoryState({PACKAGE_STATE: {"contentHash": "something older", "counter": Wrapped()}})
    version, _ = await _version(state, app_version="1.0.0")
    assert version == "1.0.42" and state.records[PACKAGE_STATE]["counter"] == 42


async def test_bad_settings_are_refused_before_the_counter_moves() -> None:
    state = MemoryState()
    with pytest.raises(ValueError, match="privacy_url"):
        await _version(state, privacy_url="http://contoso.example/privacy")
    with pytest.raises(ValueError, match="MAJOR.MINOR"):
        await _version(state, app_version="dev")
    assert state.writes == 0
