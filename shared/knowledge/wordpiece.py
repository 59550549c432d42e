"""BERT's uncased WordPiece tokenizer in plain Python (pure: no I/O once the vocabulary is read).

What Hugging Face's ``BertTokenizer`` (``do_lower_case=True``) and the ``tokenizers`` pipeline in the
MiniLM model's ``tokenizer.json`` do, without the ``tokenizers`` wheel and the Hub client it pulls
in: clean control characters, put spaces around CJK ideographs, lower-case, strip accents (NFD,
drop combining marks), split on whitespace and punctuation, then cut each word greedily into the
longest vocabulary pieces (``##`` marks a piece inside a word); a word that can't be cut, or is
longer than 100 characters, is ``[UNK]``. https://github.com/google-research/bert/blob/master/tokenization.py
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

MAX_WORD_CHARS = 100


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    # BERT counts every non-alphanumeric ASCII character as punctuation ("$", "^", "`" included).
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _normalise(text: str) -> str:
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code == 0 or code == 0xFFFD:
            continue
        category = unicodedata.category(char)
        if char in "\t\n\r" or category == "Zs":
            out.append(" ")
        elif category in ("Cc", "Cf"):
            continue
        elif _is_cjk(code):
            out.append(f" {char} ")
        else:
            out.append(char)
    # Character by character, as the Rust tokenizer does: no final-sigma rule ("ΟΣ" -> "οσ", not "ος").
    folded = unicodedata.normalize("NFD", "".join(char.lower() for char in "".join(out)))
    return "".join(char for char in folded if unicodedata.category(char) != "Mn")


def basic_tokens(text: str) -> list[str]:
    """The words and punctuation marks of ``text``, lower-cased and without accents."""
    tokens: list[str] = []
    for word in _normalise(text).split():
        current: list[str] = []
        for char in word:
            if _is_punctuation(char):
                if current:
                    tokens.append("".join(current))
                    current = []
                tokens.append(char)
            else:
                current.append(char)
        if current:
            tokens.append("".join(current))
    return tokens


class WordPiece:
    """A vocabulary (one piece a line, the id is the line number) and the tokenizer over it."""

    def __init__(self, vocabulary: list[str]) -> None:
        self._ids = {piece: index for index, piece in enumerate(vocabulary)}
        self.unk = self._ids["[UNK]"]
        self.cls = self._ids["[CLS]"]
        self.sep = self._ids["[SEP]"]
        self._word = functools.lru_cache(maxsize=65_536)(self._pieces)

    @classmethod
    def from_file(cls, path: Path) -> WordPiece:
        """The vocabulary in a ``vocab.txt``."""
        return cls(path.read_text(encoding="utf-8").splitlines())

    def _pieces(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD_CHARS:
            return (self.unk,)
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self._ids.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self.unk,)
            pieces.append(found)
            start = end
        return tuple(pieces)

    def known_share(self, text: str) -> float:
        """The share of the words of ``text`` (letters only) that are whole words of the vocabulary.

        High for a text in the language the vocabulary was built from (English questions: 0.75 or more
        for 95% of them), low for another one (Swedish: 0.5 or less for 90%). 1.0 for no word.
        """
        words = [word for word in basic_tokens(text) if word.isalpha()]
        return sum(word in self._ids for word in words) / len(words) if words else 1.0

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``, without [CLS] and [SEP]."""
        ids: list[int] = []
        for word in basic_tokens(text):
            ids.extend(self._word(word))
        return ids
