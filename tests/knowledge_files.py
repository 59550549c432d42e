"""Small documents made in the test: PDFs (with or without a text layer per page) and DOCX files."""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: Sequence[str | None], *, title: str = "") -> bytes:
    """A PDF with one page per item: its lines as a text layer, or (None) only an image, like a scan.

    Hand-written objects with a correct cross-reference table, so readers need no repair.
    """
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below, once the pages object's number is known
    pages_ref = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pixel = zlib.compress(b"\x80")
    image = add(
        b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Filter /FlateDecode /Length " + str(len(pixel)).encode() + b" >>\nstream\n" + pixel + b"\nendstream"
    )
    kids: list[int] = []
    for text in pages:
        if text is None:
            content = b"q 500 0 0 700 50 50 cm /Im1 Do Q"
            resources = f"<< /XObject << /Im1 {image} 0 R >> >>".encode()
        else:
            lines = [f"({_escape(line)}) Tj T*" for line in text.split("\n")]
            content = ("BT /F1 12 Tf 14 TL 72 760 Td " + " ".join(lines) + " ET").encode("cp1252")
            resources = f"<< /Font << /F1 {font} 0 R >> >>".encode()
        stream = add(b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream")
        head = f"<< /Type /Page /Parent {pages_ref} 0 R /MediaBox [0 0 612 792] /Contents {stream} 0 R /Resources "
        kids.append(add(head.encode() + resources + b" >>"))
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_ref} 0 R >>".encode()
    objects[pages_ref - 1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode()
    )
    info = add(f"<< /Title ({_escape(title)}) >>".encode()) if title else 0

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    trailer = f"<< /Size {len(objects) + 1} /Root {catalog} 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out.write(f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def make_docx(blocks: Sequence[tuple[str, str]], *, title: str = "") -> bytes:
    """A DOCX of (kind, text) blocks: kind ``h1``..``h3``, ``p``, ``li`` or ``table`` (cells split by ``|``)."""
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    for kind, text in blocks:
        if kind.startswith("h"):
            document.add_heading(text, level=int(kind[1:]))
        elif kind == "li":
            document.add_paragraph(text, style="List Bullet")
        elif kind == "table":
            rows = [row.split("|") for row in text.split("\n")]
            table = document.add_table(rows=len(rows), cols=max(len(row) for row in rows))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell.strip()
        else:
            document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
