"""Detect a visitor asking for a human ("talk to a person", "real person", "representative").

Used before any provider is called, so the request is honoured whichever LLM is configured and
costs no tokens. Matching runs on folded words (lower case, no accents, no apostrophes), so
"Parler à un CONSEILLER" and "parler a un conseiller" are the same. English first, with the
commonest French, German and Spanish phrasings.
"""

from __future__ import annotations

import re

from shared.llm._text import words

_PERSON = (
    r"(?:persons?|people|humans?|humaine?s?|agents?|representatives?|reps?|someone|somebody|operators?|staff"
    r"|employees?|advis[eo]rs?|consultants?|conseill\w*|personne|quelquun|menschen|mensch"
    r"|mitarbeiter\w*|berater\w*|persona|agente|humano|alguien|asesor\w*)"
)
# "someone" is left out where it would catch "I need someone to explain ...".
_PERSON_STRICT = r"(?:persons?|people|humans?|agents?|representatives?|operators?|staff|employees?)"
_QUALIFIER = r"(?:(?:a|an|the|some|your|one of your|real|live|actual|human|customer service|support) )*"

_ASKS = [
    re.compile(p)
    for p in (
        # talk to a (real) person, speak with someone, connect me with an agent, put me through to a human
        rf"\b(?:talk|speak|chat|connect|transfer|put|reach|contact|escalate)\b(?: \w+){{0,3}}? "
        rf"(?:to|with) {_QUALIFIER}{_PERSON}\b",
        # I want a human, I'd like a real person, get me an agent, I need to speak to ... (above)
        rf"\b(?:want|need|like|get|give|prefer|request|ask for)\b (?:me )?{_QUALIFIER}{_PERSON_STRICT}\b",
        r"\b(?:real|live|actual) (?:person|human|agent|people|support)\b",
        r"\bhuman (?:agent|being|support|operator|help|please)\b",
        r"\brepresentative\b",
        r"\bcustomer (?:service|support) (?:agent|rep|representative|person|team)\b",
        # the whole message is just "agent" / "a human please"
        r"^(?:(?:a|an|un|une|ein|einen) )?(?:human|agent|person|operator|humain|agente|persona|mensch)"
        r"(?: please| pls| now)?$",
        # French, German, Spanish
        rf"\bparler (?:a|avec) (?:\w+ ){{0,3}}?{_PERSON}\b",
        r"\b(?:mit|einen?|einem) (?:\w+ ){0,2}?(?:menschen|mensch|mitarbeiter\w*|berater\w*)\b",
        rf"\bhablar con (?:\w+ ){{0,3}}?{_PERSON}\b",
    )
]
# "I don't want to talk to a person": a negation just before the request cancels it.
_NEGATED = re.compile(r"\b(?:dont|do not|not|never|no need to|without|nicht|pas|no quiero)(?: \w+){0,2} $")


def asks_for_human(text: str) -> bool:
    """True when the visitor asks to talk to a person rather than the bot."""
    normalised = " ".join(words(text))
    for pattern in _ASKS:
        for match in pattern.finditer(normalised):
            if not _NEGATED.search(normalised[: match.start()]):
                return True
    return False
