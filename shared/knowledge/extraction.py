"""Documents to Markdown-ish text the chunker understands: PDF, DOCX, HTML, Markdown and plain text.

Headings become ``#`` lines (so chunks carry their heading path), list items ``- `` lines, table
rows ``cell | cell`` lines. A PDF keeps its pages apart (each chunk's anchor is ``page=N``). Errors
say what a person can do about them ("the PDF has no text layer (scanned?)"), and so do warnings
about parts that were left out.

The parsers (``pypdf``, ``python-docx``, ``lxml``) are imported when a document of their kind is
read, never at app start. Work here is CPU-bound: callers run it in a thread.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

KINDS = ("pdf", "docx", "html", "markdown", "text")
MAX_PDF_PAGES = 2000
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024  # a DOCX inflating past this is a zip bomb, not a document
_EXTENSIONS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".txt": "text",
    ".text": "text",
}
_MEDIA_TYPES = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
}
_LEGACY = {".doc": "Word 97-2003 (.doc)", ".rtf": "RTF", ".odt": "OpenDocument (.odt)", ".pages": "Pages"}
SUPPORTED_NAMES = "PDF, DOCX, HTML, Markdown or plain text"


class ExtractionError(Exception):
    """A document that yields nothing to index; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Part:
    """A run of text: a PDF page (``page`` set) or the whole of another document."""

    text: str
    page: int | None = None


@dataclass
class Document:
    """A document's text, its title and, for a web page, its links and robots directives."""

    title: str = ""
    parts: list[Part] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # hrefs as written (resolve against ``base``)
    base: str = ""  # the page's <base href>, if any
    warnings: list[str] = field(default_factory=list)
    noindex: bool = False  # <meta name="robots" content="noindex">
    nofollow: bool = False

    @property
    def text(self) -> str:
        """All the text, parts separated by blank lines."""
        return "\n\n".join(part.text for part in self.parts)


def detect_kind(data: bytes, filename: str = "", media_type: str = "") -> str | None:
    """Which of :data:`KINDS` ``data`` is (content first, then the file's extension and media type), or None."""
    suffix = PurePosixPath(filename.lower()).suffix
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "docx" if _is_docx(data) else None
    by_name = _EXTENSIONS.get(suffix) or _MEDIA_TYPES.get(media_type.split(";")[0].strip().lower())
    if by_name in ("pdf", "docx"):
        return None  # named so, but not one
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # binary
    head = data[:2048].lstrip().lower()
    if by_name is None and head.startswith((b"<!doctype html", b"<html")):
        return "html"
    return by_name


def unsupported_message(filename: str, media_type: str = "") -> str:
    """Why a file is refused, naming what works."""
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix in _LEGACY:
        return f"{_LEGACY[suffix]} files are not supported; save it as DOCX or PDF and upload that"
    shown = f"{suffix} files" if suffix else f"files of type {media_type or 'unknown'}"
    return f"{shown} are not supported; upload {SUPPORTED_NAMES}"


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, ValueError):
        return False


def extract(data: bytes, kind: str, *, filename: str = "", charset: str = "") -> Document:
    """The text of a document of ``kind`` (one of :data:`KINDS`); :class:`ExtractionError` when it has none."""
    if kind == "pdf":
        document = _pdf(data)
    elif kind == "docx":
        document = _docx(data)
    elif kind == "html":
        document = html_document(decode_text(data, charset, html=True))
    else:
        text = _clean(decode_text(data, charset))
        document = Document(_markdown_title(text) if kind == "markdown" else "", [Part(text)] if text.strip() else [])
    if not document.title:
        document.title = PurePosixPath(filename).stem if filename else ""
    if not document.parts and not document.noindex:
        raise ExtractionError(document.warnings[0] if document.warnings else "the document has no text to index")
    return document


