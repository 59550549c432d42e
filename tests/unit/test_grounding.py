"""Grounding excerpts, their coverage scores, citation markers and the citations they name (pure, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.llm import ChatTurn, KnowledgeBase, build_grounding
from shared.llm.grounding import Excerpt, citations, coverage, queries, safe_url
from shared.llm.markers import MarkerFilter, cited_numbers, says_no_answer, strip_markers
from tests.fixtures.llm import LLM_KNOWLEDGE


def hit(source: str, text: str, *, title: str = "", url: str | None = None, anchor: str = "", **extra: Any) -> dict:
    """A search result as ``shared.knowledge.searching.search`` returns it."""
    return {
        "sourceId": source,
        "sourceTitle": title or source.title(),
        "url": url,
        "chunkId": extra.get("chunk", f"{source}-{abs(hash(text)) % 10_000}"),
        "anchor": anchor,
        "headingPath": extra.get("headings", []),
        "text": text,
        "score": extra.get("score", 1.0),
    }


SHIPPING = hit("shipping", "Standard shipping takes 3 to 5 business days.", headings=["Delivery times"])
RETURNS = hit("returns", "Q: Can I return boots?\nA: Unused boots come back within 30 days.", title="Returns FAQ")
CANADA = hit("intl", "We ship to Canada and the UK; duties are shown at checkout.", url="https://shop.example/intl")


@pytest.mark.parametrize(
    ("raw", "numbers", "visible"),
    [
        ("Shipping takes 3 to 5 days [1].", [1], "Shipping takes 3 to 5 days."),
        ("[2] Returns are free. Boots too [1][2].", [2, 1], "Returns are free. Boots too."),
        ("Both [1, 3] apply.", [1, 3], "Both apply."),
        ("Press [ 4 ] then.", [4], "Press then."),
        (
            "Sorry, I don't know. Shall I ask a colleague? [no-answer]",
            [],
            "Sorry, I don't know. Shall I ask a colleague?",
        ),
        ("An array like [a] or [1a] stays.", [], "An array like [a] or [1a] stays."),
    ],
)
def test_markers_name_the_excerpts_and_leave_the_text_clean(raw: str, numbers: list[int], visible: str) -> None:
    assert cited_numbers(raw) == numbers
    assert strip_markers(raw) == visible


def test_no_answer_is_recognised_in_its_spellings() -> None:
    assert says_no_answer("I don't know [no-answer]") and says_no_answer("Je ne sais pas. [NO ANSWER]")
    assert not says_no_answer("It is in the manual [1].")


@pytest.mark.parametrize(
    "raw",
    [
        "Standard shipping takes 3 to 5 business days [1]. Express arrives the next day [2][3].",
        "[1] Leading marker, then a list [a, b] and a price [$5] [12].",
        "Trailing blanks   [2]   ",
        "An unclosed [1 marker and [no-answer]",
        "Unicode: café [1], naïve [2] — done.",
    ],
)
def test_a_streamed_reply_is_cleaned_exactly_as_the_whole_text(raw: str) -> None:
    for size in (1, 2, 3, 7):  # however the model cuts its deltas
        cleaner = MarkerFilter()
        shown = [cleaner.feed(raw[i : i + size]) for i in range(0, len(raw), size)] + [cleaner.flush()]
        assert "".join(shown) == strip_markers(raw), (size, shown)
        assert not any("[1]" in piece or "[2]" in piece for piece in shown)


def test_the_filter_holds_back_only_what_may_become_a_marker() -> None:
    cleaner = MarkerFilter()
    assert cleaner.feed("Shipping takes ") == "Shipping takes"  # the space may precede a marker
    assert cleaner.feed("3 days [") == " 3 days"
    assert cleaner.feed("1].") == "."
    assert cleaner.feed(" Anything else?") == " Anything else?"
    assert cleaner.flush() == ""


@pytest.mark.parametrize(
    ("url", "anchor", "expected"),
    [
        ("https://shop.example/returns", "boots", "https://shop.example/returns#boots"),
        ("http://shop.example/a?b=1", "", "http://shop.example/a?b=1"),
        ("https://shop.example/a#top", "other", "https://shop.example/a#top"),
        ("javascript:alert(1)", "", None),
        ("JaVaScRiPt:alert(1)//https://x", "", None),
        ("data:text/html,<b>x</b>", "", None),
        ("//shop.example/x", "", None),
        ("/relative", "", None),
        ('https://shop.example/"onmouseover=alert(1)', "", None),
        ("https:///nohost", "", None),
        (None, "x", None),
        ("", "", None),
    ],
)
def test_only_absolute_http_urls_are_cited(url: str | None, anchor: str, expected: str | None) -> None:
    assert safe_url(url, anchor) == expected


def test_coverage_is_the_share_of_topic_words_an_excerpt_holds() -> None:
    docs = ["Standard shipping takes 3 to 5 business days.", "Shipping is free over $75.", "Our shop is in Boulder."]
    # "how long" frames the question: shipping and take(s) are its topic.
    assert coverage("How long does shipping take?", docs) == [1.0, 0.5, 0.0]
    assert coverage("Do you ship to Japan?", docs)[0] == 0.5  # half the topic: not enough to answer from
    assert coverage("refund", ["Refundable within 30 days."]) == [0.8]  # a shared 5+ letter prefix
    assert coverage("???", docs) == [0.0, 0.0, 0.0]


def test_the_offline_threshold_decides_when_the_bot_knows() -> None:
    grounded = build_grounding("How long does shipping take?", hits=[[SHIPPING, RETURNS]])
    assert grounded.grounded and grounded.best is not None and grounded.best.source_id == "shipping"
    partial = build_grounding("Do you ship to Japan?", hits=[[SHIPPING]])
    assert not partial.grounded and partial.best is not None and partial.best.score == 0.5
    assert build_grounding("Do you ship to Japan?", hits=[[SHIPPING]], min_score=0.5).grounded
    assert not build_grounding("What is the weather?").grounded  # nothing at all


def test_sources_and_the_knowledge_setting_are_candidates_together() -> None:
    grounding = build_grounding(
        "What is your return policy?", hits=[[SHIPPING, RETURNS]], knowledge=KnowledgeBase(LLM_KNOWLEDGE)
    )
    ids = [e.source_id for e in grounding.excerpts]
    assert set(ids) == {"shipping", "returns", "knowledge-setting"}
    # The excerpts that hold the question's topic (returns) come before the one that does not.
    assert ids[-1] == "shipping"
    setting = next(e for e in grounding.excerpts if e.source_id == "knowledge-setting")
    assert setting.answer == "You can return any unused item within 30 days for a full refund."
    assert setting.citation().public() == {"sourceId": "knowledge-setting", "title": "Knowledge base", "url": None}
    returns = next(e for e in grounding.excerpts if e.source_id == "returns")
    assert returns.answer == "Unused boots come back within 30 days."  # a Q&A chunk answers with its answer


def test_a_follow_up_is_searched_with_the_previous_question_and_its_results_take_turns() -> None:
    history = [ChatTurn("user", "Do you ship abroad?"), ChatTurn("assistant", "We ship to several countries.")]
    assert queries(history, "and to Canada?") == ["and to Canada?", "Do you ship abroad?\nand to Canada?"]
    assert queries([], "Hello") == ["Hello"]
    alone = [hit("misc", f"Canada geese note {i}.", chunk=f"m{i}") for i in range(4)]
    grounding = build_grounding("and to Canada?", history, hits=[alone, [CANADA, SHIPPING]], top=3)
    assert [e.key for e in grounding.excerpts][:2] == ["m0", CANADA["chunkId"]]
    assert len(grounding.excerpts) == 3


def test_citations_are_deduplicated_per_source_page_in_order_of_use() -> None:
    def excerpt(source: str, url: str | None, heading: str = "") -> Excerpt:
        return Excerpt(f"{source}{url}{heading}", source, "Help centre", "t", "t", (heading,) if heading else (), url)

    used = [
        excerpt("site", "https://shop.example/returns#boots", "Boots"),
        excerpt("faq", None),
        excerpt("site", "https://shop.example/returns#tents", "Tents"),  # the same page: cited once
        excerpt("site", "https://shop.example/shipping", "Shipping"),
        excerpt("faq", None),
    ]
    assert [c.public() for c in citations(used)] == [
        {"sourceId": "site", "title": "Help centre \u2013 Boots", "url": "https://shop.example/returns#boots"},
        {"sourceId": "faq", "title": "Help centre", "url": None},
        {"sourceId": "site", "title": "Help centre \u2013 Shipping", "url": "https://shop.example/shipping"},
    ]
    grounding = build_grounding("How long does shipping take?", hits=[[SHIPPING, RETURNS, CANADA]])
    assert [c.source_id for c in grounding.cited([2, 9, 0, 2, 1])] == [grounding.excerpts[1].source_id,
                                                                       grounding.excerpts[0].source_id]  # fmt: skip
