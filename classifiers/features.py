"""Fast word 1-2gram TF-IDF features for articles and their paragraphs, from one tokenisation.

Why not sklearn's TfidfVectorizer: the worker needs thousands of articles per second per core with a
per-paragraph breakdown. Here every paragraph of a batch is tokenised once (one regex pass, one dict
lookup per token), bigrams are found with a vectorised sorted-key search, and an article's counts are
the sum of its paragraphs' counts. Bigrams never cross a paragraph break, in training and serving alike.

Two blocks of features share one vocabulary: `full` (every token of the text) and `lead` (the first
`lead_tokens` tokens: title and opening sentences). The annotation guideline labels a topic when it is
in the headline or lead, so the lead block lets the model weigh it separately from passing mentions.
A third, dense block holds one guideline-lexicon feature per topic (see `classifiers.lexicon`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, pairwise, repeat
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from classifiers.lexicon import LEXICON

TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of two or more characters (sklearn's default token pattern)."""
    return TOKEN_RE.findall(text.lower())


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """Raw term counts of a batch per article and per paragraph (full text, lead), and the dense
    lexicon block (already scaled) per article and per paragraph."""

    article_full: sp.csr_matrix
    article_lead: sp.csr_matrix
    article_lexicon: np.ndarray
    paragraph_full: sp.csr_matrix
    paragraph_lead: sp.csr_matrix
    paragraph_lexicon: np.ndarray
    paragraph_article: np.ndarray  # article index of each paragraph