# --- text -------------------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def decode_text(data: bytes, charset: str = "", *, html: bool = False) -> str:
    """Bytes as text: a BOM, the declared charset (or an HTML page's own), else UTF-8, else Windows-1252."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    candidates = [charset] if charset else []
    if html and (declared := _META_CHARSET.search(data[:4096])):
        candidates.append(declared.group(1).decode("ascii"))
    for encoding in candidates:
        try:
            return data.decode(encoding, errors="replace")
        except LookupError:
            continue
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _clean(text: str) -> str:
    """Control characters and lone surrogates out (Storage refuses them), line ends unified."""
    return _UNSTORABLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _markdown_title(text: str) -> str:
    found = re.search(r"^ {0,3}#\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
    return found.group(1).strip() if found else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- PDF ----------------------------------------------------------------------------------------------


def _pdf(data: bytes) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("the PDF is password-protected; upload a copy without a password")
        pages = list(reader.pages)
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionError(
            f"the PDF could not be read ({exc}); save it again (print to PDF) and upload that"
        ) from exc
    document = Document(title=_pdf_title(reader))
    if len(pages) > MAX_PDF_PAGES:
        document.warnings.append(f"only the first {MAX_PDF_PAGES} of the PDF's {len(pages)} pages were read")
    scanned: list[int] = []
    unreadable: list[int] = []
    for number, page in enumerate(pages[:MAX_PDF_PAGES], start=1):
        try:
            text = _clean(page.extract_text() or "")
        except Exception:  # noqa: BLE001 - one broken page (pypdf raises many kinds) must not lose the others
            unreadable.append(number)
            continue
        if text.strip():
            document.parts.append(Part(text, page=number))
        elif _has_images(page):
            scanned.append(number)
    if not document.parts:
        if scanned:
            raise ExtractionError(
                "the PDF has no text layer (scanned?): none of its pages has text to index; "
                'run OCR on it ("make searchable" in most PDF tools) or upload a text version'
            )
        raise ExtractionError("the PDF has no text to index")
    if scanned:
        one = len(scanned) == 1
        document.warnings.append(
            f"{_pages(scanned)} of the PDF {'has' if one else 'have'} no text layer (scanned?) and "
            f"{'is' if one else 'are'} not indexed; run OCR on the PDF to include {'it' if one else 'them'}"
        )
    if unreadable:
        one = len(unreadable) == 1
        document.warnings.append(
            f"{_pages(unreadable)} of the PDF could not be read and {'is' if one else 'are'} not indexed"
        )
    return document


def _pages(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"page {numbers[0]}"
    shown = ", ".join(str(n) for n in numbers[:10])
    more = f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    return f"pages {shown}{more}"


def _pdf_title(reader: Any) -> str:
    try:
        metadata = reader.metadata
        return _one_line(str(metadata.title)) if metadata and metadata.title else ""
    except Exception:  # noqa: BLE001 - a broken info dictionary only costs the title
        return ""


def _has_images(page: Any) -> bool:
    """Whether a page draws anything besides text (an image or a form): a page without text then is scanned."""
    try:
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else None
        return bool(resources and resources.get("/XObject"))
    except Exception:  # noqa: BLE001 - when in doubt, say it may be scanned
        return True


# --- DOCX ---------------------------------------------------------------------------------------------

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)


def _docx(data: bytes) -> Document:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ExtractionError(
            "the DOCX file is damaged (not a valid zip archive); save it again and upload that"
        ) from exc
    if unzipped > MAX_UNZIPPED_BYTES:
        raise ExtractionError(f"the DOCX file unpacks to {unzipped} bytes, more than a document should; save it again")
    import docx
    from docx.table import Table

    try:
        doc = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds for a broken package
        raise ExtractionError(f"the DOCX file could not be read ({exc.__class__.__name__}); save it again") from exc
    lines: list[str] = []
    title = _one_line(doc.core_properties.title or "")
    for block in doc.iter_inner_content():
        if isinstance(block, Table):
            lines.extend(_docx_table(block))
            continue
        text = _one_line(_clean(block.text))
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style.lower() == "title":
            title = title or text
            lines.append(f"# {text}")
        elif heading := _HEADING_STYLE.match(style):
            lines.append(f"{'#' * min(6, int(heading.group(1)))} {text}")
        elif "list" in style.lower() or _numbered(block):
            lines.append(f"- {text}")
        else:
            lines.append(_not_markup(text))
    body = "\n\n".join(lines)
    return Document(title or _markdown_title(body), [Part(body)] if body.strip() else [])


def _numbered(paragraph: Any) -> bool:
    properties = paragraph._p.pPr  # python-docx has no public API for direct numbering
    return properties is not None and properties.numPr is not None


def _docx_table(table: Any) -> list[str]:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = _one_line(_clean(cell.text))
            if text and (not cells or cells[-1] != text):  # a merged cell repeats in every column it spans
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return ["\n".join(rows)] if rows else []


def _not_markup(text: str) -> str:
    """A paragraph that would read as a heading or a code fence to the chunker, defused."""
    return re.sub(r"^(#{1,6}\s|`{3}|~{3})", lambda m: m.group(1)[0] + "\u200b" + m.group(1)[1:], text)


# --- HTML ---------------------------------------------------------------------------------------------

# Page furniture and things that aren't prose: dropped before the text is read (links are taken first).
_DROP = {
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed", "nav", "header",
    "footer", "aside", "form", "button", "select", "textarea", "input", "dialog", "menu", "head",
}  # fmt: skip
_DROP_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "dialog", "menu", "menubar"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "blockquote", "ul", "ol", "dl", "dt", "dd", "table", "thead",
    "tbody", "tfoot", "figure", "figcaption", "address", "details", "summary", "hr", "body", "html", "center",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def html_document(markup: str) -> Document:
    """A web page's main text as Markdown, with its title, links and robots directives."""
    import lxml.html
    from lxml import etree

    markup = re.sub(r"^\s*<\?xml[^>]*\?>", "", markup)  # lxml refuses a str with an encoding declaration
    if not markup.strip():
        return Document()
    try:
        root = lxml.html.document_fromstring(markup)
    except (etree.ParserError, ValueError):
        return Document()
    document = Document()
    title = root.find(".//title")
    document.title = _one_line(title.text_content()) if title is not None else ""
    for meta in root.iter("meta"):
        if (meta.get("name") or "").lower() in ("robots", "supportdeskbot"):
            content = (meta.get("content") or "").lower()
            document.noindex = document.noindex or "noindex" in content or "none" in content
            document.nofollow = document.nofollow or "nofollow" in content or "none" in content
    base = root.find(".//base[@href]")
    document.base = (base.get("href") or "").strip() if base is not None else ""
    if not document.nofollow:
        document.links = [
            href
            for a in root.iter("a", "area")
            if (href := (a.get("href") or "").strip()) and "nofollow" not in (a.get("rel") or "").lower()
        ]
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            if element.getparent() is not None:
                element.drop_tree()  # comments and processing instructions
            continue
        if element.getparent() is not None and _dropped(element):
            element.drop_tree()
    main = next(iter(root.xpath("//main|//*[@role='main']")), None)
    if main is None:
        articles = root.xpath("//article")
        main = articles[0] if len(articles) == 1 else root
    writer = _MarkdownWriter()
    writer.walk(main)
    text = writer.finish()
    if not document.title:
        document.title = _markdown_title(text)
    if text.strip():
        document.parts.append(Part(text))
    return document


