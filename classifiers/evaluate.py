"""Evaluation: labelled-set metrics, the BBC sanity checks and the batch speed measurement."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.data import LABELS, LabelledRecord, model_text
from classifiers.metrics import label_matrix, scores_report
from classifiers.model import TopicModel

SPEED_BATCH = 500
# What a short input looks like: the whole article, its headline alone, the headline and its
# first sentence (a feed entry's title and summary, a wire alert).
VIEWS = ("full", "title", "lead")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
LEAD_CHARS = 400


def evaluate_model(model: TopicModel, records: Sequence[LabelledRecord]) -> dict[str, Any]:
    """{"n", "per_label": {label: {precision, recall, f1, support}}, "micro_f1", "macro_f1"}."""
    return _scores(model, [model_text(record.title, record.text) for record in records], records)


def view_text(record: LabelledRecord, view: str) -> str | None:
    """The text of ``record`` seen as ``view`` (see VIEWS); None where the record has no such
    view (no title, or a title written from the first sentence rather than the publisher's)."""
    if view == "full":
        return model_text(record.title, record.text)
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    if not record.title.strip() or record.title_derived:
        return None
    if view == "title":
        return record.title
    first = _SENTENCE_END.split(record.text.strip(), maxsplit=1)[0][:LEAD_CHARS]
    return model_text(record.title, first)


def evaluate_views(
    model: TopicModel, records: Sequence[LabelledRecord], views: Sequence[str] = VIEWS
) -> dict[str, dict[str, Any]]:
    """``evaluate_model`` on each view of the records that have it: {view: report}."""
    reports = {}
    for view in views:
        pairs = [(text, r) for r in records if (text := view_text(r, view)) is not None]
        reports[view] = _scores(model, [t for t, _ in pairs], [r for _, r in pairs])
    return reports


def _scores(
    model: TopicModel, texts: Sequence[str], records: Sequence[LabelledRecord]
) -> dict[str, Any]:
    predictions = model.predict(list(texts), paragraphs=False, explain=False)
    truth = label_matrix([record.labels for record in records])
    predicted = label_matrix([prediction.labels for prediction in predictions])
    return scores_report(truth, predicted)


def bbc_checks(model: TopicModel, path: str | Path) -> dict[str, Any]:
    """Share of BBC sport/entertainment/tech with no label, and of politics with domestic_politics.

    BBC business articles (labels null) are skipped: they may or may not be about trade.
    """
    rows = [
        json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line
    ]
    scored = [row for row in rows if row.get("labels") is not None]
    texts = [model_text(row.get("title") or "", row["text"]) for row in scored]
    predictions = model.predict(texts, paragraphs=False, explain=False)
    no_label = [
        not p.labels for row, p in zip(scored, predictions, strict=True) if not row["labels"]
    ]
    politics = [
        "domestic_politics" in p.labels
        for row, p in zip(scored, predictions, strict=True)
        if row["labels"] == ["domestic_politics"]
    ]
    fired = {
        label: sum(
            label in p.labels
            for row, p in zip(scored, predictions, strict=True)
            if not row["labels"]
        )
        for label in LABELS
    }
    return {
        "non_news_n": len(no_label),
        "non_news_no_label_rate": round(float(np.mean(no_label)), 4) if no_label else None,
        "non_news_fired": fired,
        "politics_n": len(politics),
        "politics_domestic_politics_rate": round(float(np.mean(politics)), 4) if politics else None,
    }


def measure_speed(model: TopicModel, texts: Sequence[str], *, repeats: int = 5) -> dict[str, Any]:
    """Best-of-N throughput of one `predict` call on a 500-article batch, paragraphs + explanations.

    Measured single-threaded in-process; the best run is reported because the others mostly
    measure other processes on the machine.
    """
    batch = [texts[i % len(texts)] for i in range(SPEED_BATCH)]
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict(batch, paragraphs=True, explain=True)
        timings.append(time.perf_counter() - started)
    best = min(timings)
    return {
        "batch": SPEED_BATCH,
        "mean_chars": round(float(np.mean([len(text) for text in batch]))),
        "seconds_best": round(best, 4),
        "articles_per_s": round(SPEED_BATCH / best),
        "paragraphs": True,
        "explain": True,
    }
