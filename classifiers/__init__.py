"""Topic classifier for news articles: train, evaluate, persist, load, predict, explain.

Imports nothing from `worker/`; the worker imports this package's public names below.
"""

from typing import TYPE_CHECKING, Any

from classifiers.data import LABELS, LabelledRecord, model_text, read_labelled
from classifiers.evaluate import evaluate_model
from classifiers.model import ParagraphPrediction, Prediction, TopicModel, split_paragraphs
from classifiers.persist import ModelLoadError, default_model_path, load_model, save_model

if TYPE_CHECKING:
    from classifiers.train import train_model

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
    """Import `train_model` lazily, so `python -m classifiers.train` runs without runpy's warning."""
    if name == "train_model":
        from classifiers.train import train_model

        return train_model
    raise AttributeError(f"module 'classifiers' has no attribute {name!r}")