def _dropped(element: Any) -> bool:
    if element.tag in _DROP:
        return True
    if (element.get("role") or "").lower() in _DROP_ROLES:
        return True
    if element.get("hidden") is not None or (element.get("aria-hidden") or "").lower() == "true":
        return True
    style = (element.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


class _MarkdownWriter:
    """Walks an HTML tree and writes Markdown blocks: headings, paragraphs, list items, code, table rows."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.inline: list[str] = []
        self.prefix = ""  # "- " while inside a list item's first line

    def flush(self) -> None:
        text = "\n".join(_one_line(line) for line in "".join(self.inline).split("\n"))
        text = "\n".join(line for line in text.split("\n") if line)
        if text:
            self.blocks.append(self.prefix + (_not_markup(text) if not self.prefix else text))
        self.inline, self.prefix = [], ""

    def walk(self, element: Any) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _HEADINGS:
            self.flush()
            text = _one_line(_clean(element.text_content()))
            if text:
                self.blocks.append(f"{'#' * _HEADINGS[tag]} {text}")
        elif tag == "pre":
            self.flush()
            code = _clean(element.text_content()).strip("\n")
            if code.strip():
                self.blocks.append(f"```\n{code.replace('```', '` ` `')}\n```")
        elif tag == "li":
            self.flush()
            self.prefix = "- "
            self._children(element)
            self.flush()
        elif tag == "tr":
            self.flush()
            cells = [_one_line(_clean(cell.text_content())) for cell in element if cell.tag in ("td", "th")]
            if row := " | ".join(cell for cell in cells if cell):
                self.blocks.append(row)
        elif tag == "br":
            self.inline.append("\n")
        elif tag == "img":
            if alt := _one_line(element.get("alt") or ""):
                self.inline.append(f" {alt} ")
        elif tag in _BLOCKS:
            self.flush()
            self._children(element)
            self.flush()
        else:
            self._children(element)
        if element.tail:
            self.inline.append(_clean(element.tail))

    def _children(self, element: Any) -> None:
        if element.text:
            self.inline.append(_clean(element.text))
        for child in element:
            self.walk(child)

    def finish(self) -> str:
        self.flush()
        return "\n\n".join(self.blocks)


# --- sitemaps -------------------------------------------------------------------------------------------


@dataclass
class Sitemap:
    """What a sitemap file lists: page URLs, or (a sitemap index) other sitemaps."""

    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)


def parse_sitemap(data: bytes) -> Sitemap:
    """The URLs of a sitemap or sitemap index (gzip or not); ValueError when it is neither.

    Parsed without DTDs, entities or network access, so an XML bomb or an external entity does nothing.
    https://www.sitemaps.org/protocol.html
    """
    import gzip

    from lxml import etree

    if data.startswith(b"\x1f\x8b"):
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
            data = unzipped.read(50 * 1024 * 1024 + 1)  # the protocol's limit for one uncompressed sitemap
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"is not valid XML ({exc})") from exc
    if root is None:
        raise ValueError("is empty")
    kind = etree.QName(root).localname
    if kind not in ("urlset", "sitemapindex"):
        raise ValueError(f"is not a sitemap (its root element is <{kind}>, not <urlset> or <sitemapindex>)")
    locations = [
        _one_line(loc.text or "")
        for loc in root.iter()
        if isinstance(loc.tag, str) and etree.QName(loc).localname == "loc"
    ]
    locations = [loc for loc in locations if loc]
    return Sitemap(pages=locations) if kind == "urlset" else Sitemap(sitemaps=locations)
