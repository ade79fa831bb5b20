"""Training: compare configurations by cross-validation, fit the winner, calibrate, pick thresholds.

Run `python -m classifiers.train --data TRAIN --out DIR [--dev DEV] [--bbc BBC]` to build the shipped
model (see `main`). Only TRAIN is learned from; DEV and BBC are reported in the model card.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from classifiers.card import build_card
from classifiers.data import (
    LABELS,
    LabelledRecord,
    model_text,
    read_labelled,
    read_supplement,
    read_unlabeled,
)
from classifiers.features import FeatureConfig, Featurizer, build_featurizer
from classifiers.metrics import best_threshold, label_matrix, scores_report
from classifiers.model import TopicModel, split_paragraphs
from classifiers.persist import save_model
from classifiers.wordvectors import (
    MIN_COUNT,
    WINDOW,
    WordVectors,
    fold_coefficients,
    learn_word_vectors,
    term_vectors,
)

Progress = Callable[[int, int, str], None]
_Texts = tuple[list[str], np.ndarray]  # model texts and their (texts x LABELS) 0/1 targets
CV_FOLDS = 5
MAX_ITER = 5000
CV_TOLERANCE = 0.005


@dataclass(frozen=True, slots=True)
class Candidate:
    """One configuration compared by cross-validation on the training data."""

    name: str
    features: FeatureConfig
    c: float = 30.0
    class_weight: str | None = None
    servable: bool = True
    vectors: int = 0  # word-vector dimensions (0: none), see classifiers.wordvectors
    vector_scale: float = 0.25


_LEX = 2.0
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("word1 C=30", FeatureConfig()),
    Candidate("word1 +lexicon C=30", FeatureConfig(lexicon_scale=_LEX)),
    Candidate("word1 stop-en C=30", FeatureConfig(stop_words="english")),
    Candidate(
        "word1 stop-en +lexicon C=10", FeatureConfig(stop_words="english", lexicon_scale=_LEX), 10.0
    ),
    Candidate(
        "word1 stop-en +lexicon C=30", FeatureConfig(stop_words="english", lexicon_scale=_LEX)
    ),
    Candidate(
        "word1 stop-en +lexicon C=30 balanced",
        FeatureConfig(stop_words="english", lexicon_scale=_LEX),
        class_weight="balanced",
    ),
    # Word vectors (PPMI + SVD of train + unlabeled text, no labels read) appended as the article's
    # mean vector and folded into the TF-IDF weights after fitting: same model size and speed.
    # 100 dimensions and scale 0.25 were chosen by CV (see the notes).
    Candidate(
        "word1 stop-en +lexicon +wordvec100 C=30",
        FeatureConfig(stop_words="english", lexicon_scale=_LEX),
        vectors=100,
    ),
    Candidate(
        "word1 stop-en +lexicon +wordvec100 C=10",
        FeatureConfig(stop_words="english", lexicon_scale=_LEX),
        10.0,
        vectors=100,
    ),
    Candidate(
        "word1 stop-en +lexicon C=100",
        FeatureConfig(stop_words="english", lexicon_scale=_LEX),
        100.0,
    ),
    Candidate(
        "word1 raw-tf stop-en +lexicon C=30",
        FeatureConfig(stop_words="english", sublinear_tf=False, lexicon_scale=_LEX),
    ),
    # Word bigrams: sklearn's analyser counts them ~1.6x slower than unigrams; a 500-article
    # predict with paragraphs and explanations measured 3,721 articles/s (unigrams: 5,423), so they
    # are servable, with less headroom over the 3,000/s budget.
    Candidate(
        "word1-2 stop-en +lexicon C=30",
        FeatureConfig(ngram_max=2, stop_words="english", lexicon_scale=_LEX),
    ),
)
# Char n-grams are scored for the comparison only: sklearn's char analyser is several times slower
# than word counting, so they would have to win clearly to be worth serving.
CHAR_REFERENCE = Candidate("char_wb2-5 C=30 (reference)", FeatureConfig(), servable=False)
SPEED_PROBE = 500
# Ideas measured during development, and why the design is what it is: classifiers/NOTES.md.
NOTES = "The lab notes of this design, measured and not re-run by training: classifiers/NOTES.md"


def train_model(
    records: Sequence[LabelledRecord],
    *,
    unlabeled: Sequence[str] = (),
    supplement: Sequence[LabelledRecord] = (),
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[TopicModel, dict[str, Any]]:
    """Pick the best candidate by CV macro-F1, fit it on all records, return model and report.

    `unlabeled` texts (no labels) only add to the corpus word vectors are learned from.
    `supplement` records are learned from in every CV training fold and in the final fit but are
    never scored: CV metrics, calibration and thresholds come from `records` alone (see
    classifiers/supplement/README.md for why the shipped model has one).
    """
    texts = [model_text(record.title, record.text) for record in records]
    targets = label_matrix([record.labels for record in records])
    _check_trainable(targets)
    extra_texts = [model_text(record.title, record.text) for record in supplement]
    extra_targets = label_matrix([record.labels for record in supplement])
    total = len(CANDIDATES) + 2 + len(LABELS)
    step = _Stepper(total, progress)
    vectors = _VectorCache([*texts, *extra_texts, *unlabeled], seed)
    rows = []
    for candidate in CANDIDATES:
        step(f"cross-validating {candidate.name}")
        featurizer = build_featurizer(candidate.features, [*texts, *extra_texts])
        rows.append(
            _cv_row(
                candidate, featurizer, vectors, (texts, targets), (extra_texts, extra_targets), seed
            )
        )
    step(f"cross-validating {CHAR_REFERENCE.name}")
    rows.append(_char_row((texts, targets), (extra_texts, extra_targets), seed))
    best = _choose(rows)
    chosen = next(c for c in CANDIDATES if c.name == best["name"])
    step(f"fitting {chosen.name} on all {len(records) + len(supplement)} records")
    featurizer = build_featurizer(chosen.features, [*texts, *extra_texts])
    terms = vectors.term_matrix(chosen, featurizer)
    counts = featurizer.count([split_paragraphs(t) for t in texts]).article
    design = _design(chosen, featurizer, terms, counts)
    extra = _Supplement.of(chosen, featurizer, terms, extra_texts, extra_targets)
    fits = []
    for j, label in enumerate(LABELS):
        step(f"calibrating {label}")
        fits.append(_fit_label(chosen, design, targets[:, j], seed, extra.label(j)))
    coef = np.vstack([fit.coef for fit in fits])
    if terms is not None:
        coef = np.vstack(
            [
                fold_coefficients(
                    row,
                    n_tfidf=featurizer.n_features,
                    n_dense=featurizer.n_dense,
                    term_matrix=terms,
                    scale=chosen.vector_scale,
                )
                for row in coef
            ]
        )
    model = TopicModel(
        version=_version([*records, *supplement], unlabeled),
        labels=LABELS,
        featurizer=featurizer,
        coef=coef,
        intercept=np.array([fit.intercept for fit in fits]),
        calibration=np.array([[fit.a, fit.b] for fit in fits]),
        thresholds={label: fit.threshold for label, fit in zip(LABELS, fits, strict=True)},
        config=_config(
            chosen,
            featurizer,
            seed,
            n_vector_texts=len(texts) + len(extra_texts) + len(unlabeled),
            n_supplement=len(supplement),
        ),
    )
    if terms is not None:  # folding must not change a single decision
        check = featurizer.design(counts)
        folded = np.asarray(check @ coef.T) + model.intercept
        unfolded = np.column_stack([design @ fit.coef for fit in fits]) + model.intercept
        if not np.allclose(folded, unfolded, atol=1e-8):
            raise RuntimeError("folding the word-vector weights changed the decisions")
    oof = np.column_stack([fit.oof for fit in fits])
    report = {
        "version": model.version,
        "n_train": len(records),
        "n_supplement": len(supplement),
        "config": model.config,
        "candidates": rows,
        "thresholds": model.thresholds,
        "cv": scores_report(targets, oof >= np.array([fit.threshold for fit in fits])),
        "notes": [NOTES],
    }
    return model, report


def _choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Fewest features among servable candidates within CV_TOLERANCE of the best CV macro-F1.

    Differences that small are CV noise on 971 articles; fewer features mean a smaller model file
    and a faster predict.
    """
    servable = [row for row in rows if row["servable"]]
    top = max(row["cv_macro_f1"] for row in servable)
    close = [row for row in servable if row["cv_macro_f1"] >= top - CV_TOLERANCE]
    return min(close, key=lambda row: (row["n_features"], -row["cv_macro_f1"]))


