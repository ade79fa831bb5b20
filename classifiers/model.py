"""The fitted topic model and its batch prediction: scores, labels, paragraph breakdown, explanations.

Everything the model computes is linear up to a per-label sigmoid, so a whole batch is a handful of
sparse products: P(label) = 1 / (1 + exp(a * (x . w + b0) + b)), where (w, b0) is the logistic
regression and (a, b) its Platt calibration (sklearn's CalibratedClassifierCV, method="sigmoid").
Paragraphs are scored with the same weights and the same per-label thresholds as articles: a
paragraph is read as a short article.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from classifiers.data import split_paragraphs
from classifiers.features import BatchCounts, Featurizer

EXPLANATION_TERMS = 5


@dataclass(frozen=True, slots=True)
class ParagraphPrediction:
    """Scores of one paragraph of `split_paragraphs(text)`, `index` counting from 0."""

    index: int
    labels: list[str]
    scores: dict[str, float]


@dataclass(frozen=True, slots=True)
class Prediction:
    """Article-level result: assigned labels (may be empty), every label's score, and why."""

    labels: list[str]
    scores: dict[str, float]
    primary: str | None
    paragraphs: list[ParagraphPrediction] = field(default_factory=list)
    explanation: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored and served by the worker."""
        return {
            "labels": list(self.labels),
            "scores": dict(self.scores),
            "primary": self.primary,
            "paragraphs": [
                {"index": p.index, "labels": list(p.labels), "scores": dict(p.scores)}
                for p in self.paragraphs
            ],
            "explanation": {label: list(terms) for label, terms in self.explanation.items()},
        }


class TopicModel:
    """Featurizer + per-label calibrated logistic regressions + per-label F1-optimal thresholds."""

    def __init__(
        self,
        *,
        version: str,
        labels: tuple[str, ...],
        featurizer: Featurizer,
        coef: np.ndarray,
        intercept: np.ndarray,
        calibration: np.ndarray,
        thresholds: dict[str, float],
        config: dict[str, Any],
    ) -> None:
        self.version = version
        self.labels = tuple(labels)
        self.featurizer = featurizer
        self.coef = coef  # (n_labels, n_features + n_lexicon): TF-IDF block, lexicon block
        self.intercept = intercept  # (n_labels,)
        self.calibration = calibration  # (n_labels, 2): Platt a, b
        self.thresholds = dict(thresholds)
        self.config = dict(config)
        expected = (len(self.labels), featurizer.n_features + featurizer.n_dense)
        if coef.shape != expected:
            raise ValueError(f"coefficients have shape {coef.shape}, features need {expected}")

    def predict(
        self, texts: Sequence[str], *, paragraphs: bool = True, explain: bool = True
    ) -> list[Prediction]:
        """Classify a batch of model texts (see `model_text`) in one vectorised pass."""
        documents = [split_paragraphs(text) for text in texts]
        counts = self.featurizer.count(documents)
        tfidf = self.featurizer.weigh(counts.article)
        scores = self._scores(tfidf, self.featurizer.lexicon(counts.article))
        assigned = scores >= self._threshold_vector()
        paragraph_results: list[list[ParagraphPrediction]] = [[] for _ in texts]
        if paragraphs:
            paragraph_results = self._paragraphs(counts, len(texts))
        explanations: list[dict[str, list[str]]] = [{} for _ in texts]
        if explain:
            explanations = self._explain(tfidf, counts.article, assigned)
        rows = zip(scores.tolist(), assigned.tolist(), paragraph_results, explanations, strict=True)
        return [self._prediction(*row) for row in rows]

    def _threshold_vector(self) -> np.ndarray:
        return np.array([self.thresholds[label] for label in self.labels])

    def _scores(self, tfidf: sp.csr_matrix, lexicon: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, rounded to 4 dp so labels agree with the scores shown."""
        n = self.featurizer.n_features
        decision = np.asarray(tfidf @ self.coef[:, :n].T) + self.intercept
        if lexicon.shape[1]:
            decision = decision + lexicon @ self.coef[:, n:].T
        a, b = self.calibration[:, 0], self.calibration[:, 1]
        return np.round(expit(-(a * decision + b)), 4)

    def _paragraphs(self, counts: BatchCounts, n_articles: int) -> list[list[ParagraphPrediction]]:
        tfidf = self.featurizer.weigh(counts.paragraph)
        scores = self._scores(tfidf, self.featurizer.lexicon(counts.paragraph))
        assigned = scores >= self._threshold_vector()
        results: list[list[ParagraphPrediction]] = [[] for _ in range(n_articles)]
        rows = zip(
            counts.paragraph_article.tolist(), scores.tolist(), assigned.tolist(), strict=True
        )
        for article, row_scores, row_assigned in rows:
            labels, label_scores = self._labelled(row_scores, row_assigned)
            index = len(results[article])
            results[article].append(ParagraphPrediction(index, labels, label_scores))
        return results

    def _explain(
        self, tfidf: sp.csr_matrix, counts: sp.csr_matrix, assigned: np.ndarray
    ) -> list[dict[str, list[str]]]:
        """Top terms by contribution towards each assigned label.

        A term's contribution is its tf-idf value x its coefficient, plus its part of the lexicon
        block: each topic column's contribution (value x coefficient) is shared among the text's
        words on that list in proportion to their counts, so a list word such as "tariffs" is shown
        when the list pushed the label up.
        """
        n_features = self.featurizer.n_features
        terms = self.featurizer.terms
        explanations: list[dict[str, list[str]]] = [{} for _ in range(tfidf.shape[0])]
        for j, label in enumerate(self.labels):
            rows = np.flatnonzero(assigned[:, j])
            if not len(rows):
                continue
            direction = -np.sign(self.calibration[j, 0]) or 1.0
            contribution = sp.csr_matrix(
                tfidf[rows].multiply(direction * self.coef[j, :n_features])
            )
            if self.featurizer.n_dense:
                contribution = contribution + self._lexicon_share(
                    counts[rows], direction * self.coef[j, n_features:]
                )
            for k, row in enumerate(rows.tolist()):
                start, end = contribution.indptr[k], contribution.indptr[k + 1]
                values = contribution.data[start:end]
                top = np.argsort(-values, kind="stable")[:EXPLANATION_TERMS]
                top = top[values[top] > 0]
                explanations[row][label] = terms[contribution.indices[start:end][top]].tolist()
        return explanations

    def _lexicon_share(self, counts: sp.csr_matrix, coef: np.ndarray) -> sp.csr_matrix:
        """Each list word's share of its topic column's contribution (rows x terms)."""
        featurizer = self.featurizer
        per_topic = featurizer.lexicon(counts) * coef  # rows x topics
        hits = np.asarray((counts @ featurizer.lexicon_matrix).todense())
        factor = per_topic / np.maximum(hits, 1.0)
        counts = sp.csr_matrix(counts, copy=True)
        row_of_entry = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        topic = featurizer.lexicon_topic[counts.indices]
        on_list = topic >= 0
        counts.data = np.where(
            on_list, counts.data * factor[row_of_entry, np.maximum(topic, 0)], 0.0
        )
        counts.eliminate_zeros()
        return counts

    def _labelled(
        self, scores: list[float], assigned: list[bool]
    ) -> tuple[list[str], dict[str, float]]:
        """One row, as Python lists: a numpy call per row would cost more than the row's work."""
        label_scores = dict(zip(self.labels, scores, strict=True))
        labels = [label for label, on in zip(self.labels, assigned, strict=True) if on]
        labels.sort(key=lambda label: -label_scores[label])
        return labels, label_scores

    def _prediction(
        self,
        scores: list[float],
        assigned: list[bool],
        paragraphs: list[ParagraphPrediction],
        explanation: dict[str, list[str]],
    ) -> Prediction:
        labels, label_scores = self._labelled(scores, assigned)
        ordered = {label: explanation[label] for label in labels if label in explanation}
        return Prediction(
            labels=labels,
            scores=label_scores,
            primary=labels[0] if labels else None,
            paragraphs=paragraphs,
            explanation=ordered,
        )
