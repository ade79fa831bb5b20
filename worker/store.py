"""SQLModel tables, the engine, and keyword-only data functions over them.

Writes are idempotent: an article is unique by its content hash and a job by its id, so a job that
runs twice (redelivery after a crash) changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import JSON, Column, Field, Session, SQLModel, col, func, select

JobStatus = Literal["stored", "duplicate", "rejected", "failed"]
JOB_STATUSES: tuple[JobStatus, ...] = ("stored", "duplicate", "rejected", "failed")
PAYLOAD_EXCERPT_CHARS = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------- tables


class ArticleBase(SQLModel):
    title: str | None = None
    url: str | None = Field(default=None, index=True)
    source: str | None = Field(default=None, index=True)
    author: str | None = None
    published_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    external_id: str | None = None


class Article(ArticleBase, table=True):
    """One stored article with its current classification (denormalised for plain SQL)."""

    __table_args__ = (
        sa.Index("ix_article_published_at", "published_at"),
        sa.Index("ix_article_ingested_at", "ingested_at"),
        sa.Index("ix_article_primary_label", "primary_label"),
    )

    id: int | None = Field(default=None, primary_key=True)
    content_hash: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    text: str
    dateline: str | None = None
    agency: str | None = None
    credits: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ingested_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scores: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    primary_label: str | None = None
    model_version: str = Field(index=True)
    paragraphs: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    explanation: dict[str, list[str]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )


class ArticleLabel(SQLModel, table=True):
    """An assigned label of an article under one model version: the index that label queries use.

    Rows of earlier model versions are kept, so a reclassified article stays queryable by version.
    """

    __tablename__ = "article_label"
    __table_args__ = (sa.Index("ix_article_label_label_article", "label", "article_id"),)

    article_id: int = Field(foreign_key="article.id", primary_key=True, ondelete="CASCADE")
    model_version: str = Field(primary_key=True)
    label: str = Field(primary_key=True)
    score: float


class Job(SQLModel, table=True):
    """The recorded outcome of one ingest job (its id is the Celery task id)."""

    __table_args__ = (sa.Index("ix_job_status_updated", "status", "updated_at"),)

    id: str = Field(primary_key=True, max_length=64)
    status: str = Field(max_length=16)
    reason: str | None = None
    article_id: int | None = Field(default=None, index=True)
    external_id: str | None = None
    source: str | None = None
    attempts: int = 1
    payload: str | None = None  # a bounded excerpt, or the full payload of a failed job (replay)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


# --------------------------------------------------------------------------------------- engine


@cache
def get_engine(url: str) -> Engine:
    """One engine per database URL per process (a forked worker process calls ``dispose``)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (query, API) run while a worker writes; busy_timeout absorbs short lock waits.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL both do)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# --------------------------------------------------------------------------------------- writes


@dataclass(frozen=True, slots=True)
class NewArticle:
    """What the pipeline hands the store for one job whose article was accepted."""

    job_id: str
    fields: dict[str, Any]  # Article columns (content_hash, text, labels, scores, ...)
    labels: dict[str, float]  # assigned label -> score


@dataclass(frozen=True, slots=True)
class JobOutcome:
    job_id: str
    status: JobStatus
    article_id: int | None = None
    reason: str | None = None
    external_id: str | None = None
    source: str | None = None
    payload: str | None = None
    attempts: int = 1


def finished_job_ids(*, session: Session, job_ids: Sequence[str]) -> set[str]:
    """Jobs that already have an outcome: a redelivered message for them is a no-op."""
    if not job_ids:
        return set()
    rows = session.exec(
        select(Job.id).where(col(Job.id).in_(list(job_ids)), Job.status != "failed")
    )
    return set(rows)


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
        stmt = (
            _insert(session, Article.__table__)
            .values([item.fields for item in to_insert])
            .on_conflict_do_nothing(index_elements=["content_hash"])
            .returning(Article.__table__.c.id, Article.__table__.c.content_hash)
        )
        inserted = dict((h, i) for i, h in session.execute(stmt).all())
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
            session.execute(
                _insert(session, ArticleLabel.__table__).values(label_rows).on_conflict_do_nothing()
            )
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