class _Stepper:
    """Calls the optional progress callback with (step, total, description)."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, description: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, description)


def _check_trainable(targets: np.ndarray) -> None:
    """Every label needs positives and negatives in every fold, or the CV is meaningless."""
    for j, label in enumerate(LABELS):
        positives = int(targets[:, j].sum())
        if min(positives, len(targets) - positives) < CV_FOLDS:
            raise ValueError(
                f"label {label!r} has {positives} positive(s) in {len(targets)} records: need at "
                f"least {CV_FOLDS} positives and {CV_FOLDS} negatives for {CV_FOLDS}-fold CV"
            )


def _classifier(candidate: Candidate, seed: int) -> LogisticRegression:
    return LogisticRegression(
        C=candidate.c, class_weight=candidate.class_weight, max_iter=MAX_ITER, random_state=seed
    )


def _folds(seed: int) -> StratifiedKFold:
    return StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)


@dataclass(frozen=True, slots=True)
class _Supplement:
    """Supplement rows (design and 0/1 targets): added to every training fold, never scored."""

    design: sp.csr_matrix | None  # None: no supplement
    targets: np.ndarray

    @classmethod
    def of(
        cls,
        candidate: Candidate,
        featurizer: Featurizer,
        terms: np.ndarray | None,
        texts: list[str],
        targets: np.ndarray,
    ) -> _Supplement:
        if not texts:
            return cls(None, targets)
        counts = featurizer.count([split_paragraphs(text) for text in texts]).article
        return cls(_design(candidate, featurizer, terms, counts), targets)

    def label(self, j: int) -> _Supplement:
        return _Supplement(self.design, self.targets[:, j : j + 1])


def _fit_with(
    classifier: LogisticRegression, design: sp.csr_matrix, y: np.ndarray, extra: _Supplement
) -> LogisticRegression:
    if extra.design is None:
        return classifier.fit(design, y)
    stacked = sp.vstack([design, extra.design], format="csr")
    return classifier.fit(stacked, np.r_[y, extra.targets[:, 0]])


def _oof_decision(
    candidate: Candidate,
    design: sp.csr_matrix,
    y: np.ndarray,
    seed: int,
    extra: _Supplement,
) -> np.ndarray:
    """Out-of-fold decisions of the records; supplement rows join every training fold."""
    oof = np.zeros(design.shape[0])
    for train, test in _folds(seed).split(design, y):
        fitted = _fit_with(_classifier(candidate, seed), design[train], y[train], extra)
        oof[test] = fitted.decision_function(design[test])
    return oof


def _cv_row(
    candidate: Candidate,
    featurizer: Featurizer,
    vectors: _VectorCache,
    data: _Texts,
    supplement: _Texts,
    seed: int,
) -> dict[str, Any]:
    """CV F1 per label at each label's best out-of-fold threshold, their mean, and counting speed.

    Vocabulary, IDF and word vectors come from all training texts (no labels involved) to keep CV
    cheap. `n_features` counts the served columns (word-vector columns fold into the TF-IDF ones).
    """
    texts, targets = data
    documents = [split_paragraphs(text) for text in texts]
    counts = featurizer.count(documents).article
    terms = vectors.term_matrix(candidate, featurizer)
    design = _design(candidate, featurizer, terms, counts)
    extra = _Supplement.of(candidate, featurizer, terms, *supplement)
    probe = [documents[i % len(documents)] for i in range(SPEED_PROBE)]
    started = time.perf_counter()
    featurizer.count(probe)
    rate = SPEED_PROBE / (time.perf_counter() - started)
    row = _scored_row(
        candidate, design, targets, seed, extra, n_served=design.shape[1] - candidate.vectors
    )
    row["count_articles_per_s"] = round(rate)
    return row


def _design(
    candidate: Candidate, featurizer: Featurizer, terms: np.ndarray | None, counts: sp.csr_matrix
) -> sp.csr_matrix:
    """Training design: TF-IDF, lexicon block, then (if any) the scaled mean word vector."""
    design = featurizer.design(counts)
    if terms is None:
        return design
    mean_vector = candidate.vector_scale * np.asarray(featurizer.weigh(counts) @ terms)
    return sp.hstack([design, sp.csr_matrix(mean_vector)], format="csr")


class _VectorCache:
    """Word vectors learned once per (dimensions, analyzer settings) and shared by candidates."""

    def __init__(self, corpus: list[str], seed: int) -> None:
        self.corpus, self.seed = corpus, seed
        self.learned: dict[tuple[int, str | None], WordVectors] = {}

    def term_matrix(self, candidate: Candidate, featurizer: Featurizer) -> np.ndarray | None:
        """(terms x dim) vectors of the featurizer's terms; None for a candidate without vectors.

        A corpus too small for the requested dimensions gives fewer (the candidate's padded with
        zero columns, so its design keeps `candidate.vectors` trailing columns).
        """
        if not candidate.vectors:
            return None
        key = (candidate.vectors, candidate.features.stop_words)
        if key not in self.learned:
            self.learned[key] = learn_word_vectors(
                self.corpus,
                featurizer.vectorizer.build_analyzer(),
                dim=candidate.vectors,
                seed=self.seed,
            )
        matrix = term_vectors(featurizer.terms.tolist(), self.learned[key])
        padded = np.zeros((featurizer.n_features, candidate.vectors))
        padded[:, : matrix.shape[1]] = matrix
        return padded


def _scored_row(
    candidate: Candidate,
    design: sp.csr_matrix,
    targets: np.ndarray,
    seed: int,
    extra: _Supplement,
    *,
    n_served: int | None = None,
) -> dict[str, Any]:
    f1 = {}
    for j, label in enumerate(LABELS):
        oof = _oof_decision(candidate, design, targets[:, j], seed, extra.label(j))
        f1[label] = best_threshold(oof, targets[:, j])[1]
    return {
        "name": candidate.name,
        "servable": candidate.servable,
        "n_features": design.shape[1] if n_served is None else n_served,
        "cv_f1": {label: round(value, 4) for label, value in f1.items()},
        "cv_macro_f1": round(float(np.mean(list(f1.values()))), 4),
    }


def _char_row(data: _Texts, supplement: _Texts, seed: int) -> dict[str, Any]:
    texts, targets = data
    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, dtype=np.float64
    )
    vectorizer.fit([*texts, *supplement[0]])
    design = vectorizer.transform(texts)
    extra = _Supplement(
        vectorizer.transform(supplement[0]) if supplement[0] else None, supplement[1]
    )
    probe = [texts[i % len(texts)] for i in range(SPEED_PROBE)]
    started = time.perf_counter()
    vectorizer.transform(probe)
    rate = SPEED_PROBE / (time.perf_counter() - started)
    row = _scored_row(CHAR_REFERENCE, design, targets, seed, extra)
    row["count_articles_per_s"] = round(rate)
    return row


@dataclass(frozen=True, slots=True)
class _LabelFit:
    coef: np.ndarray
    intercept: float
    a: float
    b: float
    threshold: float
    oof: np.ndarray  # out-of-fold calibrated probabilities of the training records


def _fit_label(
    candidate: Candidate, design: sp.csr_matrix, y: np.ndarray, seed: int, extra: _Supplement
) -> _LabelFit:
    """Fit on records + supplement; Platt-calibrate and threshold on the records' out-of-fold decisions.

    This is what CalibratedClassifierCV(method="sigmoid", ensemble=False) does, except that the
    supplement joins every training fold and is never scored; `platt_scaling` fits the same
    sigmoid as scikit-learn's (a test compares them).
    """
    fitted = _fit_with(_classifier(candidate, seed), design, y, extra)
    oof_decision = _oof_decision(candidate, design, y, seed, extra)
    a, b = platt_scaling(oof_decision, y)
    oof = np.round(1 / (1 + np.exp(a * oof_decision + b)), 4)
    threshold, _ = best_threshold(oof, y)
    return _LabelFit(
        coef=fitted.coef_[0].copy(),
        intercept=float(fitted.intercept_[0]),
        a=a,
        b=b,
        threshold=round(float(threshold), 4),
        oof=oof,
    )


def platt_scaling(decision: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of P(y=1) = 1 / (1 + exp(a * decision + b)), fitted as Platt (1999) prescribes.

    Platt's regularised targets ((positives + 1) / (positives + 2) for a positive, 1 / (negatives
    + 2) for a negative) keep the sigmoid finite when the decisions separate the classes; they are
    given to an unpenalised logistic regression as two rows per record weighted t and 1 - t.
    """
    positives = int(y.sum())
    negatives = len(y) - positives
    target = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    x = np.r_[decision, decision].reshape(-1, 1)
    labels = np.r_[np.ones(len(y)), np.zeros(len(y))]
    weights = np.r_[target, 1 - target]
    fit = LogisticRegression(C=np.inf, max_iter=MAX_ITER).fit(x, labels, sample_weight=weights)
    return float(-fit.coef_[0, 0]), float(-fit.intercept_[0])


