"""The model card: provenance, metrics and thresholds beside every saved model (JSON + Markdown)."""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
import skops

from classifiers.data import model_text, read_labelled
from classifiers.evaluate import bbc_checks, evaluate_model, measure_speed
from classifiers.model import TopicModel


def build_card(
    model: TopicModel,
    report: dict[str, Any],
    *,
    train_path: Path,
    dev_path: Path | None = None,
    bbc_path: Path | None = None,
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
        "bbc": None,
        "speed": None,
    }
    speed_texts = [model_text(r.title, r.text) for r in read_labelled(dev_path or train_path)]
    if dev_path is not None:
        card["data"]["dev"] = _file_entry(dev_path, "evaluated only")
        card["dev"] = evaluate_model(model, read_labelled(dev_path))
    if bbc_path is not None:
        card["data"]["bbc"] = _file_entry(bbc_path, "evaluated only")
        card["bbc"] = bbc_checks(model, bbc_path)
    card["speed"] = measure_speed(model, speed_texts)
    card["speed"]["texts"] = (dev_path or train_path).name
    return card


def _file_entry(path: Path, use: str) -> dict[str, str]:
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "use": use}


def card_markdown(card: dict[str, Any]) -> str:
    """Human-readable rendering of the JSON card."""
    lines = [
        f"# Model card: {card['version']}",
        "",
        f"Created {card['created']}. Multi-label news topics: {', '.join(card['labels'])}.",
        "Word 1-2gram TF-IDF (full text + lead block), one logistic regression per label, sigmoid-"
        "calibrated; a label is assigned when its probability reaches its threshold. Paragraphs use "
        "the article thresholds.",
        "",
        "## Libraries",
        *[f"- {name} {version}" for name, version in card["libraries"].items()],
        "",
        "## Data",
        *[
            f"- {key}: `{e['file']}` ({e['use']}), sha256 `{e['sha256']}`"
            for key, e in card["data"].items()
        ],
        "",
        "## Chosen configuration",
        *[f"- {key}: {value}" for key, value in card["config"].items()],
        "",
        "## Candidates (5-fold CV on train, F1 at each label's out-of-fold best threshold)",
        "| candidate | features | CV macro-F1 | " + " | ".join(card["labels"]) + " |",
        "|---|---|---|" + "---|" * len(card["labels"]),
        *[_candidate_row(row, card["labels"]) for row in card["candidates"]],
        "",
        "## Thresholds",
        *[f"- {label}: {value}" for label, value in card["thresholds"].items()],
        "",
        "## Metrics",
        "| label | CV P | CV R | CV F1 | dev P | dev R | dev F1 | dev support |",
        "|---|---|---|---|---|---|---|---|",
        *[_metric_row(label, card) for label in card["labels"]],
        f"| macro-F1 | | | {card['cv']['macro_f1']} | | | {_get(card['dev'], 'macro_f1')} | |",
        f"| micro-F1 | | | {card['cv']['micro_f1']} | | | {_get(card['dev'], 'micro_f1')} | |",
        "",
        "## BBC checks (evaluation only)",
        *(
            [f"- {key}: {value}" for key, value in card["bbc"].items()]
            if card["bbc"]
            else ["- not run"]
        ),
        "",
        "## Speed",
        *(
            [f"- {key}: {value}" for key, value in card["speed"].items()]
            if card["speed"]
            else ["- not run"]
        ),
        "",
    ]
    return "\n".join(lines)


def _candidate_row(row: dict[str, Any], labels: list[str]) -> str:
    name = row["name"] + ("" if row["servable"] else " (not servable)")
    cells = [name, str(row["n_features"]), str(row["cv_macro_f1"])]
    return "| " + " | ".join(cells + [str(row["cv_f1"][label]) for label in labels]) + " |"


def _metric_row(label: str, card: dict[str, Any]) -> str:
    cv = card["cv"]["per_label"][label]
    dev = card["dev"]["per_label"][label] if card["dev"] else {}
    cells = [cv["precision"], cv["recall"], cv["f1"]]
    cells += [dev.get(k, "") for k in ("precision", "recall", "f1", "support")]
    return f"| {label} | " + " | ".join(str(cell) for cell in cells) + " |"


def _get(section: dict[str, Any] | None, key: str) -> Any:
    return section[key] if section else ""
