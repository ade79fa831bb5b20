"""Word TF-IDF features for articles and their paragraphs, built from scikit-learn components.

One count of a batch's paragraphs (`count_words`: what `CountVectorizer.transform` gives, faster)
counts the words of every paragraph; an article's counts are the sum of its paragraphs' rows (a
sparse paragraph->article indicator product), so the text is tokenised once for both levels.
`TfidfTransformer` then weighs both with the IDF learned on the training texts. With unigrams an
article's summed counts equal the counts of its whole text, so training (whole texts) and serving
(summed paragraphs) see the same numbers.

An optional dense block holds one feature per topic: sqrt(share of the text's counted words that are
on that topic's hand-written list from the annotation guideline, see `classifiers.lexicon`) times
`lexicon_scale`. Whether it is used is decided by cross-validation in `classifiers.train`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from classifiers.lexicon import LEXICON


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """What a candidate's features are made of (see `build_featurizer`)."""

    ngram_max: int = 1
    min_df: int = 2
    stop_words: str | None = None
    sublinear_tf: bool = True
    lexicon_scale: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ngram_max": self.ngram_max,
            "min_df": self.min_df,
            "stop_words": self.stop_words,
            "sublinear_tf": self.sublinear_tf,
            "lexicon_scale": self.lexicon_scale,
        }


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """Raw counts of a batch per article and per paragraph, and each paragraph's article index."""

    article: sp.csr_matrix
    paragraph: sp.csr_matrix
    paragraph_article: np.ndarray


