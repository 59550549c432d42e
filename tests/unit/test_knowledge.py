"""Knowledge passages and keyword relevance (pure, no I/O)."""

from __future__ import annotations

import pytest

from shared.llm import KnowledgeBase, LlmSettings, Passage
from shared.llm._text import fold, stem, terms
from shared.llm.knowledge import read_knowledge_text, split_passages

FAQ = """# Shipping
Q: How long does shipping take?
A: Standard shipping takes 3 to 5 business days; express shipping arrives the next day.

Q: What is your return policy?
A: You can return any unused item within 30 days for a full refund.
Refunds reach your card within a week.

# Opening hours
Our support team is available Monday to Friday, 9:00 to 17:00 CET.

Holidays follow the French calendar.

## Can I pay by invoice?
Yes, business customers can pay by invoice.

Invoices are due within 14 days.

**Question:** Où êtes-vous situés ?
**Answer:** Nos bureaux sont à Lyon.
"""


def test_passages_come_from_qa_pairs_headings_and_paragraphs() -> None:
    passages = split_passages(FAQ)
    assert passages[0] == Passage(
        "How long does shipping take?",
        "Standard shipping takes 3 to 5 business days; express shipping arrives the next day.",
        "Shipping",
    )
    assert passages[1].title == "What is your return policy?"
    assert passages[1].text.endswith("Refunds reach your card within a week.")  # multi-line answer kept
    hours = [p for p in passages if p.title == "Opening hours"]
    assert [p.text[:8] for p in hours] == ["Our supp", "Holidays"]  # one passage per paragraph
    invoice = [p for p in passages if p.title == "Can I pay by invoice?"]
    assert len(invoice) == 1 and "due within 14 days" in invoice[0].text  # a question heading keeps its answer whole
    assert passages[-1].title == "Où êtes-vous situés ?" and passages[-1].text == "Nos bureaux sont à Lyon."


def test_plain_paragraphs_and_empty_text() -> None:
    assert split_passages("") == []
    assert split_passages("\n\n  \n") == []
    assert [p.text for p in split_passages("One.\r\n\r\nTwo\nlines.")] == ["One.", "Two\nlines."]


def test_folding_and_stemming_make_variants_meet() -> None:
    assert fold("RÉEMBOURSEMENT Ça") == "reemboursement ca"
    assert stem("shipping") == stem("ships") == stem("ship") == "ship"
    assert stem("policies") == stem("policy") == "policy"
    assert stem("refunds") == "refund"
    assert terms("How do I get a refund, please?") == ["refund"]  # stop words and filler dropped


def test_the_passage_that_covers_the_question_ranks_first_with_a_full_score() -> None:
    kb = KnowledgeBase(FAQ)
    top = kb.top_passages("How long does shipping take?", k=3)
    assert top[0].passage.title == "How long does shipping take?"
    assert top[0].score == 1.0
    assert len(top) > 1 and all(other.score < 0.5 for other in top[1:])
    assert kb.top_passages("When are you open?")[0].passage.title == "Opening hours"  # opening ~ open
    assert kb.top_passages("refund")[0].passage.title == "What is your return policy?"


def test_accents_and_case_do_not_matter() -> None:
    kb = KnowledgeBase(FAQ)
    assert kb.top_passages("OÙ SONT VOS BUREAUX")[0].passage.text == "Nos bureaux sont à Lyon."
    assert kb.top_passages("ou sont vos bureaux")[0].score == kb.top_passages("Où sont vos bureaux ?")[0].score


def test_prefix_matches_count_but_less_than_exact_ones() -> None:
    kb = KnowledgeBase("Q: Is the deposit refundable?\nA: Yes.\n\nQ: Where is the shop?\nA: In Lyon.")
    partial = kb.top_passages("refund deposit")[0]
    exact = kb.top_passages("refundable deposit")[0]
    assert partial.passage.title == exact.passage.title == "Is the deposit refundable?"
    assert 0.5 < partial.score < exact.score == 1.0


def test_rare_words_weigh_more_than_common_ones() -> None:
    # "order" is in every passage, "cancel" in one: a question with both is about cancelling.
    kb = KnowledgeBase(
        "Q: How do I track an order?\nA: Use the order page.\n\n"
        "Q: How do I cancel an order?\nA: Email us within an hour of the order.\n\n"
        "Q: Can I change an order?\nA: Only before it ships; every order ships daily."
    )
    top = kb.top_passages("cancel my order", k=3)
    assert top[0].passage.title == "How do I cancel an order?"
    assert top[0].score == 1.0 and top[1].score < 0.3


def test_unknown_questions_score_low_or_not_at_all() -> None:
    kb = KnowledgeBase(FAQ)
    assert kb.top_passages("Can you repair my quantum flux capacitor?") == []
    assert kb.top_passages("hello") == []  # nothing but stop words
    partial = kb.top_passages("return policy for quantum flux capacitors")
    assert partial and partial[0].score < 0.5  # a known topic inside an unknown question is not a match
    assert KnowledgeBase("").top_passages("shipping") == []


def test_top_passages_respects_k_and_min_score() -> None:
    kb = KnowledgeBase(FAQ)
    assert len(kb.top_passages("shipping refund invoice", k=2)) == 2
    kept = kb.top_passages("shipping refund invoice", k=5, min_score=0.4)
    assert kept and all(s.score > 0.4 for s in kept)


def test_render_is_compact_prompt_text() -> None:
    qa, paragraph = Passage("Q?", "A.", "Sec"), Passage("Title", "Body")
    assert qa.render() == "[Sec] Q: Q?\nA: A."
    assert paragraph.render() == "Title\nBody"
    long = Passage("", "word " * 1000).render(max_chars=50)
    assert len(long) <= 54 and long.endswith(" ...")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("Q: A?\\nA: B.", "Q: A?\nA: B."), ("Line one\nline \\n two", "Line one\nline \\n two")],
)
def test_literal_newlines_in_a_one_line_app_setting_become_line_breaks(given: str, expected: str) -> None:
    assert read_knowledge_text(LlmSettings(knowledge_text=given, knowledge_file="")) == expected