class TextFeaturizer:
    """Vocabulary, IDF weights and the counting/weighting code; fitted once on the training texts."""

    def __init__(
        self,
        *,
        bigrams: bool = True,
        min_df: int = 2,
        max_features: int | None = None,
        sublinear_tf: bool = True,
        lead_tokens: int = 60,
        lead_weight: float = 0.5,
        lexicon_scale: float = 0.0,
    ) -> None:
        self.bigrams = bigrams
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.lead_tokens = lead_tokens
        self.lead_weight = lead_weight
        self.lexicon_scale = lexicon_scale
        self.tokens: list[str] = []
        self.terms: list[str] = []
        self.unigram_feature = np.zeros(1, dtype=np.int32)
        self.bigram_keys = np.zeros(0, dtype=np.int64)
        self.bigram_feature = np.zeros(0, dtype=np.int32)
        self.lexicon_of_token = np.zeros(1, dtype=np.int32)
        self.idf_full = np.zeros(0)
        self.idf_lead = np.zeros(0)
        self._index: dict[str, int] = {}

    # skops stores the state below; the token->id dict is rebuilt on load rather than stored.
    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_index"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._index = {token: i for i, token in enumerate(self.tokens, start=1)}

    @property
    def n_features(self) -> int:
        return len(self.terms)

    def fit(self, documents: Sequence[Sequence[str]]) -> TextFeaturizer:
        """Choose the vocabulary (document frequency >= min_df) and IDF from paragraph lists."""
        document_frequency: Counter[tuple[str, ...]] = Counter()
        for paragraphs in documents:
            document_frequency.update(set(self._grams(paragraphs)))
        kept = [gram for gram, df in document_frequency.items() if df >= self.min_df]
        kept.sort(key=lambda gram: (-document_frequency[gram], gram))
        kept = sorted(kept[: self.max_features])
        self._set_vocabulary(kept)
        counts = self.count(documents)
        self.idf_full = _idf(counts.article_full)
        self.idf_lead = _idf(counts.article_lead)
        return self

    def _grams(self, paragraphs: Sequence[str]) -> list[tuple[str, ...]]:
        grams: list[tuple[str, ...]] = []
        for paragraph in paragraphs:
            words = tokenize(paragraph)
            grams.extend((word,) for word in words)
            if self.bigrams:
                grams.extend(pairwise(words))
        return grams

    def _set_vocabulary(self, grams: list[tuple[str, ...]]) -> None:
        self.terms = [" ".join(gram) for gram in grams]
        lexicon_words = set().union(*LEXICON.values()) if self.lexicon_scale else set()
        self.tokens = sorted({word for gram in grams for word in gram} | lexicon_words)
        self._index = {token: i for i, token in enumerate(self.tokens, start=1)}
        self.unigram_feature = np.full(len(self.tokens) + 1, -1, dtype=np.int32)
        self.lexicon_of_token = np.full(len(self.tokens) + 1, -1, dtype=np.int32)
        for column, words in enumerate(LEXICON.values()):
            for word in words & lexicon_words:
                self.lexicon_of_token[self._index[word]] = column
        keys, features = [], []
        for feature, gram in enumerate(grams):
            ids = [self._index[word] for word in gram]
            if len(ids) == 1:
                self.unigram_feature[ids[0]] = feature
            else:
                keys.append(ids[0] * (len(self.tokens) + 1) + ids[1])
                features.append(feature)
        order = np.argsort(np.asarray(keys, dtype=np.int64))
        self.bigram_keys = np.asarray(keys, dtype=np.int64)[order]
        self.bigram_feature = np.asarray(features, dtype=np.int32)[order]

    def count(self, documents: Sequence[Sequence[str]]) -> BatchCounts:
        """Count every vocabulary term per paragraph and per article, full text and lead."""
        paragraphs = [paragraph for document in documents for paragraph in document]
        per_document = np.fromiter(
            (len(d) for d in documents), dtype=np.int64, count=len(documents)
        )
        paragraph_article = np.repeat(np.arange(len(documents)), per_document)
        get = self._index.get
        id_lists = [list(map(get, tokenize(p), repeat(0))) for p in paragraphs]
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
        positions = _positions(lengths, paragraph_article, len(documents))
        feature, paragraph, in_article, in_paragraph, span = self._features(ids, lengths, positions)
        lead = self.lead_tokens
        article = paragraph_article[paragraph]
        shape_a = (len(documents), self.n_features)
        shape_p = (len(paragraphs), self.n_features)
        return BatchCounts(
            article_full=_counts(article, feature, shape_a),
            article_lead=_counts(*_where(in_article + span <= lead, article, feature), shape_a),
            article_lexicon=self._lexicon(ids, lengths, paragraph_article, len(documents)),
            paragraph_full=_counts(paragraph, feature, shape_p),
            paragraph_lead=_counts(
                *_where(in_paragraph + span <= lead, paragraph, feature), shape_p
            ),
            paragraph_lexicon=self._lexicon(ids, lengths, np.arange(len(lengths)), len(lengths)),
            paragraph_article=paragraph_article,
        )

    def _lexicon(
        self, ids: np.ndarray, lengths: np.ndarray, group_of_paragraph: np.ndarray, n_groups: int
    ) -> np.ndarray:
        """sqrt(share of a group's tokens on each topic list) x lexicon_scale, groups x topics."""
        topic = self.lexicon_of_token[ids]
        group = np.repeat(group_of_paragraph, lengths)
        hits = topic >= 0
        shares = np.zeros((n_groups, len(LEXICON)))
        np.add.at(shares, (group[hits], topic[hits]), 1.0)
        tokens = np.bincount(group_of_paragraph, weights=lengths, minlength=n_groups)
        shares /= np.maximum(tokens, 1.0)[:, None]
        return self.lexicon_scale * np.sqrt(shares)

    def _features(
        self, ids: np.ndarray, lengths: np.ndarray, positions: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, ...]:
        """Feature occurrences: (feature, paragraph, position in article/paragraph, n tokens)."""
        in_article, in_paragraph = positions
        paragraph = np.repeat(np.arange(len(lengths)), lengths)
        unigram = self.unigram_feature[ids]
        found = unigram >= 0
        parts = [(unigram[found], paragraph[found], in_article[found], in_paragraph[found], 1)]
        if self.bigrams and len(self.bigram_keys) and len(ids) > 1:
            keys = ids[:-1] * (len(self.tokens) + 1) + ids[1:]
            slot = np.minimum(np.searchsorted(self.bigram_keys, keys), len(self.bigram_keys) - 1)
            found = (self.bigram_keys[slot] == keys) & (paragraph[:-1] == paragraph[1:])
            found &= (ids[:-1] > 0) & (ids[1:] > 0)
            parts.append(
                (
                    self.bigram_feature[slot[found]],
                    paragraph[:-1][found],
                    in_article[:-1][found],
                    in_paragraph[:-1][found],
                    2,
                )
            )
        columns = [np.concatenate([part[k] for part in parts]) for k in range(4)]
        span = np.concatenate([np.full(len(part[0]), part[4]) for part in parts])
        return (*columns, span)

    def transform(
        self, full: sp.csr_matrix, lead: sp.csr_matrix, lexicon: np.ndarray
    ) -> sp.csr_matrix:
        """Model input: TF-IDF of the full text, weighted TF-IDF of the lead, lexicon shares."""
        return sp.hstack(
            [
                self.weigh(full, self.idf_full),
                self.lead_weight * self.weigh(lead, self.idf_lead),
                sp.csr_matrix(lexicon),
            ],
            format="csr",
        )

    def weigh(self, counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
        """(Sublinear) tf times idf, rows scaled to unit length so long and short texts compare."""
        weighted = counts.astype(np.float64)
        if self.sublinear_tf:
            np.log(weighted.data, out=weighted.data)
            weighted.data += 1.0
        weighted.data *= idf[weighted.indices]
        if weighted.shape[0] == 0:  # sklearn's normalize refuses empty input
            return weighted
        return normalize(weighted, copy=False)


def _positions(
    lengths: np.ndarray, paragraph_article: np.ndarray, n_documents: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each token's position within its article and within its paragraph."""
    total = int(lengths.sum())
    paragraph_start = (np.cumsum(lengths) - lengths).astype(np.int64)
    first_paragraph = np.searchsorted(paragraph_article, np.arange(n_documents))
    article_start = np.zeros(n_documents, dtype=np.int64)
    has_paragraphs = first_paragraph < len(lengths)
    article_start[has_paragraphs] = paragraph_start[first_paragraph[has_paragraphs]]
    offsets = np.arange(total, dtype=np.int64)
    in_paragraph = offsets - np.repeat(paragraph_start, lengths)
    in_article = offsets - np.repeat(article_start[paragraph_article], lengths)
    return in_article, in_paragraph


def _where(
    mask: np.ndarray, rows: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return rows[mask], columns[mask]


def _counts(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    data = np.ones(len(rows), dtype=np.float64)
    matrix = sp.csr_matrix((data, (rows, columns)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _idf(counts: sp.csr_matrix) -> np.ndarray:
    """Smoothed IDF, as sklearn's TfidfTransformer computes it."""
    n_documents = counts.shape[0]
    document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    return np.log((1.0 + n_documents) / (1.0 + document_frequency)) + 1.0
