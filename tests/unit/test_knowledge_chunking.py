"""Chunking knowledge documents: boundaries, overlap, Q&A pairs, heading paths, anchors, ids (pure)."""

from __future__ import annotations

from shared.knowledge import Chunk, chunk_markdown, chunk_qa, estimate_tokens, slugify
from shared.knowledge.chunking import chunk_id

DOC = """# Shipping
We ship to every country in the EU.

Parcels are tracked.

## Returns & refunds
- Unused items within 30 days.
- Refunds reach your card within a week.

Q: Can I return a gift?
A: Yes, with the gift receipt.
The refund goes to the giver.

# Contact
Write to support.
"""


def _paragraphs(count: int, words: int) -> str:
    """``count`` paragraphs of ``words`` distinct words each (w0 w1 ...), so cuts are visible."""
    n = 0
    paragraphs = []
    for _ in range(count):
        paragraphs.append(" ".join(f"w{n + i}" for i in range(words)) + ".")
        n += words
    return "\n\n".join(paragraphs)


def test_headings_give_paths_anchors_and_small_paragraphs_merge() -> None:
    chunks = chunk_markdown(DOC, source_id="faq.md")
    assert [c.heading_path for c in chunks] == [
        ("Shipping",),
        ("Shipping", "Returns & refunds"),
        ("Shipping", "Returns & refunds"),
        ("Contact",),
    ]
    assert chunks[0].text == "We ship to every country in the EU.\n\nParcels are tracked."  # merged, order kept
    assert chunks[1].text == "- Unused items within 30 days.\n\n- Refunds reach your card within a week."
    assert [c.anchor for c in chunks] == ["shipping", "returns--refunds", "returns--refunds", "contact"]
    assert [c.position for c in chunks] == [0, 1, 2, 3]
    assert all(c.source_id == "faq.md" for c in chunks)


def test_a_qa_pair_is_one_whole_chunk_with_its_question() -> None:
    qa = chunk_markdown(DOC, source_id="faq.md")[2]
    assert qa.text == "Q: Can I return a gift?\nA: Yes, with the gift receipt.\nThe refund goes to the giver."
    assert qa.question == "Can I return a gift?"


def test_a_long_qa_pair_is_never_split_and_prose_around_it_is_not_merged_in() -> None:
    answer = " ".join(f"word{i}" for i in range(2000))
    text = f"# FAQ\nIntro.\n\nQ: Long one?\nA: {answer}\n"
    chunks = chunk_markdown(text, source_id="s", max_tokens=100)
    assert [c.text for c in chunks] == ["Intro.", f"Q: Long one?\nA: {answer}"]
    assert estimate_tokens(chunks[1].text) > 100


def test_a_long_section_is_cut_under_the_limit_with_overlap_between_consecutive_chunks() -> None:
    text = "# Policy\n" + _paragraphs(12, 40)  # 480 words = 624 tokens
    chunks = chunk_markdown(text, source_id="s", max_tokens=260, overlap=0.15)  # 200 words, 30 overlap
    assert len(chunks) >= 3
    assert all(len(c.text.split()) <= 200 for c in chunks)
    words = [c.text.split() for c in chunks]
    for before, after in zip(words, words[1:], strict=False):
        shared = [w for w in after if w in set(before)]
        assert shared and after[: len(shared)] == shared  # the next chunk opens with the previous one's tail
        assert 0 < len(shared) <= 30
    # Nothing lost: every word is in some chunk.
    assert {w for ws in words for w in ws} == set(_paragraphs(12, 40).split())
    assert all(c.heading_path == ("Policy",) for c in chunks)


def test_a_huge_paragraph_is_cut_at_sentences_and_a_huge_sentence_at_words() -> None:
    sentences = " ".join(f"Sentence {i} has a few words in it." for i in range(200))  # 1600 words
    chunks = chunk_markdown(sentences, source_id="s", max_tokens=130)  # 100 words
    assert len(chunks) > 10
    assert all(len(c.text.split()) <= 100 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)  # cut between sentences
    run_on = " ".join(f"x{i}" for i in range(1000))
    cut = chunk_markdown(run_on, source_id="s", max_tokens=130)
    assert all(len(c.text.split()) <= 100 for c in cut)
    assert cut[0].text.split()[-15:] == cut[1].text.split()[:15]  # word windows overlap too
    assert cut[-1].text.endswith("x999")


def test_small_sections_stay_apart_and_empty_headings_give_nothing() -> None:
    chunks = chunk_markdown("# A\n## B\nOne.\n# C\n\n# D\nTwo.", source_id="s")
    assert [(c.heading_path, c.text) for c in chunks] == [(("A", "B"), "One."), (("D",), "Two.")]


def test_plain_text_and_setext_headings_and_code_fences() -> None:
    assert [c.text for c in chunk_markdown("Just text.\r\nMore.", source_id="s")] == ["Just text.\nMore."]
    assert chunk_markdown("", source_id="s") == []
    text = "Setup\n=====\nInstall it.\n\n```\n# not a heading\nQ: not a question\n```\n"
    chunks = chunk_markdown(text, source_id="s")
    assert len(chunks) == 1 and chunks[0].heading_path == ("Setup",) and chunks[0].question == ""
    assert "# not a heading" in chunks[0].text


def test_pages_and_repeated_headings_get_their_own_anchors() -> None:
    assert {c.anchor for c in chunk_markdown(DOC, source_id="manual.pdf", page=7)} == {"page=7"}
    repeated = chunk_markdown("# Notes\nA.\n# Notes\nB.\n# Café & Crème!\nC.", source_id="s")
    assert [c.anchor for c in repeated] == ["notes", "notes-1", "café--crème"]
    assert slugify("  Opening Hours (CET)? ") == "opening-hours-cet"


def test_ids_are_stable_and_change_with_source_anchor_or_text() -> None:
    first, again = chunk_markdown(DOC, source_id="faq.md"), chunk_markdown(DOC, source_id="faq.md")
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert first[0].id == chunk_id("faq.md", "shipping", first[0].text)
    assert {c.id for c in chunk_markdown(DOC, source_id="other.md")}.isdisjoint(c.id for c in first)
    edited = chunk_markdown(DOC.replace("Write to support.", "Call us."), source_id="faq.md")
    assert [c.id for c in edited[:3]] == [c.id for c in first[:3]] and edited[3].id != first[3].id
    assert chunk_id("s", "a", "text") != chunk_id("s", "b", "text")


def test_qa_pairs_each_become_one_chunk() -> None:
    chunks = chunk_qa(
        [("How long  does\nshipping take?", "Three days.\n\nFive abroad."), ("Empty?", " "), ("Returns?", "30 days.")],
        source_id="faq",
        heading_path=["Orders"],
    )
    assert chunks == [
        Chunk(
            chunk_id(
                "faq", "how-long-does-shipping-take", "Q: How long does shipping take?\nA: Three days.\n\nFive abroad."
            ),
            "faq",
            "Q: How long does shipping take?\nA: Three days.\n\nFive abroad.",
            ("Orders",),
            "how-long-does-shipping-take",
            "How long does shipping take?",
            0,
        ),
        Chunk(
            chunk_id("faq", "returns", "Q: Returns?\nA: 30 days."),
            "faq",
            "Q: Returns?\nA: 30 days.",
            ("Orders",),
            "returns",
            "Returns?",
            1,
        ),  # fmt: skip
    ]


def test_token_estimate_is_words_times_1_3() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three four five six seven eight nine ten") == 13
