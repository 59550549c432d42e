"""The knowledge index: add, remove, search and ranking on a tiny hand-made corpus (SQLite in memory or a file)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shared.knowledge import Chunk, KnowledgeIndex, chunk_markdown, chunk_qa, query_words

SHIPPING = """# Shipping
Standard delivery takes three to five business days within the EU. Express parcels arrive the next day.

# Returns
Unused items can be sent back within 30 days for a full refund to the original payment card.
"""
ACCOUNT = """# Account
To reset your password, open the sign-in page and choose "Forgot password"; a link arrives by e-mail.

# Invoices
Business customers may pay by invoice, due within 14 days.
"""
FRENCH = """# Livraison
La livraison à domicile est gratuite dès 50 euros. Le café et le thé sont expédiés séparément.
"""


def _corpus() -> list[Chunk]:
    return [
        *chunk_markdown(SHIPPING, source_id="shipping.md"),
        *chunk_markdown(ACCOUNT, source_id="account.md"),
        *chunk_markdown(FRENCH, source_id="fr.md"),
        *chunk_qa([("Do you ship to Norway?", "Yes, with customs fees paid by the recipient.")], source_id="faq"),
    ]


def _top(index: KnowledgeIndex, query: str) -> tuple[str, str]:
    hits = index.search(query)
    assert hits, f"nothing found for {query!r}"
    return hits[0].chunk.source_id, hits[0].chunk.anchor


def test_paraphrased_questions_find_the_right_chunk() -> None:
    index = KnowledgeIndex.build(_corpus())
    assert _top(index, "How many days until my parcel is delivered?") == ("shipping.md", "shipping")
    assert _top(index, "I forgot my password, what do I do?") == ("account.md", "account")
    assert _top(index, "can I get a refund if I send things back") == ("shipping.md", "returns")
    assert _top(index, "paying with invoices") == ("account.md", "invoices")  # stemming: invoices ~ invoice


def test_a_heading_or_question_word_outranks_the_same_word_in_passing() -> None:
    # BM25 only counts a word that is in fewer than half the chunks: the corpus gives it that.
    corpus = _corpus()
    chunks = [
        *corpus,
        *chunk_markdown(
            "# Returns\nSend it back in its box, with every part and the manual, within a month.", source_id="a"
        ),
        *chunk_markdown("# Gifts\nWrapped gifts are welcome. Returns need a receipt.", source_id="b"),  # shorter
    ]
    assert _top(KnowledgeIndex.build(chunks), "returns") == ("a", "returns")
    faq = chunk_qa(
        [("Do we sell abroad?", "Yes."), ("Customs?", "Abroad, customs fees apply to parcels.")], source_id="q"
    )
    assert KnowledgeIndex.build([*corpus, *faq]).search("selling abroad")[0].chunk.question == "Do we sell abroad?"


def test_hits_are_whole_chunks_best_first() -> None:
    index = KnowledgeIndex.build(_corpus())
    hits = index.search("parcels delivery customs", top=3)
    assert len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.score > 0 for h in hits)
    qa = next(h.chunk for h in index.search("Norway") if h.chunk.source_id == "faq")
    assert qa == _corpus()[-1]  # the chunk round-trips: text, heading path, anchor, question, id


def test_accents_case_and_other_languages_match() -> None:
    index = KnowledgeIndex.build(_corpus())
    assert _top(index, "LIVRAISON gratuite")[0] == "fr.md"
    assert _top(index, "cafe et the")[0] == "fr.md"  # no accents typed
    assert _top(index, "Café")[0] == "fr.md"


def test_a_removed_source_never_comes_back() -> None:
    index = KnowledgeIndex.build(_corpus())
    assert index.remove("shipping.md") == 2
    assert index.remove("shipping.md") == 0
    for query in ("delivery business days", "refund", "express parcels", "shipping"):
        assert all(hit.chunk.source_id != "shipping.md" for hit in index.search(query, top=50))
    assert index.chunks_of("shipping.md") == []
    assert _top(index, "reset password")[0] == "account.md"  # the others are untouched


def test_add_skips_known_chunks_and_replace_reingests_a_source() -> None:
    index = KnowledgeIndex.build(_corpus())
    total = index.count()
    assert index.add(_corpus()) == 0 and index.count() == total
    edited = chunk_markdown(ACCOUNT.replace("14 days", "30 days"), source_id="account.md")
    assert index.replace("account.md", edited) == 2
    assert index.count() == total
    assert [c.text for c in index.chunks_of("account.md")] == [c.text for c in edited]
    assert "30 days" in index.search("invoice due")[0].chunk.text


def test_queries_of_only_stop_words_or_fts_syntax_are_safe() -> None:
    index = KnowledgeIndex.build(_corpus())
    assert query_words("How do I ship to the EU?") == ["ship", "EU"]
    assert query_words("how do I") == ["how", "do", "I"]
    assert index.search("") == [] and index.search("?!") == [] and index.search("refund", top=0) == []
    assert index.search('NEAR(refund) OR "col: AND ( *') != []  # typed syntax is just words
    assert index.search("zzzz") == []


def test_a_file_backed_index_reopens_and_is_shared_between_threads(tmp_path: Path) -> None:
    path = tmp_path / "knowledge.sqlite"
    KnowledgeIndex.build(_corpus(), path=path).close()
    index = KnowledgeIndex.open(path=path)
    assert _top(index, "password reset")[0] == "account.md"
    errors: list[BaseException] = []

    def search() -> None:
        try:
            for _ in range(50):
                assert index.search("refund")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    index.close()
    with pytest.raises(FileNotFoundError):
        KnowledgeIndex.open(path=tmp_path / "missing.sqlite")
