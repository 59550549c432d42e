"""Static checks on the browser scripts: the widget's gzipped size and no HTML built from variables."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "static"
WIDGET = STATIC / "widget.js"
MAX_GZIPPED_BYTES = 20 * 1024

# `x.innerHTML = ...`, `+=`, or outerHTML: what follows must be a plain literal.
_HTML_SINK = re.compile(r"\.(?:inner|outer)HTML\s*\+?=\s*")
_PLAIN_LITERAL = re.compile(r"""^(?:"[^"\\]*"|'[^'\\]*'|`[^`$\\]*`)\s*[;,)\n]""")


def test_widget_is_small_when_gzipped() -> None:
    """The snippet's script stays under 20 KB gzipped (the design's target)."""
    size = len(gzip.compress(WIDGET.read_bytes(), compresslevel=9))
    assert size < MAX_GZIPPED_BYTES, f"widget.js is {size} bytes gzipped; the budget is {MAX_GZIPPED_BYTES}"


@pytest.mark.parametrize("name", ["widget.js", "agent.js"])
def test_no_html_from_variables(name: str) -> None:
    """innerHTML/outerHTML only ever get string literals; no insertAdjacentHTML, document.write or eval."""
    source = (STATIC / name).read_text(encoding="utf-8")
    for match in _HTML_SINK.finditer(source):
        rest = source[match.end() : match.end() + 200]
        line = source.count("\n", 0, match.start()) + 1
        assert _PLAIN_LITERAL.match(rest), f"{name}:{line} assigns HTML from an expression"
    for sink in ("insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser"):
        assert sink not in source, f"{name} uses {sink}"


def test_widget_uses_text_content_for_messages() -> None:
    """Message text reaches the DOM as text nodes or textContent."""
    source = WIDGET.read_text(encoding="utf-8")
    assert "createTextNode(String(m.text" in source
    assert "textContent" in source
