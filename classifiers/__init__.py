"""Topic classifier for news articles: train, evaluate, persist, load, predict, explain.

Imports nothing from `worker/`; the worker imports this package's public names below. The names
that need scikit-learn and skops are imported on first use, so that `newsclass query` and the
other commands that never touch a model start without loading them.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from classifiers.data import (
    LABELS,
    LabelledRecord,
    default_model_path,
    model_text,
    read_labelled,
    split_paragraphs,
)

if TYPE_CHECKING:
    from classifiers.evaluate import evaluate_model
    from classifiers.model import ParagraphPrediction, Prediction, TopicModel
    from classifiers.persist import ModelLoadError, load_model, save_model
    from classifiers.train import train_model

_LAZY = {
    "evaluate_model": "classifiers.evaluate",
    "ParagraphPrediction": "classifiers.model",
    "Prediction": "classifiers.model",
    "TopicModel": "classifiers.model",
    "ModelLoadError": "classifiers.persist",
    "load_model": "classifiers.persist",
    "save_model": "classifiers.persist",
    # Lazy also so that `python -m classifiers.train` runs without runpy's warning.
    "train_model": "classifiers.train",
}

__all__ = [
    "LABELS",
    "LabelledRecord",
    "ModelLoadError",
    "ParagraphPrediction",
    "Prediction",
    "TopicModel",
    "default_model_path",
    "evaluate_model",
    "load_model",
    "model_text",
    "read_labelled",
    "save_model",
    "split_paragraphs",
    "train_model",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'classifiers' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