def record_jobs(*, session: Session, outcomes: Iterable[JobOutcome]) -> None:
    """Record each job's outcome; a job recorded before keeps its first outcome (idempotent),
    except a ``failed`` one, which a replay (``jobs retry``) may turn into another outcome."""
    now = utcnow()
    rows = [
        {
            "id": o.job_id,
            "status": o.status,
            "reason": o.reason,
            "article_id": o.article_id,
            "external_id": o.external_id,
            "source": o.source,
            "payload": o.payload,
            "attempts": o.attempts,
            "created_at": now,
            "updated_at": now,
        }
        for o in outcomes
    ]
    if rows:
        stmt = _insert(session, Job.__table__).values(rows)
        replay = {c: stmt.excluded[c] for c in ("status", "reason", "article_id", "payload")}
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    **replay,
                    "attempts": Job.attempts + 1,
                    "updated_at": stmt.excluded.updated_at,
                },
                where=Job.__table__.c.status == "failed",
            )
        )


def payload_excerpt(payload: object, limit: int = PAYLOAD_EXCERPT_CHARS) -> str:
    """A bounded, JSON-ish rendering of a payload for a rejected job's record."""
    try:
        text = json.dumps(payload, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(payload)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    labels: tuple[str, ...] = ()
    label_mode: Literal["any", "all"] = "any"
    min_score: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    model_version: str | None = None


def find_articles(
    *, session: Session, where: ArticleFilter = ArticleFilter(), limit: int = 50, offset: int = 0
) -> list[Article]:
    """Articles matching the filter, newest first (published time, else ingested time)."""
    stmt = select(Article)
    for clause in _filter_clauses(where):
        stmt = stmt.where(clause)
    newest = func.coalesce(Article.published_at, Article.ingested_at)
    stmt = stmt.order_by(newest.desc(), col(Article.id).desc()).limit(limit).offset(offset)
    return list(session.exec(stmt))


def _filter_clauses(where: ArticleFilter) -> list[Any]:
    clauses: list[Any] = []
    if where.labels:
        version = sa.literal(where.model_version) if where.model_version else Article.model_version

        def has(label: str) -> Any:
            sub = select(ArticleLabel.article_id).where(
                ArticleLabel.article_id == Article.id,
                ArticleLabel.label == label,
                ArticleLabel.model_version == version,
            )
            if where.min_score is not None:
                sub = sub.where(ArticleLabel.score >= where.min_score)
            return sub.exists()

        checks = [has(label) for label in where.labels]
        clauses.append(sa.and_(*checks) if where.label_mode == "all" else sa.or_(*checks))
    elif where.min_score is not None:
        sub = select(ArticleLabel.article_id).where(
            ArticleLabel.article_id == Article.id,
            ArticleLabel.model_version == Article.model_version,
            ArticleLabel.score >= where.min_score,
        )
        clauses.append(sub.exists())
    if where.model_version and not where.labels:
        clauses.append(Article.model_version == where.model_version)
    if where.since is not None:
        clauses.append(func.coalesce(Article.published_at, Article.ingested_at) >= where.since)
    if where.until is not None:
        clauses.append(func.coalesce(Article.published_at, Article.ingested_at) < where.until)
    if where.source is not None:
        clauses.append(Article.source == where.source)
    return clauses


def count_outcomes(*, session: Session) -> dict[str, int]:
    counts = dict.fromkeys(JOB_STATUSES, 0)
    for status, n in session.exec(select(Job.status, func.count()).group_by(Job.status)):
        counts[status] = n
    return counts


def count_labels(*, session: Session) -> dict[str, int]:
    """Articles per assigned label, under each article's current model version."""
    stmt = (
        select(ArticleLabel.label, func.count())
        .join(Article, col(Article.id) == ArticleLabel.article_id)
        .where(ArticleLabel.model_version == Article.model_version)
        .group_by(ArticleLabel.label)
    )
    return {label: n for label, n in session.exec(stmt)}


def count_articles(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(Article)).one()


def find_jobs(
    *, session: Session, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[Job]:
    stmt = select(Job)
    if status:
        stmt = stmt.where(Job.status == status)
    stmt = stmt.order_by(col(Job.updated_at).desc(), col(Job.id)).limit(limit).offset(offset)
    return list(session.exec(stmt))


def get_jobs(*, session: Session, job_ids: Sequence[str]) -> dict[str, Job]:
    rows = session.exec(select(Job).where(col(Job.id).in_(list(job_ids))))
    return {job.id: job for job in rows}