def _config(
    candidate: Candidate,
    featurizer: Featurizer,
    seed: int,
    *,
    n_vector_texts: int,
    n_supplement: int,
) -> dict[str, Any]:
    vectors = (
        f"{candidate.vectors}-d PPMI+SVD word vectors of {n_vector_texts} texts (window "
        f"{WINDOW}, min count {MIN_COUNT}), mean vector x{candidate.vector_scale}, folded into "
        "the TF-IDF weights"
        if candidate.vectors
        else None
    )
    return {
        "candidate": candidate.name,
        "features": "sklearn CountVectorizer (paragraph rows summed per article) + TfidfTransformer",
        **candidate.features.as_dict(),
        "C": candidate.c,
        "class_weight": candidate.class_weight,
        "word_vectors": vectors,
        "n_features": featurizer.n_features,
        "n_lexicon_features": featurizer.n_dense,
        "calibration": "sigmoid (Platt) fitted on 5-fold out-of-fold decisions of the training data",
        "threshold_rule": "per-label F1-optimal on 5-fold out-of-fold calibrated probabilities",
        "paragraph_thresholds": "same as article thresholds",
        "supplement": (
            f"{n_supplement} supplement articles in every training fold and the final fit, "
            "never scored"
            if n_supplement
            else None
        ),
        "seed": seed,
    }


