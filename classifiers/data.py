"""Labelled data: the record type, the readers and the one function that builds model input text.

Train, evaluate and serve all go through `model_text`, so the model never sees a title/body layout at
serving time that it did not see in training.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS: tuple[str, ...] = ("defence", "trade", "domestic_politics")


@dataclass
class LabelledRecord:
    """One article with its gold labels (zero to three slugs from LABELS)."""

    text: str
    labels: list[str]
    title: str = ""
    id: str | None = None
    title_derived: bool = False  # a title written from the first sentence (modern/dev.jsonl)


MIN_PARAGRAPH_CHARS = 40
MODEL_FILE = "model.skops"


def model_text(title: str, text: str) -> str:
    """Join title and body the way the model was trained: the title is the first paragraph."""
    title, text = title.strip(), text.strip()
    if title and text:
        return f"{title}\n\n{text}"
    return title or text


def split_paragraphs(text: str) -> list[str]:
    """Blocks separated by line breaks; a fragment shorter than 40 characters joins its neighbour.

    Short fragments (a headline, a one-line quote) are too thin to score on their own; they join the
    following block, or the previous one when they come last. Non-empty text gives >= 1 paragraph.
    """
    # The pieces between line breaks, whitespace around them dropped (as re.split(r"\s*\n\s*")
    # gives them, without a regex scan of the whole text).
    pieces = [piece for piece in map(str.strip, text.split("\n")) if piece]
    paragraphs: list[str] = []
    pending = ""
    for piece in pieces:
        joined = f"{pending} {piece}" if pending else piece
        if len(joined) < MIN_PARAGRAPH_CHARS:
            pending = joined
        else:
            paragraphs.append(joined)
            pending = ""
    if pending:
        if paragraphs:
            paragraphs[-1] = f"{paragraphs[-1]} {pending}"
        else:
            paragraphs.append(pending)
    return paragraphs


def default_model_path() -> Path:
    """The model shipped in the repository: classifiers/default/model.skops."""
    return Path(__file__).resolve().parent / "default" / MODEL_FILE


def read_labelled(path: str | Path) -> list[LabelledRecord]:
    """Read labelled articles from JSONL (`title`, `text`|`body`, `labels`) or CSV (`text`, `labels`).

    CSV labels are `;`-separated. Any bad row raises ValueError naming `file:line`, because a silently
    skipped row would change the training data without anyone noticing.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    return [_to_record(row, f"{path}:{line}") for line, row in rows]


def read_unlabeled(path: str | Path) -> list[str]:
    """Model texts (see `model_text`) of unlabelled articles: JSONL or CSV with `text` or `body`.

    Any `labels` field is ignored. A row without text raises ValueError naming `file:line`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    texts = []
    for line, row in _article_rows(path):
        text = row.get("text", row.get("body"))
        title = row.get("title") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise ValueError(f"{path}:{line}: missing string field 'text' (or 'body')")
        texts.append(model_text(title, text))
    return texts


def read_annotations(path: str | Path, articles: str | Path) -> list[LabelledRecord]:
    """Labelled records whose text lives in another file, joined by `id`.

    `path` is JSONL of `{"id", "labels"}` (other fields such as `note` are ignored): labels this
    project gave to articles of `articles` (JSONL or CSV with `id`, `title`, `text`|`body`), so the
    third-party text stays where it is and only ids and labels are kept in the repository. An id
    missing from `articles`, or given twice, raises ValueError naming `file:line`.
    """
    path, articles = Path(path), Path(articles)
    for file in (path, articles):
        if not file.is_file():
            raise ValueError(f"{file}: no such file")
    by_id = {row.get("id"): row for _, row in _article_rows(articles)}
    records, seen = [], set()
    for line, row in _jsonl_rows(path):
        where = f"{path}:{line}"
        article_id = row.get("id")
        if article_id not in by_id:
            raise ValueError(f"{where}: id {article_id!r} is not in {articles}")
        if article_id in seen:
            raise ValueError(f"{where}: id {article_id!r} is labelled twice")
        seen.add(article_id)
        records.append(_to_record({**by_id[article_id], "labels": row.get("labels")}, where))
    return records


def read_supplement(
    paths: Sequence[str | Path] = (),
    annotations: Sequence[str | Path] = (),
    unlabeled: str | Path | None = None,
) -> list[LabelledRecord]:
    """Records to learn from but never score: labelled files plus annotations of `unlabeled`."""
    records = [record for path in paths for record in read_labelled(path)]
    for path in annotations:
        if unlabeled is None:
            raise ValueError("--annotations labels articles of --unlabeled: give --unlabeled too")
        records += read_annotations(path, unlabeled)
    return records


def _article_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line, row) of an article file: CSV by its suffix, else JSONL."""
    if path.suffix.lower() != ".csv":
        return list(_jsonl_rows(path))
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return [(reader.line_num, row) for row in reader]


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object")
            yield line_no, row


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "labels"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}:1: CSV header lacks column(s) {sorted(missing)}")
        for row in reader:
            labels = (row.get("labels") or "").split(";")
            row["labels"] = [label.strip() for label in labels if label.strip()]
            yield reader.line_num, row


def _to_record(row: dict[str, Any], where: str) -> LabelledRecord:
    text = row.get("text", row.get("body"))
    if not isinstance(text, str):
        raise ValueError(f"{where}: missing string field 'text' (or 'body')")
    labels = row.get("labels")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"{where}: 'labels' must be a list of label slugs, got {labels!r}")
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise ValueError(f"{where}: unknown label(s) {unknown}; expected some of {list(LABELS)}")
    title = row.get("title") or ""
    if not isinstance(title, str):
        raise ValueError(f"{where}: 'title' must be a string")
    record_id = row.get("id")
    return LabelledRecord(
        text=text,
        labels=sorted(set(labels), key=LABELS.index),
        title=title,
        id=None if record_id is None else str(record_id),
        title_derived=row.get("title_derived") is True,
    )
