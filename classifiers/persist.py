"""Saving and loading models: skops files checked against an explicit allow-list, never pickle.

A model file is code-adjacent: loading an arbitrary pickle runs arbitrary code. The file holds a plain
dict of scikit-learn objects (CountVectorizer, TfidfTransformer), numpy arrays and builtins, which
skops trusts by default; any other type skops reports is refused before loading unless it is in
TRUSTED_TYPES (empty: no project class is ever instantiated from a file). After loading, the dict's
keys and types are checked and the TopicModel is built from them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from classifiers.card import card_markdown
from classifiers.data import MODEL_FILE, default_model_path
from classifiers.features import Featurizer
from classifiers.model import TopicModel

CARD_JSON = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"
FORMAT = "newsclass-topic-model/2"
TRUSTED_TYPES: frozenset[str] = frozenset()


class ModelLoadError(Exception):
    """The model file is missing, unreadable, holds untrusted types or disagrees with its card."""


def save_model(model: TopicModel, directory: str | Path, *, card: dict[str, Any]) -> Path:
    """Write model.skops, model_card.json and MODEL_CARD.md into `directory`; return the model path.

    A card without version or thresholds gets the model's; a card naming another version is refused.
    """
    card = {"version": model.version, "thresholds": dict(model.thresholds), **card}
    if card.get("version") != model.version:
        raise ValueError(f"card version {card.get('version')!r} is not model {model.version!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    sio.dump(model_state(model), path, compression=zipfile.ZIP_DEFLATED)
    (directory / CARD_JSON).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (directory / CARD_MARKDOWN).write_text(card_markdown(card), encoding="utf-8")
    return path


def load_model(path: str | Path | None = None) -> TopicModel:
    """Load a TopicModel from a skops file (default: the shipped one), refusing untrusted types."""
    path = default_model_path() if path is None else Path(path)
    if not path.is_file():
        raise ModelLoadError(
            f"model file {path} does not exist (train one: python -m classifiers.train)"
        )
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path} is not a skops model file (not a zip archive)")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises several types for malformed archives
        raise ModelLoadError(f"{path} is not a readable skops model file: {exc}") from exc
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise ModelLoadError(
            f"{path} contains untrusted type(s), refusing to load: {', '.join(refused)}"
        )
    try:
        state = sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise ModelLoadError(f"{path} could not be loaded by skops: {exc}") from exc
    model = model_from_state(state, where=str(path))
    _check_card(path.parent / CARD_JSON, model)
    return model


def _check_card(card_path: Path, model: TopicModel) -> None:
    """The card beside the model must describe this model, or its metrics describe another one."""
    if not card_path.is_file():
        return
    try:
        version = json.loads(card_path.read_text(encoding="utf-8")).get("version")
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ModelLoadError(f"model card {card_path} is not a JSON object") from exc
    if version != model.version:
        raise ModelLoadError(
            f"model card {card_path} describes version {version!r} "
            f"but the model file holds {model.version!r}"
        )


def model_state(model: TopicModel) -> dict[str, Any]:
    """The stored form of a model: sklearn objects, numpy arrays and builtins only."""
    featurizer = model.featurizer
    return {
        "format": FORMAT,
        "version": model.version,
        "labels": list(model.labels),
        "vectorizer": featurizer.vectorizer,
        "tfidf": featurizer.tfidf,
        "lexicon_topic": featurizer.lexicon_topic,
        "lexicon_scale": featurizer.lexicon_scale,
        "coef": model.coef,
        "intercept": model.intercept,
        "calibration": model.calibration,
        "thresholds": dict(model.thresholds),
        "config": json.loads(json.dumps(model.config)),
    }


_STATE_TYPES: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "version": str,
    "labels": list,
    "vectorizer": CountVectorizer,
    "tfidf": TfidfTransformer,
    "lexicon_topic": np.ndarray,
    "lexicon_scale": float,
    "coef": np.ndarray,
    "intercept": np.ndarray,
    "calibration": np.ndarray,
    "thresholds": dict,
    "config": dict,
}


def model_from_state(state: Any, *, where: str) -> TopicModel:
    """Check the stored dict's keys and types, then build the TopicModel from it."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelLoadError(f"{where} is not a {FORMAT} file (retrain it with this version)")
    wrong = sorted(
        key
        for key, kind in _STATE_TYPES.items()
        if key not in state or not isinstance(state[key], kind)
    )
    if wrong:
        raise ModelLoadError(f"{where} has missing or mistyped field(s): {', '.join(wrong)}")
    try:
        featurizer = Featurizer(
            vectorizer=state["vectorizer"],
            tfidf=state["tfidf"],
            lexicon_topic=state["lexicon_topic"],
            lexicon_scale=state["lexicon_scale"],
        )
        return TopicModel(
            version=state["version"],
            labels=tuple(state["labels"]),
            featurizer=featurizer,
            coef=state["coef"],
            intercept=state["intercept"],
            calibration=state["calibration"],
            thresholds=state["thresholds"],
            config=state["config"],
        )
    except (ValueError, AttributeError, KeyError) as exc:
        raise ModelLoadError(f"{where} holds an inconsistent model: {exc}") from exc