def _version(records: Sequence[LabelledRecord], unlabeled: Sequence[str] = ()) -> str:
    """`tfidf-lr-<UTC date>-<8 hex of the training data>`: same data, same day, same id.

    Unlabelled texts (word vectors only) count as training data here: they change the weights.
    """
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps([record.title, record.text, record.labels]).encode())
    for text in unlabeled:
        digest.update(json.dumps(text).encode())
    return f"tfidf-lr-{dt.datetime.now(dt.UTC):%Y.%m.%d}-{digest.hexdigest()[:8]}"


def train_and_save(
    *,
    data: Path,
    out: Path,
    dev: Path | None = None,
    bbc: Path | None = None,
    unlabeled: Path | None = None,
    supplement: Sequence[Path] = (),
    annotations: Sequence[Path] = (),
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Read the data, train, write the model and its card (library versions, data hashes, CV,
    dev and BBC results, speed) to ``out``; return the model file and the card. The one way to
    train: ``make train`` (``python -m classifiers.train``) and ``newsclass train`` both call it.
    Unreadable or inconsistent data raises ``OSError`` or ``ValueError`` saying what is wrong."""
    records = read_labelled(data)
    texts = read_unlabeled(unlabeled) if unlabeled else []
    extra = read_supplement(supplement, annotations, unlabeled)
    if dev is not None:
        read_labelled(dev)  # a bad dev file fails before the training, not after it
    model, report = train_model(
        records, unlabeled=texts, supplement=extra, seed=seed, progress=progress
    )
    card = build_card(
        model,
        report,
        train_path=data,
        dev_path=dev,
        bbc_path=bbc,
        unlabeled_path=unlabeled,
        supplement_paths=supplement,
        annotation_paths=annotations,
    )
    return save_model(model, out, card=card), card


def main(argv: Sequence[str] | None = None) -> None:
    """Train on --data, report on --dev/--bbc, and save the model and its card to --out."""
    parser = argparse.ArgumentParser(prog="python -m classifiers.train", description=main.__doc__)
    parser.add_argument("--data", type=Path, required=True, help="labelled training JSONL/CSV")
    parser.add_argument("--out", type=Path, required=True, help="directory for model + card")
    parser.add_argument("--dev", type=Path, help="labelled dev set, reported not trained on")
    parser.add_argument("--bbc", type=Path, help="BBC JSONL for the no-label/politics checks")
    parser.add_argument(
        "--unlabeled", type=Path, help="unlabelled JSONL/CSV, only to learn word vectors from"
    )
    parser.add_argument(
        "--supplement",
        type=Path,
        action="append",
        default=[],
        help="labelled JSONL/CSV learned from but never scored (repeatable)",
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        action="append",
        default=[],
        help="JSONL of id + labels for articles of --unlabeled: learned from, never scored",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def show(step: int, total: int, description: str) -> None:
        print(f"[{step}/{total}] {description}", flush=True)

    try:
        path, card = train_and_save(
            data=args.data,
            out=args.out,
            dev=args.dev,
            bbc=args.bbc,
            unlabeled=args.unlabeled,
            supplement=args.supplement,
            annotations=args.annotations,
            seed=args.seed,
            progress=show,
        )
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    print(json.dumps({k: card[k] for k in ("version", "cv", "dev", "bbc", "speed")}, indent=1))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
