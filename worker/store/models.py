"""The SQLModel tables and the vocabularies the CLI and the API derive their choices from.

No functions over the tables live here (see the other modules of ``worker.store``); the Alembic
migrations read the tables from ``SQLModel.metadata`` once this module is imported.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

JobStatus = Literal["stored", "duplicate", "rejected", "failed", "reclassified"]
# The outcomes of ingest jobs (stats always shows them, zeros included) ...
JOB_STATUSES: tuple[JobStatus, ...] = ("stored", "duplicate", "rejected", "failed")
# ... and every status a job can have (a reclassify job ends `reclassified`, `rejected` or `failed`).
ALL_JOB_STATUSES: tuple[JobStatus, ...] = (*JOB_STATUSES, "reclassified")
JOB_ID_CHARS = 64  # the job table's key; longer or unprintable task ids are stored by their hash

# Which time filters, sorting and stats use; the orders of a listing; the buckets of stats.
TimeField = Literal["published", "ingested"]
SortOrder = Literal["newest", "oldest", "score"]
StatsBy = Literal["day", "week", "month", "source"]
# The same vocabularies as tuples, for the choices of the CLI and the API.
TIME_FIELDS: tuple[TimeField, ...] = get_args(TimeField)
ARTICLE_SORTS: tuple[SortOrder, ...] = get_args(SortOrder)
STATS_BY: tuple[StatsBy, ...] = get_args(StatsBy)

SourceKind = Literal["feed", "folder"]
SourceStatus = Literal["active", "paused"]


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
    origin: str | None = None  # "page" or "feed" (the feed's own text: the page could not be had)
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
    """The recorded outcome of one ingest or reclassify job (its id is the Celery task id)."""

    __table_args__ = (sa.Index("ix_job_status_updated", "status", "updated_at"),)

    id: str = Field(primary_key=True, max_length=JOB_ID_CHARS)
    status: str = Field(max_length=16)
    reason: str | None = None
    article_id: int | None = Field(default=None, index=True)
    external_id: str | None = None
    source: str | None = None
    attempts: int = 1
    payload: str | None = None  # a bounded excerpt, or the full payload of a failed job (replay)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    # the task's name (worker/names.py: INGEST_TASK, RECLASSIFY_TASK); None for jobs recorded
    # before migration 0005 and for outcomes that do not say
    task: str | None = None


# The Core tables behind the models, for bulk INSERT ... ON CONFLICT statements.
ARTICLE: sa.Table = SQLModel.metadata.tables["article"]
ARTICLE_LABEL: sa.Table = SQLModel.metadata.tables["article_label"]
JOB: sa.Table = SQLModel.metadata.tables["job"]


# --------------------------------------------------------------------------------------- sources


class Source(SQLModel, table=True):
    """A feed or a drop folder polled on the beat schedule, with its poll state.

    A source is due when active and ``next_poll_at`` has passed; a poll holds it until
    ``poll_until`` (the lease) so a second beat or a redelivered message cannot poll it twice.
    """

    __table_args__ = (
        sa.UniqueConstraint("kind", "location", name="uq_source_kind_location"),
        sa.Index("ix_source_due", "status", "next_poll_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    location: str  # the feed's URL or the folder's absolute path
    name: str | None = None
    every: int  # seconds between polls
    move_done: bool = False  # folders: move ingested files to done/
    status: str = Field(default="active", max_length=16)
    paused_reason: str | None = None
    next_poll_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    poll_until: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    poll_token: str | None = Field(default=None, max_length=64)
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0  # failed polls in a row
    last_polled_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_success_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_error_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    last_error: str | None = None
    items_sent: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class SourceItem(SQLModel, table=True):
    """An entry of a feed or a file of a folder already handled: each is sent once."""

    __tablename__ = "source_item"

    source_id: int = Field(foreign_key="source.id", primary_key=True, ondelete="CASCADE")
    entry_key: str = Field(primary_key=True, max_length=64)  # sha256 of the entry's identity
    ref: str | None = None  # the entry id or link, or the file's path (for people)
    job_id: str | None = Field(default=None, max_length=64)
    note: str | None = None
    seen_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
