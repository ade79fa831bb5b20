"""The model card: provenance, metrics and thresholds beside every saved model (JSON + Markdown)."""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
import skops

from classifiers.data import LABELS, model_text, read_labelled
from classifiers.evaluate import bbc_checks, evaluate_model, evaluate_views, measure_speed
from classifiers.model import TopicModel

DESCRIPTION = (
    "Words counted by scikit-learn's CountVectorizer over every paragraph of a batch in one call, "
    "paragraph rows summed into article rows, weighted by TfidfTransformer (IDF from the training "
    "texts); optionally a 3-column block of topic-word shares from hand-written lists taken from "
    "the annotation guideline (classifiers/lexicon.py); optionally, at training time only, each "
    "article's mean word vector (PPMI+SVD vectors learned from the training and unlabelled texts, "
    "classifiers/wordvectors.py), whose weights are folded into the TF-IDF weights after fitting. "
    "One logistic regression per label (trained on the training data and any supplement of "
    "the project's own articles), sigmoid-calibrated on out-of-fold decisions; a label is "
    "assigned when its probability reaches its threshold (F1-optimal on out-of-fold predictions "
    "of the training data). Paragraphs are scored with the same weights "
    "and thresholds. Stored with skops as a dict of scikit-learn objects, numpy arrays and builtins."
)


def build_card(
    model: TopicModel,
    report: dict[str, Any],
    *,
    train_path: Path,
    dev_path: Path | None = None,
    bbc_path: Path | None = None,
    unlabeled_path: Path | None = None,
    supplement_paths: Sequence[Path] = (),
    annotation_paths: Sequence[Path] = (),
) -> dict[str, Any]:
    """Card contents: versions, data hashes, config, CV, dev and BBC results, speed."""
    card: dict[str, Any] = {
        "version": model.version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "labels": list(model.labels),
        "libraries": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "skops": skops.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "data": {"train": _file_entry(train_path, "trained on")},
        "n_train": report["n_train"],
        "config": report["config"],
        "thresholds": model.thresholds,
        "candidates": report["candidates"],
        "cv": report["cv"],
        "dev": None,
        "dev_views": None,
        "bbc": None,
        "speed": None,
        "notes": report.get("notes", []),
    }
    if unlabeled_path is not None:
        card["data"]["unlabeled"] = _file_entry(unlabeled_path, "word vectors only, no labels")
    for path in supplement_paths:
        card["data"][f"supplement {path.stem}"] = _file_entry(
            path, "trained on in every CV training fold, never scored"
        )
    for path in annotation_paths:
        card["data"][f"annotations {path.stem}"] = _file_entry(
            path,
            "labels for unlabelled articles: trained on in every CV training fold, never scored",
        )
    speed_texts = [model_text(r.title, r.text) for r in read_labelled(dev_path or train_path)]
    if dev_path is not None:
        card["data"]["dev"] = _file_entry(dev_path, "evaluated only")
        dev_records = read_labelled(dev_path)
        card["dev"] = evaluate_model(model, dev_records)
        # The same articles as short inputs: the headline alone, the headline and first sentence.
        card["dev_views"] = evaluate_views(model, dev_records)
    if bbc_path is not None:
        card["data"]["bbc"] = _file_entry(bbc_path, "evaluated only")
        card["bbc"] = bbc_checks(model, bbc_path)
    card["speed"] = measure_speed(model, speed_texts)
    card["speed"]["texts"] = (dev_path or train_path).name
    return card


def _file_entry(path: Path, use: str) -> dict[str, str]:
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "use": use}


