"""Article queries: the filter (labels, scores, times, source, full-text search), listings,
the versions a reclassify selects, and the counts that stats and the dashboard show.

Commit rule: read only; functions take a session and never write or commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from worker.store.articles import ArticleVersion
from worker.store.models import Article, ArticleLabel, SortOrder, StatsBy, TimeField


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    labels: tuple[str, ...] = ()
    label_mode: Literal["any", "all"] = "any"
    min_score: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    model_version: str | None = None
    time: TimeField = "published"  # which time since/until and sorting use
    search: str | None = None  # full text of title and text (words, "phrases", OR, -word)


def article_time(time: TimeField = "published") -> Any:
    """The time filters, sorting and stats use: published (else ingested) time, or ingested time.

    Both are indexed (``ix_article_effective_time`` is on the coalesce expression, migration 0003).
    """
    if time == "ingested":
        return col(Article.ingested_at)
    return func.coalesce(col(Article.published_at), col(Article.ingested_at))


def find_articles(
    *,
    session: Session,
    where: ArticleFilter = ArticleFilter(),
    limit: int = 50,
    offset: int = 0,
    sort: SortOrder = "newest",
) -> list[Article]:
    """Articles matching the filter, newest first (published time, else ingested time) unless
    ``sort`` says oldest first, or highest score (of the filtered labels, else of any) first."""
    stmt = select(Article)
    for clause in _filter_clauses(where, dialect=session.get_bind().dialect.name):
        stmt = stmt.where(clause)
    when = article_time(where.time)
    if sort == "oldest":
        order = [when.asc(), col(Article.id).asc()]
    elif sort == "score":
        order = [_best_score(where).desc().nulls_last(), when.desc(), col(Article.id).desc()]
    else:
        order = [when.desc(), col(Article.id).desc()]
    stmt = stmt.order_by(*order).limit(limit).offset(offset)
    return list(session.exec(stmt))


def _best_score(where: ArticleFilter) -> Any:
    version = sa.literal(where.model_version) if where.model_version else Article.model_version
    sub = select(func.max(ArticleLabel.score)).where(
        ArticleLabel.article_id == Article.id, ArticleLabel.model_version == version
    )
    if where.labels:
        sub = sub.where(col(ArticleLabel.label).in_(where.labels))
    return sub.scalar_subquery()


def _utc(value: datetime) -> datetime:
    # SQLite stores the UTC wall clock without an offset: compare in UTC on both databases.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_FTS_TOKEN = re.compile(r'"[^"]*"?|\S+')


def fts5_query(text: str) -> str | None:
    """A web-search-like query (words, "phrases", OR, -word) as a safe FTS5 MATCH expression,
    close to what PostgreSQL's ``websearch_to_tsquery`` makes of the same text; None if empty."""
    parts: list[str] = []
    for chunk in _FTS_TOKEN.findall(text):
        negate = chunk.startswith("-") and len(chunk) > 1
        words = re.findall(r"\w+", chunk)
        if chunk == "OR":
            if parts and parts[-1] not in ("OR", "NOT"):
                parts.append("OR")
            continue
        if not words:
            continue
        term = '"' + " ".join(words) + '"'
        if negate:
            if not parts or parts[-1] in ("OR", "NOT"):
                continue  # FTS5's NOT needs a term before it
            parts.append("NOT")
        parts.append(term)
    while parts and parts[-1] in ("OR", "NOT"):
        parts.pop()
    return " ".join(parts) or None


def _search_clause(text: str, dialect: str) -> Any:
    if dialect == "postgresql":
        query = func.websearch_to_tsquery(
            sa.literal_column("'english'::regconfig"), sa.literal(text, sa.Text)
        )
        return sa.literal_column("article.search_vector").op("@@")(query)
    match = fts5_query(text)
    if match is None:
        return sa.false()
    fts = sa.table("article_fts", sa.column("rowid"))
    hits = select(fts.c.rowid).where(
        sa.text("article_fts MATCH :fts_match").bindparams(fts_match=match)
    )
    return col(Article.id).in_(hits)


