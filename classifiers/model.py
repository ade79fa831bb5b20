"""The fitted topic model and its batch prediction: scores, labels, paragraph breakdown, explanations.

Everything the model computes is linear up to a per-label sigmoid, so a whole batch is a handful of
sparse products: P(label) = 1 / (1 + exp(a * (x . w + b0) + b)), where (w, b0) is the logistic
regression and (a, b) its Platt calibration (sklearn's CalibratedClassifierCV, method="sigmoid").
Paragraphs are scored with the same weights and the same per-label thresholds as articles: a
paragraph is read as a short article whose lead is the paragraph itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from classifiers.features import BatchCounts, TextFeaturizer

MIN_PARAGRAPH_CHARS = 40
EXPLANATION_TERMS = 5
_LINE_BREAKS = re.compile(r"\s*\n\s*")


def split_paragraphs(text: str) -> list[str]:
    """Blocks separated by line breaks; a fragment shorter than 40 characters joins its neighbour.

    Short fragments (a headline, a one-line quote) are too thin to score on their own; they join the
    following block, or the previous one when they come last. Non-empty text gives >= 1 paragraph.
    """
    pieces = [piece for piece in _LINE_BREAKS.split(text.strip()) if piece]
    paragraphs: list[str] = []
    pending = ""
    for piece in pieces:
        joined = f"{pending} {piece}" if pending else piece
        if len(joined) < MIN_PARAGRAPH_CHARS:
            pending = joined
        else:
            paragraphs.append(joined)
            pending = ""
    if pending:
        if paragraphs:
            paragraphs[-1] = f"{paragraphs[-1]} {pending}"
        else:
            paragraphs.append(pending)
    return paragraphs


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
        featurizer: TextFeaturizer,
        coef: np.ndarray,
        intercept: np.ndarray,
        calibration: np.ndarray,
        thresholds: dict[str, float],
        config: dict[str, Any],
    ) -> None:
        self.version = version
        self.labels = tuple(labels)
        self.featurizer = featurizer
        self.coef = coef  # (n_labels, 2 * n_features + n_labels): full, lead, lexicon blocks
        self.intercept = intercept  # (n_labels,)
        self.calibration = calibration  # (n_labels, 2): Platt a, b
        self.thresholds = dict(thresholds)
        self.config = dict(config)

    def predict(
        self, texts: Sequence[str], *, paragraphs: bool = True, explain: bool = True
    ) -> list[Prediction]:
        """Classify a batch of model texts (see `model_text`) in one vectorised pass."""
        documents = [split_paragraphs(text) for text in texts]
        counts = self.featurizer.count(documents)
        full = self.featurizer.weigh(counts.article_full, self.featurizer.idf_full)
        lead = self.featurizer.weigh(counts.article_lead, self.featurizer.idf_lead)
        scores = self._scores(full, lead, counts.article_lexicon)
        assigned = scores >= self._threshold_vector()
        paragraph_results: list[list[ParagraphPrediction]] = [[] for _ in texts]
        if paragraphs:
            paragraph_results = self._paragraphs(counts, len(texts))
        explanations: list[dict[str, list[str]]] = [{} for _ in texts]
        if explain:
            explanations = self._explain(full, lead, assigned)
        return [
            self._prediction(row_scores, row_assigned, paragraph_results[i], explanations[i])
            for i, (row_scores, row_assigned) in enumerate(zip(scores, assigned, strict=True))
        ]

    def _threshold_vector(self) -> np.ndarray:
        return np.array([self.thresholds[label] for label in self.labels])

    def _scores(self, full: sp.csr_matrix, lead: sp.csr_matrix, lexicon: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, rounded to 4 dp so labels agree with the scores shown."""
        n = self.featurizer.n_features
        weight = self.featurizer.lead_weight
        decision = full @ self.coef[:, :n].T + weight * (lead @ self.coef[:, n : 2 * n].T)
        decision = np.asarray(decision) + lexicon @ self.coef[:, 2 * n :].T + self.intercept
        a, b = self.calibration[:, 0], self.calibration[:, 1]
        return np.round(expit(-(a * decision + b)), 4)

    def _paragraphs(self, counts: BatchCounts, n_articles: int) -> list[list[ParagraphPrediction]]:
        full = self.featurizer.weigh(counts.paragraph_full, self.featurizer.idf_full)
        lead = self.featurizer.weigh(counts.paragraph_lead, self.featurizer.idf_lead)
        scores = self._scores(full, lead, counts.paragraph_lexicon)
        assigned = scores >= self._threshold_vector()
        results: list[list[ParagraphPrediction]] = [[] for _ in range(n_articles)]
        for row, article in enumerate(counts.paragraph_article.tolist()):
            labels, label_scores = self._labelled(scores[row], assigned[row])
            index = len(results[article])
            results[article].append(ParagraphPrediction(index, labels, label_scores))
        return results

    def _explain(
        self, full: sp.csr_matrix, lead: sp.csr_matrix, assigned: np.ndarray
    ) -> list[dict[str, list[str]]]:
        """Top terms by contribution (tf-idf value x coefficient, full and lead summed per term).

        The lexicon block is left out: it is a share of many words, not a term a reader can check.
        """
        n_features = self.featurizer.n_features
        weight = self.featurizer.lead_weight
        terms = self.featurizer.terms
        explanations: list[dict[str, list[str]]] = [{} for _ in range(full.shape[0])]
        for j, label in enumerate(self.labels):
            rows = np.flatnonzero(assigned[:, j])
            if not len(rows):
                continue
            direction = -np.sign(self.calibration[j, 0]) or 1.0
            coef = direction * self.coef[j]
            contribution = sp.csr_matrix(
                full[rows].multiply(coef[:n_features])
                + lead[rows].multiply(weight * coef[n_features : 2 * n_features])
            )
            for k, row in enumerate(rows.tolist()):
                start, end = contribution.indptr[k], contribution.indptr[k + 1]
                values = contribution.data[start:end]
                top = np.argsort(-values, kind="stable")[:EXPLANATION_TERMS]
                top = top[values[top] > 0]
                explanations[row][label] = [terms[i] for i in contribution.indices[start:end][top]]
        return explanations

    def _labelled(
        self, scores: np.ndarray, assigned: np.ndarray
    ) -> tuple[list[str], dict[str, float]]:
        label_scores = dict(zip(self.labels, scores.tolist(), strict=True))
        labels = [self.labels[j] for j in np.flatnonzero(assigned)]
        labels.sort(key=lambda label: -label_scores[label])
        return labels, label_scores

    def _prediction(
        self,
        scores: np.ndarray,
        assigned: np.ndarray,
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
