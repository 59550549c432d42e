"""The ingestion job's pure parts (no I/O): page chunks, content hashes, when a refresh is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.clock import iso
from shared.knowledge.extraction import Document, Part
from shared.knowledge.ingestion import _due, page_chunks, page_hash
from shared.storage.knowledge import SourceRecord

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_pages_that_say_the_same_thing_keep_apart_and_keep_their_url_and_order() -> None:
    notice = Document("Shop", [Part("# Help\n\nWe are closed on Sundays.")])
    first = page_chunks("s1", notice, url="https://shop.example/a", position=0)
    second = page_chunks("s1", notice, url="https://shop.example/b", position=3)
    assert first[0].text == second[0].text and first[0].id != second[0].id
    assert (first[0].url, second[0].url) == ("https://shop.example/a", "https://shop.example/b")
    assert (first[0].position, second[0].position) == (0, 30_000)
    assert page_chunks("s1", notice, url="https://shop.example/a", position=0) == first  # stable across syncs


def test_a_page_without_a_top_heading_is_headed_by_its_title_and_a_pdf_keeps_page_anchors() -> None:
    [chunk] = page_chunks("s1", Document("Delivery times", [Part("Parcels ship in two days.")]), url="u", position=0)
    assert chunk.heading_path == ("Delivery times",)
    pdf = Document("Manual", [Part("Intro text.", page=1), Part("Spares text.", page=4)])
    assert [chunk.anchor for chunk in page_chunks("s1", pdf, url="", position=0)] == ["page=1", "page=4"]


def test_the_content_hash_changes_with_the_text_and_title_only() -> None:
    base = Document("Title", [Part("Text.")], links=["/a"])
    assert page_hash(base) == page_hash(Document("Title", [Part("Text.")], links=["/b"]))
    assert page_hash(base) != page_hash(Document("Title", [Part("Text!")]))
    assert page_hash(base) != page_hash(Document("Other", [Part("Text.")]))


def test_a_refresh_is_due_a_period_after_the_last_sync_or_attempt() -> None:
    def source(
        refresh: str, synced: timedelta | None, queued: timedelta | None = None, kind: str = "url"
    ) -> SourceRecord:
        return SourceRecord(
            "s1", kind, "t", refresh=refresh,
            last_synced_at=iso(NOW - synced) if synced is not None else "",
            queued_at=iso(NOW - queued) if queued is not None else "",
        )  # fmt: skip

    assert _due(source("daily", timedelta(hours=25)), NOW)
    assert _due(source("daily", timedelta(hours=23, minutes=55)), NOW)  # a timer run early rather than late
    assert not _due(source("daily", timedelta(hours=20)), NOW)
    assert not _due(source("daily", timedelta(days=3), queued=timedelta(hours=1)), NOW)  # just attempted (failed)
    assert not _due(source("weekly", timedelta(days=6)), NOW)
    assert _due(source("weekly", timedelta(days=7)), NOW)
    assert not _due(source("manual", timedelta(days=30)), NOW)
    assert not _due(source("daily", timedelta(days=30), kind="file"), NOW)
