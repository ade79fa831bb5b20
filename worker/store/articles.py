"""Article writes and reads by id: store a batch (idempotent by content hash), make another
model version's labels current, read articles, their versions and their label rows.

Commit rule: functions take a session and never commit; the caller owns the transaction (a batch's
articles are committed with its job records in one transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from worker.store.engine import _insert
from worker.store.jobs import JobOutcome
from worker.store.models import ARTICLE, ARTICLE_LABEL, Article, ArticleLabel


@dataclass(frozen=True, slots=True)
class NewArticle:
    """What the pipeline hands the store for one job whose article was accepted."""

    job_id: str
    fields: dict[str, Any]  # Article columns (content_hash, text, labels, scores, ...)
    labels: dict[str, float]  # assigned label -> score


def upsert_articles(*, session: Session, items: Sequence[NewArticle]) -> list[JobOutcome]:
    """Insert the articles not yet stored (by content hash); the rest are duplicates.

    Returns one outcome per item, in order. Does not commit: the caller commits the batch with
    its job records in one transaction.
    """
    if not items:
        return []
    hashes = list({item.fields["content_hash"] for item in items})
    existing = dict(
        session.exec(
            select(Article.content_hash, Article.id).where(col(Article.content_hash).in_(hashes))
        ).all()
    )
    first_of_hash: dict[str, NewArticle] = {}
    for item in items:
        first_of_hash.setdefault(item.fields["content_hash"], item)
    to_insert = [item for h, item in first_of_hash.items() if h not in existing]
    if to_insert:
        # One cached statement run as executemany ("insertmanyvalues" batches it, RETURNING
        # included): far cheaper than compiling a multi-row VALUES clause per batch.
        stmt = (
            _insert(session, ARTICLE)
            .on_conflict_do_nothing(index_elements=["content_hash"])
            .returning(ARTICLE.c.id, ARTICLE.c.content_hash)
        )
        rows = session.execute(stmt, [item.fields for item in to_insert]).all()
        inserted = {h: i for i, h in rows}
        label_rows = [
            {
                "article_id": inserted[item.fields["content_hash"]],
                "model_version": item.fields["model_version"],
                "label": label,
                "score": score,
            }
            for item in to_insert
            if item.fields["content_hash"] in inserted
            for label, score in item.labels.items()
        ]
        if label_rows:
            session.execute(_insert(session, ARTICLE_LABEL).on_conflict_do_nothing(), label_rows)
    else:
        inserted = {}
    missing = [h for h in hashes if h not in existing and h not in inserted]
    if missing:  # lost an insert race with another worker: the article is there now
        existing.update(
            session.exec(
                select(Article.content_hash, Article.id).where(
                    col(Article.content_hash).in_(missing)
                )
            ).all()
        )
    outcomes = []
    for item in items:
        h = item.fields["content_hash"]
        stored_here = h in inserted and first_of_hash[h] is item
        outcomes.append(
            JobOutcome(
                job_id=item.job_id,
                status="stored" if stored_here else "duplicate",
                article_id=inserted.get(h) or existing.get(h),
                external_id=item.fields.get("external_id"),
                source=item.fields.get("source"),
            )
        )
    return outcomes


@dataclass(frozen=True, slots=True)
class Relabel:
    """An article's classification under one model version, to become its current one."""

    article_id: int
    fields: dict[str, Any]  # model_version, labels, scores, primary_label, paragraphs, explanation
    labels: dict[str, float]  # assigned label -> score


RELABEL_COLUMNS = (
    "model_version",
    "labels",
    "scores",
    "primary_label",
    "paragraphs",
    "explanation",
)


def relabel_articles(*, session: Session, items: Sequence[Relabel]) -> None:
    """Make each item's classification its article's current one: that model version's label
    rows are replaced (so running twice adds nothing), every other version's rows are kept
    (queryable with ``model_version``), and the article row's classification columns are set.

    Does not commit: the caller commits with the job's outcome in one transaction.
    """
    if not items:
        return
    ids_of: dict[str, list[int]] = {}
    for item in items:
        ids_of.setdefault(item.fields["model_version"], []).append(item.article_id)
    for version, ids in ids_of.items():
        session.execute(
            sa.delete(ARTICLE_LABEL).where(
                ARTICLE_LABEL.c.model_version == version, ARTICLE_LABEL.c.article_id.in_(ids)
            )
        )
    label_rows = [
        {
            "article_id": item.article_id,
            "model_version": item.fields["model_version"],
            "label": label,
            "score": score,
        }
        for item in items
        for label, score in item.labels.items()
    ]
    if label_rows:
        session.execute(_insert(session, ARTICLE_LABEL).on_conflict_do_nothing(), label_rows)
    stmt = (
        sa.update(ARTICLE)
        .where(ARTICLE.c.id == sa.bindparam("b_id"))
        .values({c: sa.bindparam(f"b_{c}", type_=ARTICLE.c[c].type) for c in RELABEL_COLUMNS})
    )
    session.execute(
        stmt,
        [
            {"b_id": item.article_id, **{f"b_{c}": item.fields[c] for c in RELABEL_COLUMNS}}
            for item in items
        ],
    )


def get_article(*, session: Session, article_id: int) -> Article | None:
    return session.get(Article, article_id)


@dataclass(frozen=True, slots=True)
class ArticleVersion:
    """An article's current model version and labels: what ``reclassify`` selects and reports."""

    id: int
    model_version: str
    labels: tuple[str, ...]


def get_article_versions(
    *, session: Session, article_ids: Sequence[int]
) -> dict[int, ArticleVersion]:
    """The current model version and labels of the given articles (absent ones are left out)."""
    found: dict[int, ArticleVersion] = {}
    unique = list(dict.fromkeys(article_ids))
    for start in range(0, len(unique), 500):
        stmt = select(Article.id, Article.model_version, Article.labels).where(
            col(Article.id).in_(unique[start : start + 500])
        )
        for i, v, labels in session.execute(stmt):
            found[int(i)] = ArticleVersion(int(i), v, tuple(labels or ()))
    return found


def get_articles(*, session: Session, article_ids: Sequence[int]) -> list[Article]:
    """The given articles (absent ones are left out), by id."""
    if not article_ids:
        return []
    stmt = select(Article).where(col(Article.id).in_(list(article_ids))).order_by(col(Article.id))
    return list(session.exec(stmt))


def find_article_labels(*, session: Session, article_id: int) -> list[ArticleLabel]:
    """Every label row of one article, all model versions (newest version last by name)."""
    stmt = (
        select(ArticleLabel)
        .where(ArticleLabel.article_id == article_id)
        .order_by(col(ArticleLabel.model_version), col(ArticleLabel.label))
    )
    return list(session.exec(stmt))


def stored_urls(*, session: Session, urls: Sequence[str]) -> set[str]:
    """The URLs among ``urls`` (normalised) that a stored article already has."""
    unique = list(dict.fromkeys(urls))
    found: set[str] = set()
    for start in range(0, len(unique), 500):
        found.update(
            url
            for url in session.exec(
                select(Article.url).where(col(Article.url).in_(unique[start : start + 500]))
            )
            if url
        )
    return found
