"""Word vectors learned from unlabelled news text: PPMI of window co-occurrences, then truncated SVD.

Used at training time only. With 971 labelled articles most words get no reliable weight of their
own; a word vector says which words occur in the same contexts (in the labelled texts plus, when
given, the unlabelled Wikinews articles: no labels are read), so an article's mean vector lets the
regression give a rare word the weight of the words it resembles.

The article block is linear in the TF-IDF row (`tfidf @ term_vectors`, not renormalised), so after
fitting, its coefficients fold into the TF-IDF coefficients (`fold_coefficients`): the saved model
has the same shape, size and predict cost as one without vectors, and no vector is stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

WINDOW = 5  # co-occurrence window, words either side
MIN_COUNT = 5  # words rarer than this in the corpus get no vector
CONTEXT_SMOOTHING = 0.75  # context counts raised to this power in the PMI denominator


@dataclass(frozen=True, slots=True)
class WordVectors:
    """Unit-length vectors (rows) of `words`."""

    words: dict[str, int]
    vectors: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def learn_word_vectors(
    texts: Iterable[str], analyzer: Callable[[str], list[str]], *, dim: int, seed: int = 0
) -> WordVectors:
    """PPMI (positive pointwise mutual information) of words within WINDOW, reduced by SVD.

    Rows are U x sqrt(S), scaled to unit length. `analyzer` is the featurizer's (same lowercasing
    and stop words). Fewer than `dim + 1` frequent words give fewer dimensions, none gives none.
    """
    documents = [analyzer(text) for text in texts]
    counts = Counter(word for document in documents for word in document)
    vocabulary = sorted(word for word, n in counts.items() if n >= MIN_COUNT)
    index = {word: i for i, word in enumerate(vocabulary)}
    dim = min(dim, len(vocabulary) - 1)
    if dim < 1:
        return WordVectors(words={}, vectors=np.zeros((0, 0)))
    cooccurrence = _cooccurrence(documents, index)
    ppmi = _ppmi(cooccurrence)
    svd = TruncatedSVD(n_components=dim, random_state=seed).fit(ppmi)
    vectors = svd.transform(ppmi) / np.sqrt(np.maximum(svd.singular_values_, 1e-12))
    return WordVectors(words=index, vectors=normalize(vectors))


def _cooccurrence(documents: Sequence[list[str]], index: dict[str, int]) -> sp.csr_matrix:
    rows, cols = [], []
    for document in documents:
        ids = np.array([index.get(word, -1) for word in document], dtype=np.int64)
        for offset in range(1, WINDOW + 1):
            left, right = ids[:-offset], ids[offset:]
            both = (left >= 0) & (right >= 0)
            rows.append(left[both])
            cols.append(right[both])
    n = len(index)
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    pairs = sp.csr_matrix((np.ones(len(row)), (row, col)), shape=(n, n))
    return sp.csr_matrix(pairs + pairs.T)


def _ppmi(cooccurrence: sp.csr_matrix) -> sp.csr_matrix:
    total = cooccurrence.sum()
    word = np.asarray(cooccurrence.sum(axis=1)).ravel() / max(total, 1.0)
    context = np.asarray(cooccurrence.sum(axis=0)).ravel() ** CONTEXT_SMOOTHING
    context = context / max(context.sum(), 1e-12)
    entries = cooccurrence.tocoo()
    pmi = np.log(entries.data / total / (word[entries.row] * context[entries.col]))
    keep = pmi > 0
    return sp.csr_matrix(
        (pmi[keep], (entries.row[keep], entries.col[keep])), shape=cooccurrence.shape
    )


def term_vectors(terms: Sequence[str], vectors: WordVectors) -> np.ndarray:
    """(n_terms x dim) vectors of the featurizer's terms, zero rows for words without one."""
    matrix = np.zeros((len(terms), vectors.dim))
    for i, term in enumerate(terms):
        row = vectors.words.get(term)
        if row is not None:
            matrix[i] = vectors.vectors[row]
    return matrix


def fold_coefficients(
    coef: np.ndarray, *, n_tfidf: int, n_dense: int, term_matrix: np.ndarray, scale: float
) -> np.ndarray:
    """Fold the trailing vector block into the TF-IDF block: x.w + (s x tfidf @ T).v = tfidf.(w + s T v).

    `coef` is (n_tfidf + n_dense + dim,) laid out as the training design (TF-IDF, lexicon, vectors);
    the result is (n_tfidf + n_dense,), giving the same decision for every text.
    """
    tfidf_part = coef[:n_tfidf] + scale * term_matrix @ coef[n_tfidf + n_dense :]
    return np.concatenate([tfidf_part, coef[n_tfidf : n_tfidf + n_dense]])