def _filter_clauses(where: ArticleFilter, *, dialect: str = "sqlite") -> list[Any]:
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
            return sub.correlate(Article).exists()

        checks = [has(label) for label in where.labels]
        clauses.append(sa.and_(*checks) if where.label_mode == "all" else sa.or_(*checks))
    elif where.min_score is not None:
        sub = select(ArticleLabel.article_id).where(
            ArticleLabel.article_id == Article.id,
            ArticleLabel.model_version == Article.model_version,
            ArticleLabel.score >= where.min_score,
        )
        clauses.append(sub.correlate(Article).exists())
    if where.model_version and not where.labels:
        clauses.append(Article.model_version == where.model_version)
    when = article_time(where.time)
    if where.since is not None:
        clauses.append(when >= _utc(where.since))
    if where.until is not None:
        clauses.append(when < _utc(where.until))
    if where.source is not None:
        clauses.append(Article.source == where.source)
    if where.search:
        clauses.append(_search_clause(where.search, dialect))
    return clauses


def find_article_versions(
    *, session: Session, where: ArticleFilter = ArticleFilter(), limit: int | None = None
) -> list[ArticleVersion]:
    """Every article matching the filter (as ``find_articles`` reads it), by id, without its
    text: the ids, current versions and labels of the articles to reclassify."""
    stmt = select(Article.id, Article.model_version, Article.labels)
    for clause in _filter_clauses(where, dialect=session.get_bind().dialect.name):
        stmt = stmt.where(clause)
    stmt = stmt.order_by(col(Article.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        ArticleVersion(int(i), v, tuple(labels or ())) for i, v, labels in session.execute(stmt)
    ]


def count_by(
    *,
    session: Session,
    by: StatsBy,
    where: ArticleFilter = ArticleFilter(),
) -> list[dict[str, Any]]:
    """Articles, and articles per label (current model version), per UTC day, week (starting
    Monday), month, or per source, in key order: ``[{"key": "2026-01-05", "articles": 3,
    "defence": 2, ...}]`` (labels with no article are absent). Days are ISO dates."""
    dialect = session.get_bind().dialect.name
    key = _bucket(by, article_time(where.time), dialect).label("key")
    clauses = _filter_clauses(where, dialect=dialect)
    totals = select(key, func.count()).select_from(Article).where(*clauses).group_by(key)
    per_label = (
        select(key, ArticleLabel.label, func.count())
        .select_from(Article)
        .join(ArticleLabel, col(ArticleLabel.article_id) == Article.id)
        .where(ArticleLabel.model_version == Article.model_version, *clauses)
        .group_by(key, ArticleLabel.label)
    )
    rows: dict[Any, dict[str, Any]] = {}
    for k, n in session.execute(totals):
        rows[k] = {"key": k, "articles": n}
    for k, label, n in session.execute(per_label):
        rows.setdefault(k, {"key": k, "articles": 0})[label] = n
    return sorted(rows.values(), key=lambda row: (row["key"] is None, row["key"] or ""))


def _bucket(by: StatsBy, when: Any, dialect: str) -> Any:
    if by == "source":
        return col(Article.source)
    if dialect == "postgresql":
        utc = func.timezone("UTC", when)
        return func.to_char(func.date_trunc(by, utc), "YYYY-MM-DD")
    # SQLite: from the stored text's date part, since date() rounds the last microseconds of
    # 9999-12-31 up to a year it cannot print (NULL).
    day = func.substr(when, 1, 10)
    if by == "week":
        return func.date(day, "weekday 0", "-6 days")
    if by == "month":
        return func.strftime("%Y-%m-01", day)
    return func.date(day)


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


def latest_time(*, session: Session, time: TimeField = "published") -> datetime | None:
    """The newest article's time (an index lookup), in UTC; None when nothing is stored."""
    when = session.execute(select(func.max(article_time(time)))).scalar()
    if isinstance(when, str):  # SQLite gives a coalesce() of two DATETIME columns back as text
        when = datetime.fromisoformat(when)
    return None if when is None else _utc(when)
