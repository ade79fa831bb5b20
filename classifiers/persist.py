"""Saving and loading models: skops files checked against an explicit allow-list, never pickle.

A model file is code-adjacent: loading an arbitrary pickle runs arbitrary code. skops lists the types
a file would instantiate; anything outside TRUSTED_TYPES is refused before loading.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio

from classifiers.card import card_markdown
from classifiers.model import TopicModel

MODEL_FILE = "model.skops"
CARD_JSON = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "classifiers.model.TopicModel",
        "classifiers.features.TextFeaturizer",
    }
)


class ModelLoadError(Exception):
    """The model file is missing, unreadable, holds untrusted types or disagrees with its card."""


def default_model_path() -> Path:
    """The model shipped in the repository: classifiers/default/model.skops."""
    return Path(__file__).resolve().parent / "default" / MODEL_FILE


def save_model(model: TopicModel, directory: str | Path, *, card: dict[str, Any]) -> Path:
    """Write model.skops, model_card.json and MODEL_CARD.md into `directory`; return the model path."""
    if card.get("version") != model.version:
        raise ValueError(f"card version {card.get('version')!r} is not model {model.version!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    sio.dump(model, path)
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
        model = sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise ModelLoadError(f"{path} could not be loaded by skops: {exc}") from exc
    if not isinstance(model, TopicModel):
        raise ModelLoadError(f"{path} holds a {type(model).__name__}, not a TopicModel")
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
