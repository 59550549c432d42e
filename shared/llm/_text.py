"""Text normalisation shared by keyword relevance and handoff detection."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")

# Words that say nothing about the topic: English plus the commonest French, German and Spanish
# ones, and the politeness/filler a visitor wraps a question in ("could you tell me ... please").
STOP_WORDS = frozenset(
    """
    a about after again all also am an and any are as at be been before being but by can cannot
    could did do does doing done dont for from get got had has have having he her here hers him his
    how i if in into is it its just know let like me might more most much must my need no nor not
    now of off ok okay on once only or other our ours out over own please same she should so some
    such tell than thank thanks that the their them then there these they this those through to too
    under until up us very want was we were what when where which while who whom why will with would
    yes you your yours hi hello hey
    le la les un une des de du et est je tu vous nous il elle ils elles pour avec sur dans que qui
    quoi comment quand ou mon ma mes votre vos ce cette ces pas au aux se sa son en y a
    der die das und ist ich sie wir ihr ein eine einen mit fur auf wie was wann wo nicht zu von den
    el los las y es yo usted como que cuando donde por para con mi su un una del al lo
    """.split()
)


def fold(text: str) -> str:
    """Lower-case and strip accents (``Réponse`` -> ``reponse``), so matching ignores both."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """The folded words of ``text``, stop words included."""
    return _WORD.findall(fold(text).replace("'", ""))


def stem(word: str) -> str:
    """A light suffix-stripping stem: ``shipping`` -> ``ship``, ``policies`` -> ``policy``."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, replacement, min_len in (
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("ed", "", 6),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= min_len and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + replacement
            break
    # "shipp" (from shipping) -> "ship": undo a doubled final consonant left by the suffix.
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Stemmed content words of ``text``, in order, stop words removed."""
    return [stem(w) for w in words(text) if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())]