class Featurizer:
    """A fitted CountVectorizer + TfidfTransformer, and the lexicon column of each vocabulary term.

    Holds only scikit-learn objects and numpy arrays, so it is stored as its parts (see
    `classifiers.persist`) and rebuilt here at load.
    """

    def __init__(
        self,
        *,
        vectorizer: CountVectorizer,
        tfidf: TfidfTransformer,
        lexicon_topic: np.ndarray,
        lexicon_scale: float,
    ) -> None:
        self.vectorizer = vectorizer
        self.tfidf = tfidf
        self.lexicon_topic = lexicon_topic  # (n_features,) topic column of each term, -1 for none
        self.lexicon_scale = float(lexicon_scale)
        self.terms: np.ndarray = vectorizer.get_feature_names_out()
        n_topics = len(LEXICON)
        on_list = np.flatnonzero(lexicon_topic >= 0)
        self.lexicon_matrix = sp.csr_matrix(
            (np.ones(len(on_list)), (on_list, lexicon_topic[on_list])),
            shape=(len(self.terms), n_topics),
        )
        self._word_columns = word_columns(vectorizer)

    @property
    def n_features(self) -> int:
        return len(self.terms)

    @property
    def n_dense(self) -> int:
        return len(LEXICON) if self.lexicon_scale else 0

    def count(self, documents: Sequence[Sequence[str]]) -> BatchCounts:
        """Count every vocabulary term per paragraph (one transform call) and per article."""
        per_document = np.fromiter(
            (len(d) for d in documents), dtype=np.int64, count=len(documents)
        )
        paragraph_article = np.repeat(np.arange(len(documents)), per_document)
        paragraphs = [paragraph for document in documents for paragraph in document]
        if paragraphs and self._word_columns is not None:
            paragraph_counts = count_words(paragraphs, self._word_columns, self.vectorizer.dtype)
        elif paragraphs:
            paragraph_counts = sp.csr_matrix(self.vectorizer.transform(paragraphs))
        else:
            paragraph_counts = sp.csr_matrix((0, self.n_features))
        indicator = sp.csr_matrix(
            (np.ones(len(paragraphs)), (paragraph_article, np.arange(len(paragraphs)))),
            shape=(len(documents), len(paragraphs)),
        )
        return BatchCounts(
            article=sp.csr_matrix(indicator @ paragraph_counts),
            paragraph=paragraph_counts,
            paragraph_article=paragraph_article,
        )

    def weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """TF-IDF rows of unit length (TfidfTransformer), zero rows for empty texts."""
        if counts.shape[0] == 0:  # TfidfTransformer refuses empty input
            return sp.csr_matrix(counts.shape)
        return sp.csr_matrix(self.tfidf.transform(counts))

    def lexicon(self, counts: sp.csr_matrix) -> np.ndarray:
        """(texts x topics) lexicon block: scale x sqrt(share of counted words on each list)."""
        if not self.lexicon_scale:
            return np.zeros((counts.shape[0], 0))
        hits = np.asarray((counts @ self.lexicon_matrix).todense())
        words = np.asarray(counts.sum(axis=1)).reshape(-1, 1)
        return self.lexicon_scale * np.sqrt(hits / np.maximum(words, 1.0))

    def design(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Model input for training: TF-IDF block then the lexicon block."""
        return sp.hstack([self.weigh(counts), sp.csr_matrix(self.lexicon(counts))], format="csr")


# The words scikit-learn's default pattern, (?u)\b\w\w+\b, finds: a greedy run of word characters
# can only start and end at a word boundary, so the two \b checks change nothing but cost a
# third of the tokenizing time (tests/unit/test_classifiers.py compares the two).
WORD_PATTERN = r"(?u)\w\w+"
SKLEARN_WORD_PATTERN = CountVectorizer().token_pattern

# Word tokens without a regex scan of the text: lower-cased text as UTF-8, every ASCII byte that is
# not a word character turned into a space, split on spaces. Runs of ASCII word characters come out
# as they are; a piece holding other characters (UTF-8 bytes, all >= 128) is re-read by the regex,
# which is right because the bytes cut at are non-word characters for the regex too. Pieces of one
# character are left in: no vocabulary term is that short, so they are never counted.
_ASCII_WORD_BYTES = frozenset((string.ascii_letters + string.digits + "_").encode())
_NON_WORD_TO_SPACE = bytes(b if b in _ASCII_WORD_BYTES or b >= 128 else 32 for b in range(256))
_WORDS = re.compile(WORD_PATTERN)
_UTF8, _SURROGATES = "utf-8", "surrogatepass"  # lone surrogates (unclean text) round-trip


def word_tokens(text: str) -> list[bytes]:
    """The words `WORD_PATTERN` finds in ``text.lower()`` (plus one-character pieces), as UTF-8."""
    lowered = text.lower()
    pieces = lowered.encode(_UTF8, _SURROGATES).translate(_NON_WORD_TO_SPACE).split()
    if lowered.isascii():
        return pieces
    tokens: list[bytes] = []
    for piece in pieces:
        if piece.isascii():
            tokens.append(piece)
        else:
            words = _WORDS.findall(piece.decode(_UTF8, _SURROGATES))
            tokens.extend(word.encode(_UTF8, _SURROGATES) for word in words)
    return tokens


def word_columns(vectorizer: CountVectorizer) -> dict[bytes, int] | None:
    """Column of each vocabulary term keyed by its UTF-8 bytes, when `count_words` counts exactly
    what ``vectorizer.transform`` counts: lower-cased single words of the default pattern, a
    vocabulary of such words only (stop words are never in it, so they are never counted). None
    for any other set-up, which keeps ``transform``."""
    stop = vectorizer.get_stop_words() or frozenset()
    plain = (
        vectorizer.analyzer == "word"
        and tuple(vectorizer.ngram_range) == (1, 1)
        and vectorizer.lowercase
        and not vectorizer.binary
        and vectorizer.input == "content"
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and vectorizer.strip_accents is None
        and vectorizer.token_pattern in (WORD_PATTERN, SKLEARN_WORD_PATTERN)
    )
    if not plain or not hasattr(vectorizer, "vocabulary_"):
        return None
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    if any(term in stop or _WORDS.fullmatch(term) is None for term in vocabulary):
        return None
    return {term.encode(_UTF8, _SURROGATES): column for term, column in vocabulary.items()}


def count_words(texts: Sequence[str], columns: dict[bytes, int], dtype: Any) -> sp.csr_matrix:
    """``CountVectorizer.transform(texts)`` for a vectorizer `word_columns` accepts, with the
    tokens looked up in one C-level pass instead of a Python loop per token."""
    tokens: list[bytes] = []
    per_text = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        words = word_tokens(text)
        tokens.extend(words)
        per_text[i] = len(words)
    column = np.fromiter(map(columns.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
    row = np.repeat(np.arange(len(texts)), per_text)
    counted = column >= 0
    matrix = sp.csr_matrix(
        (np.ones(int(counted.sum()), dtype=dtype), (row[counted], column[counted])),
        shape=(len(texts), len(columns)),
    )
    matrix.sum_duplicates()  # sorted indices, one entry per term: as transform gives
    return matrix


def build_featurizer(config: FeatureConfig, texts: Sequence[str]) -> Featurizer:
    """Fit the vocabulary (document frequency >= min_df, plus the lexicon words) and the IDF.

    Lexicon words rarer than min_df are added to the vocabulary so the lexicon block can count them
    (that is the point of the lists: words too rare to learn a weight of their own).
    """
    options: dict[str, Any] = {
        "token_pattern": WORD_PATTERN,
        "ngram_range": (1, config.ngram_max),
        "stop_words": config.stop_words,
        "dtype": np.float64,
    }
    chosen = CountVectorizer(min_df=config.min_df, **options).fit(texts)
    vocabulary = set(chosen.get_feature_names_out().tolist())
    if config.lexicon_scale:
        stop = chosen.get_stop_words() or frozenset()
        vocabulary |= {word for words in LEXICON.values() for word in words if word not in stop}
    vectorizer = CountVectorizer(vocabulary=sorted(vocabulary), **options).fit(texts)
    counts = vectorizer.transform(texts)
    tfidf = TfidfTransformer(sublinear_tf=config.sublinear_tf).fit(counts)
    return Featurizer(
        vectorizer=vectorizer,
        tfidf=tfidf,
        lexicon_topic=lexicon_columns(vectorizer, config.lexicon_scale),
        lexicon_scale=config.lexicon_scale,
    )


def lexicon_columns(vectorizer: CountVectorizer, lexicon_scale: float) -> np.ndarray:
    """Topic column (LEXICON order = LABELS order) of each vocabulary term, -1 for none."""
    columns = np.full(len(vectorizer.vocabulary_), -1, dtype=np.int64)
    if lexicon_scale:
        for column, words in enumerate(LEXICON.values()):
            for word in words:
                index = vectorizer.vocabulary_.get(word)
                if index is not None:
                    columns[index] = column
    return columns
