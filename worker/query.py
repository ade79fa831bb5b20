"""What ``newsclass query/show/stats`` and the HTTP API share: reading filters from user text, and
turning stored rows into the dicts both print (JSON, CSV, tables, the dashboard).

No Typer and no FastAPI here: a bad value is a ``ValueError`` with a message a person reads; the CLI
prints it, the API answers 422 with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from classifiers import LABELS, model_text, split_paragraphs
from worker.store import (
    STATS_BY,
    TIME_FIELDS,
    Article,
    ArticleFilter,
    ArticleLabel,
    count_articles,
    count_by,
    count_labels,
    count_outcomes,
)

ARTICLE_COLUMNS = [
    "id", "title", "url", "source", "published_at", "ingested_at",
    "labels", "scores", "primary", "model_version",
]  # fmt: skip
TABLE_COLUMNS = ["id", "title", "source", "published_at", "labels", "scores"]

# What the databases and Python hold, checked on the way in (CLI options, API parameters):
EARLIEST = datetime.min.replace(tzinfo=UTC)  # times: Python's years 1 to 9999, in UTC
LATEST = datetime.max.replace(tzinfo=UTC)
MAX_ID = 2**31 - 1  # article and source ids: INTEGER columns (32 bits on PostgreSQL)
MAX_ROWS = 2**63 - 1  # LIMIT and OFFSET: 64-bit integers on SQLite and PostgreSQL


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with an offset (times are stored in UTC; SQLite gives them back without one)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def parse_when(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or time (UTC unless it has an offset); ``name`` goes into the message."""
    if value is None or value == "":
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name}: not an ISO 8601 date or time: {value!r}") from None
    try:  # the store compares in UTC: an offset may carry a time past year 9999 or before 1
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(
            f"{name}: outside the years {EARLIEST.year:04} to {LATEST.year} in UTC: {value!r}"
        ) from None


def plain_text(value: str | None, name: str) -> str | None:
    """A text filter as given (None for an empty one); NUL, which PostgreSQL refuses in a text
    parameter, is refused here with a message, on both databases alike."""
    if value and "\x00" in value:
        raise ValueError(f"{name}: contains a NUL character")
    return value or None


def build_filter(
    *,
    labels: Sequence[str] = (),
    all_labels: bool = False,
    min_score: float | None = None,
    since: str | None = None,
    until: str | None = None,
    time: str = "published",
    source: str | None = None,
    search: str | None = None,
    model_version: str | None = None,
    names: dict[str, str] | None = None,
) -> ArticleFilter:
    """The store's filter from user text; ``names`` maps a field to how the user spells it
    (``--since`` on the command line, ``since`` in a URL) for the error messages."""

    def name(field: str) -> str:
        return (names or {}).get(field, field)

    for label in labels:
        if label not in LABELS:
            raise ValueError(
                f"{name('label')}: unknown label {label!r} (one of {', '.join(LABELS)})"
            )
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise ValueError(f"{name('min_score')}: must be between 0 and 1, got {min_score}")
    if time not in TIME_FIELDS:
        raise ValueError(f"{name('time')}: one of {', '.join(TIME_FIELDS)}, got {time!r}")
    start, end = parse_when(since, name("since")), parse_when(until, name("until"))
    if start and end and start >= end:
        raise ValueError(f"{name('since')} must be before {name('until')}")
    return ArticleFilter(
        labels=tuple(dict.fromkeys(labels)),
        label_mode="all" if all_labels else "any",
        min_score=min_score,
        since=start,
        until=end,
        source=plain_text(source, name("source")),
        model_version=plain_text(model_version, name("model_version")),
        time=time,  # checked against TIME_FIELDS above
        search=(plain_text(search, name("search")) or "").strip() or None,
    )


def article_row(article: Article) -> dict[str, Any]:
    """One article as ``query`` prints it and ``GET /articles`` returns it."""
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "source": article.source,
        "published_at": iso(article.published_at),
        "ingested_at": iso(article.ingested_at),
        "labels": list(article.labels),
        "scores": dict(article.scores),
        "primary": article.primary_label,
        "model_version": article.model_version,
    }


def article_detail(article: Article, label_rows: Sequence[ArticleLabel]) -> dict[str, Any]:
    """Everything about one article: ``newsclass show`` and ``GET /articles/{id}``.

    ``paragraphs`` is the per-paragraph breakdown, each with its text (the paragraphs the model
    scored: the title is the first), ``explanation`` the terms behind each label, and
    ``label_history`` the labels of every model version that tagged the article.
    """
    texts = split_paragraphs(model_text(article.title or "", article.text))
    paragraphs = []
    for part in article.paragraphs:
        row = dict(part)
        index = row.get("index")
        if isinstance(index, int) and 0 <= index < len(texts) and "text" not in row:
            row["text"] = texts[index]
        paragraphs.append(row)
    return {
        **article_row(article),
        "author": article.author,
        "external_id": article.external_id,
        "dateline": article.dateline,
        "agency": article.agency,
        "credits": list(article.credits),
        "text": article.text,
        "paragraphs": paragraphs,
        "explanation": dict(article.explanation),
        "label_history": [
            {"model_version": r.model_version, "label": r.label, "score": r.score}
            for r in label_rows
        ],
    }


def stats_data(
    *, session: Session, by: str | None = None, where: ArticleFilter = ArticleFilter()
) -> dict[str, Any]:
    """``stats --format json`` and ``GET /stats``: totals (``articles``, ``by_label``,
    ``outcomes``) and, with ``by``, ``volume``: one row per day/week/month/source with the
    articles and the articles per label (zeros included)."""
    data: dict[str, Any] = {
        "articles": count_articles(session=session),
        "by_label": count_labels(session=session),
        "outcomes": count_outcomes(session=session),
    }
    if by is not None:
        if by not in STATS_BY:
            raise ValueError(f"by: one of {', '.join(STATS_BY)}, got {by!r}")
        rows = count_by(session=session, by=by, where=where)
        data["by"] = by
        data["time"] = where.time
        data["volume"] = [
            {by: row["key"], "articles": row["articles"], **{k: row.get(k, 0) for k in LABELS}}
            for row in rows
        ]
    return data


def plot_volume(data: dict[str, Any], path: Path) -> Path:
    """Draw ``stats_data(by=...)``'s volume per label to a PNG or SVG file (matplotlib, Agg)."""
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--plot: the file must end in .png or .svg, got {path.name!r}")
    try:
        import matplotlib
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'newsclass[plot]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    by = data["by"]
    rows = data["volume"]
    keys = [str(row[by]) if row[by] is not None else "(none)" for row in rows]
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    try:
        if by == "source":
            width = 0.8 / len(LABELS)
            for i, label in enumerate(LABELS):
                xs = [x + i * width for x in range(len(keys))]
                ax.bar(xs, [row[label] for row in rows], width=width, label=label)
            ax.set_xticks([x + width for x in range(len(keys))], keys, rotation=30, ha="right")
        else:
            from matplotlib.dates import date2num

            when = date2num([datetime.fromisoformat(k) for k in keys])
            ax.xaxis_date()
            for label in LABELS:
                ax.plot(when, [row[label] for row in rows], marker="o", markersize=3, label=label)
            fig.autofmt_xdate()
        ax.set_title(f"articles per label, by {by}")
        ax.set_ylabel("articles")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