def card_markdown(card: dict[str, Any]) -> str:
    """Human-readable rendering of the JSON card (sections absent from the card are skipped)."""
    labels = list(card.get("labels") or LABELS)
    lines = [
        f"# Model card: {card.get('version')}",
        "",
        f"Created {card.get('created', 'unknown')}. Multi-label news topics: {', '.join(labels)}.",
        "",
        DESCRIPTION,
        "",
    ]
    if card.get("libraries"):
        lines += ["## Libraries", *[f"- {k} {v}" for k, v in card["libraries"].items()], ""]
    if isinstance(card.get("data"), dict) and card["data"]:
        lines += [
            "## Data",
            *[
                f"- {key}: `{e['file']}` ({e['use']}), sha256 `{e['sha256']}`"
                for key, e in card["data"].items()
            ],
            "",
        ]
    if card.get("config"):
        lines += ["## Chosen configuration", *[f"- {k}: {v}" for k, v in card["config"].items()]]
        lines.append("")
    if card.get("candidates"):
        lines += [
            "## Candidates (5-fold CV on train, F1 at each label's out-of-fold best threshold)",
            "Count speed: one `Featurizer.count` (or char `transform`) of 500 training articles, "
            "articles/s; only servable rows can be chosen.",
            "",
            "| candidate | features | count/s | CV macro-F1 | " + " | ".join(labels) + " |",
            "|---|---|---|---|" + "---|" * len(labels),
            *[_candidate_row(row, labels) for row in card["candidates"]],
            "",
        ]
    if card.get("thresholds"):
        lines += ["## Thresholds", *[f"- {k}: {v}" for k, v in card["thresholds"].items()], ""]
    if card.get("cv"):
        lines += [
            "## Metrics",
            "| label | CV P | CV R | CV F1 | dev P | dev R | dev F1 | dev support |",
            "|---|---|---|---|---|---|---|---|",
            *[_metric_row(label, card) for label in labels],
            f"| macro-F1 | | | {card['cv']['macro_f1']} | | | {_get(card.get('dev'), 'macro_f1')} | |",
            f"| micro-F1 | | | {card['cv']['micro_f1']} | | | {_get(card.get('dev'), 'micro_f1')} | |",
            "",
        ]
    if card.get("dev_views"):
        lines += [
            "## Dev by view (full article, headline alone, headline + first sentence)",
            "| view | n | macro-F1 | " + " | ".join(f"{label} R" for label in labels) + " |",
            "|---|---|---|" + "---|" * len(labels),
            *[_view_row(view, report, labels) for view, report in card["dev_views"].items()],
            "",
        ]
    for title, key in (("BBC checks (evaluation only)", "bbc"), ("Speed", "speed")):
        section = card.get(key)
        lines += [
            f"## {title}",
            *([f"- {k}: {v}" for k, v in section.items()] if section else ["- not run"]),
            "",
        ]
    if card.get("notes"):
        lines += ["## Notes", *[f"- {note}" for note in card["notes"]], ""]
    return "\n".join(lines)


def _candidate_row(row: dict[str, Any], labels: list[str]) -> str:
    name = row["name"] + ("" if row["servable"] else " (not servable)")
    rate = row.get("count_articles_per_s", "")
    cells = [name, str(row["n_features"]), str(rate), str(row["cv_macro_f1"])]
    return "| " + " | ".join(cells + [str(row["cv_f1"][label]) for label in labels]) + " |"


def _metric_row(label: str, card: dict[str, Any]) -> str:
    cv = card["cv"]["per_label"][label]
    dev = card["dev"]["per_label"][label] if card.get("dev") else {}
    cells = [cv["precision"], cv["recall"], cv["f1"]]
    cells += [dev.get(k, "") for k in ("precision", "recall", "f1", "support")]
    return f"| {label} | " + " | ".join(str(cell) for cell in cells) + " |"


def _get(section: dict[str, Any] | None, key: str) -> Any:
    return section[key] if section else ""


def _view_row(view: str, report: dict[str, Any], labels: list[str]) -> str:
    recalls = [str(_get(report["per_label"].get(label), "recall")) for label in labels]
    return f"| {view} | {report['n']} | {report['macro_f1']} | " + " | ".join(recalls) + " |"
