"""Multi-label metrics and the F1-optimal threshold search shared by training and evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from classifiers.data import LABELS


def label_matrix(label_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """0/1 matrix (records x LABELS)."""
    rows = [[label in labels for label in LABELS] for labels in label_lists]
    return np.array(rows, dtype=np.int8).reshape(len(rows), len(LABELS))


def best_threshold(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The threshold maximising F1 of `scores >= t`, and that F1.

    All cut points are scored at once from the sorted scores. The threshold sits halfway between the
    lowest accepted score and the next lower one, so a new text scoring like the boundary case is not
    decided by a rounding error.
    """
    order = np.argsort(-scores, kind="stable")
    ranked, truth = scores[order], y[order].astype(np.int64)
    last_of_value = np.r_[ranked[1:] != ranked[:-1], True]
    true_positives = np.cumsum(truth)[last_of_value]
    predicted = (np.flatnonzero(last_of_value) + 1).astype(np.float64)
    f1 = 2 * true_positives / (predicted + truth.sum())
    best = int(np.argmax(f1))
    values = ranked[last_of_value]
    lower = values[best + 1] if best + 1 < len(values) else values[best] - 1e-4
    return float((values[best] + lower) / 2), float(f1[best])


def scores_report(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Per-label precision/recall/F1/support, micro-F1 and macro-F1 of 0/1 matrices."""
    per_label = {}
    for j, label in enumerate(LABELS):
        per_label[label] = _prf(truth[:, j], predicted[:, j])
    micro = _prf(truth.ravel(), predicted.ravel())
    return {
        "n": int(truth.shape[0]),
        "per_label": per_label,
        "micro_f1": micro["f1"],
        "macro_f1": round(float(np.mean([v["f1"] for v in per_label.values()])), 4),
    }


def _prf(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    true_positives = int(np.sum((truth == 1) & (predicted == 1)))
    n_predicted, support = int(np.sum(predicted == 1)), int(np.sum(truth == 1))
    precision = true_positives / n_predicted if n_predicted else 0.0
    recall = true_positives / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "support": support,
    }
