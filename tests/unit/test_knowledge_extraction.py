"""Reading documents into chunkable text (no I/O): PDF pages, DOCX headings, HTML main text, sitemaps."""

from __future__ import annotations

import gzip

import pytest

from shared.knowledge.chunking import chunk_markdown
from shared.knowledge.extraction import (
    ExtractionError,
    decode_text,
    detect_kind,
    extract,
    html_document,
    parse_sitemap,
    unsupported_message,
)
from tests.knowledge_files import make_docx, make_pdf


def test_a_pdf_keeps_its_pages_apart_and_names_the_ones_without_text() -> None:
    pdf = make_pdf(["Warranty\nFive years on every stove.", None, "Spares\nBurners are sold.", None], title="Manual")
    document = extract(pdf, "pdf")
    assert document.title == "Manual"
    assert [(part.page, part.text.split("\n")[0]) for part in document.parts] == [(1, "Warranty"), (3, "Spares")]
    assert document.warnings == [
        "pages 2, 4 of the PDF have no text layer (scanned?) and are not indexed; run OCR on the PDF to include them"
    ]
    chunks = [chunk for part in document.parts for chunk in chunk_markdown(part.text, source_id="s", page=part.page)]
    assert [chunk.anchor for chunk in chunks] == ["page=1", "page=3"]


def test_a_pdf_without_any_text_layer_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(ExtractionError, match=r"the PDF has no text layer \(scanned\?\).*run OCR"):
        extract(make_pdf([None, None]), "pdf")
    with pytest.raises(ExtractionError, match="could not be read"):
        extract(b"%PDF-1.4\nthis is not really a pdf", "pdf")


def test_a_docx_becomes_markdown_with_its_headings_lists_and_tables() -> None:
    docx = make_docx(
        [
            ("h1", "Care guide"),
            ("p", "Look after it."),
            ("h2", "Washing"),
            ("li", "Close every zip"),
            ("p", "# not a heading"),
            ("table", "Fabric|Temperature\nShell|30 degrees"),
        ],
        title="Jacket care",
    )
    document = extract(docx, "docx", filename="care.docx")
    assert document.title == "Jacket care"
    assert document.text.split("\n\n") == [
        "# Care guide",
        "Look after it.",
        "## Washing",
        "- Close every zip",
        "#\u200b not a heading",
        "Fabric | Temperature\nShell | 30 degrees",
    ]
    chunks = chunk_markdown(document.text, source_id="s")
    assert [chunk.heading_path for chunk in chunks] == [("Care guide",), ("Care guide", "Washing")]


def test_html_keeps_the_main_text_and_drops_page_furniture() -> None:
    page = """<!doctype html><html><head><title> Help  centre </title><base href="https://shop.example/help/">
    <style>p{}</style><script>track()</script></head><body>
    <header>Logo</header><nav><a href="/all">All</a></nav>
    <main><h1>Returns</h1><p>Send it back <b>within</b> 30&nbsp;days.<br>Free of charge.</p>
    <ul><li>Unused</li><li>In its box <a href="box" rel="nofollow">box</a></li></ul>
    <div hidden>secret</div><p style="display: none">hidden too</p><!-- a comment -->
    <table><tr><th>Size</th><td>M</td></tr></table><pre>code  kept</pre><img alt="A tent"></main>
    <aside>Ads</aside><footer>Footer <a href="/privacy">Privacy</a></footer></body></html>"""
    document = html_document(page)
    assert document.title == "Help centre"
    assert document.base == "https://shop.example/help/"
    assert document.links == ["/all", "/privacy"]  # nofollow left out; navigation links still count
    assert document.text == (
        "# Returns\n\nSend it back within 30 days.\nFree of charge.\n\n- Unused\n\n- In its box box\n\n"
        "Size | M\n\n```\ncode  kept\n```\n\nA tent"
    )
    robots = html_document(
        '<html><head><meta name="robots" content="noindex, nofollow"></head><body><a href="/x">x</a></body></html>'
    )
    assert robots.noindex and robots.nofollow and robots.links == []


def test_text_is_decoded_by_bom_declaration_or_guess() -> None:
    assert decode_text("café".encode()) == "café"
    assert decode_text("café".encode("cp1252")) == "café"
    assert decode_text("\ufeffcafé".encode("utf-16-le")) == "café"
    assert decode_text("café".encode("latin-1"), "iso-8859-1") == "café"
    assert decode_text(b'<meta charset="windows-1252"><p>caf\xe9</p>', html=True).endswith("café</p>")
    document = extract(b"# Hours\n\nOpen \x00at nine.\r\n", "markdown", filename="hours.md")
    assert document.title == "Hours" and document.text == "# Hours\n\nOpen at nine.\n"


@pytest.mark.parametrize(
    ("data", "name", "media", "kind"),
    [
        (make_pdf(["x"]), "whatever.bin", "", "pdf"),
        (make_docx([("p", "x")]), "upload", "application/octet-stream", "docx"),
        (b"<!DOCTYPE html><p>x</p>", "page", "", "html"),
        (b"<p>x</p>", "page.htm", "", "html"),
        (b"# x", "notes.md", "", "markdown"),
        (b"x", "notes", "text/markdown", "markdown"),
        (b"x", "notes.txt", "", "text"),
        (b"PK\x03\x04not a docx", "sheet.xlsx", "", None),
        (b"not a pdf", "fake.pdf", "", None),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "photo.png", "image/png", None),
        (b"bin\x00ary", "data.txt", "", None),
    ],
)
def test_kinds_are_told_by_content_first(data: bytes, name: str, media: str, kind: str | None) -> None:
    assert detect_kind(data, name, media) == kind


def test_unsupported_files_are_named_with_what_to_do() -> None:
    assert (
        unsupported_message("old.DOC")
        == "Word 97-2003 (.doc) files are not supported; save it as DOCX or PDF and upload that"
    )
    assert (
        unsupported_message("a.xlsx") == ".xlsx files are not supported; upload PDF, DOCX, HTML, Markdown or plain text"
    )


def test_sitemaps_and_indexes_are_read_safely() -> None:
    urlset = b"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc> https://shop.example/a </loc></url><url><loc>https://shop.example/b</loc></url></urlset>"""
    assert parse_sitemap(urlset).pages == ["https://shop.example/a", "https://shop.example/b"]
    assert parse_sitemap(gzip.compress(urlset)).pages == ["https://shop.example/a", "https://shop.example/b"]
    index = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sitemap><loc>https://shop.example/s1.xml</loc></sitemap></sitemapindex>"""
    assert parse_sitemap(index).sitemaps == ["https://shop.example/s1.xml"]
    # An external entity is not fetched or read; entities are not expanded (no billion laughs).
    xxe = b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY e SYSTEM "file:///etc/hostname">]><urlset><url><loc>&e;</loc></url></urlset>'
    assert parse_sitemap(xxe).pages == []
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><urlset><url><loc>&c;</loc></url></urlset>'
    )
    assert parse_sitemap(laughs).pages == []
    for bad in (b"<html><body>no</body></html>", b"not xml at all"):
        with pytest.raises(ValueError, match="sitemap|XML"):
            parse_sitemap(bad)
