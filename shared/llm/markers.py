"""Citation markers in a model's reply: which excerpts it used, and the text without the markers.

The model is asked to put the number of each excerpt it uses in square brackets (``[1]``,
``[2][3]``, ``[1, 3]``) and to end a reply it cannot ground with ``[no-answer]``. The numbers tell
which sources to cite; the visitor reads the text without any marker (the sources are listed under
the message instead). A streamed reply is cleaned as it arrives: :class:`MarkerFilter` holds back
only a trailing space and an unclosed ``[`` with a few characters after it, the only text that may
still turn into a marker, so nothing a visitor sees is ever taken back.
"""

from __future__ import annotations

import re

NO_ANSWER = "[no-answer]"
_NUMBERS = r"\d{1,2}(?:\s*[,;]\s*\d{1,2})*"
# A marker with the spaces before it: "days [1]." reads "days.".
_MARKER = re.compile(rf"[ \t]*\[\s*(?:(?P<numbers>{_NUMBERS})|(?P<none>no[ _-]?answer))\s*\]", re.IGNORECASE)
# What may still become a marker at the end of a partial text: trailing blanks and an unclosed "[".
_PARTIAL = re.compile(r"[ \t]*(?:\[[^\[\]\n]{0,20})?\Z")


def cited_numbers(raw: str) -> list[int]:
    """The excerpt numbers the reply cites, in order of first use, each once."""
    seen: dict[int, None] = {}
    for match in _MARKER.finditer(raw):
        for number in re.findall(r"\d+", match.group("numbers") or ""):
            seen.setdefault(int(number), None)
    return list(seen)


def says_no_answer(raw: str) -> bool:
    """True when the model marked its reply as not answered by the excerpts."""
    return any(match.group("none") for match in _MARKER.finditer(raw))


class MarkerFilter:
    """Feed a reply's text piece by piece; get back the same text with its markers removed.

    ``"".join(feed(...) for each piece) + flush()`` equals :func:`strip_markers` of the whole text.
    """

    def __init__(self) -> None:
        self._held = ""
        self._started = False  # some visible text went out (leading blanks are dropped until then)

    def feed(self, piece: str) -> str:
        """The visible text that can go out now."""
        text = self._held + piece
        cut = _PARTIAL.search(text)
        start = cut.start() if cut else len(text)
        self._held = text[start:]
        return self._out(_MARKER.sub("", text[:start]))

    def flush(self) -> str:
        """What was held back, once the text is complete (trailing blanks dropped)."""
        held, self._held = self._held, ""
        return self._out(_MARKER.sub("", held).rstrip())

    def _out(self, visible: str) -> str:
        if not self._started:
            visible = visible.lstrip()
            self._started = bool(visible)
        return visible


def strip_markers(raw: str) -> str:
    """``raw`` without citation markers, as the visitor reads it."""
    cleaner = MarkerFilter()
    return cleaner.feed(raw) + cleaner.flush()
